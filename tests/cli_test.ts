// The potsdb command line, run as a child process the way a user runs it:
// `node build/cli/potsdb.js` on Node, `deno run -A cli/potsdb.ts` on Deno,
// `bun cli/potsdb.ts` on Bun, against in-process fake servers (and, for the
// demo, the real VictoriaMetrics it starts itself).

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { closedPort, type FakeServer, HANG_GUARD_MS, startServer, waitFor } from "./helpers/servers.ts";

const compiled = import.meta.url.includes("/build/tests/");
const root = fileURLToPath(new URL(compiled ? "../../" : "../", import.meta.url));
const entry = fileURLToPath(new URL(compiled ? "../cli/potsdb.js" : "../cli/potsdb.ts", import.meta.url));

function command(): string[] {
  if ("Deno" in globalThis) return [process.execPath, "run", "-A", entry];
  if ("Bun" in globalThis) return [process.execPath, entry];
  return [process.execPath, entry];
}

interface Run {
  child: ChildProcess;
  /** What the process printed so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited. */
  done: Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>;
}

const running = new Set<ChildProcess>();

interface RunOptions {
  /** Written to stdin, which is then closed; leave out to keep stdin open. */
  stdin?: string;
  env?: Record<string, string | undefined>;
  /** The child is killed after this long. */
  timeoutMs?: number;
}

function startCli(args: string[], options: RunOptions = {}): Run {
  const [cmd, ...prefix] = command();
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: "1", POTSDB_TSD: undefined };
  for (const [k, v] of Object.entries(options.env ?? {})) env[k] = v;
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  const child = spawn(cmd, [...prefix, ...args], {
    cwd: root,
    env: env as Record<string, string>,
    stdio: ["pipe", "pipe", "pipe"],
  });
  running.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  child.stdin!.on("error", () => {}); // the child may exit before reading all of it
  if (options.stdin !== undefined) child.stdin!.end(options.stdin);
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? HANG_GUARD_MS);
  const done = new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>(
    (resolve) => {
      child.once("close", (code, signal) => {
        clearTimeout(timer);
        running.delete(child);
        resolve({ code, signal, stdout, stderr });
      });
    },
  );
  return { child, stdout: () => stdout, stderr: () => stderr, done };
}

function runCli(args: string[], options: RunOptions = {}) {
  return startCli(args, options).done;
}

after(() => {
  for (const child of running) child.kill("SIGKILL");
});

async function withServer(fn: (server: FakeServer) => Promise<void>): Promise<void> {
  const server = await startServer();
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

describe("potsdb --help", () => {
  it("prints the overview and each command's usage on stdout", async () => {
    const overview = await runCli(["--help"]);
    assert.equal(overview.code, 0, overview.stderr);
    assert.match(overview.stdout, /^Usage: potsdb <command> \[options\]/);
    for (const name of ["send", "pipe", "demo"]) {
      assert.match(overview.stdout, new RegExp(`^  ${name} `, "m"));
    }

    const expected: Record<string, RegExp> = {
      send: /^Usage: potsdb send <metric> <value> \[tag=value…\] \[options\]/,
      pipe: /^Usage: potsdb pipe \[options\] < lines/,
      demo: /^Usage: potsdb demo \[options\]/,
    };
    for (const [name, usage] of Object.entries(expected)) {
      const r = await runCli([name, "--help"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, usage);
      for (const option of ["--tsd", "--host-tag", "--no-host-tag", "--qsize", "--mps"]) {
        assert.ok(r.stdout.includes(option), `${name} --help mentions ${option}`);
      }
      assert.equal(r.stderr, "");
    }
    const viaHelp = await runCli(["help", "pipe"]);
    assert.equal(viaHelp.code, 0);
    assert.match(viaHelp.stdout, expected.pipe);
  });

  it("exits 2 with a hint for a bad command line", async () => {
    const none = await runCli([]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^Usage: potsdb/);
    const unknown = await runCli(["frobnicate"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
    const option = await runCli(["send", "m", "1", "a=b", "--bogus"]);
    assert.equal(option.code, 2);
    assert.match(option.stderr, /potsdb send: unknown option --bogus; run potsdb send --help/);
    const number = await runCli(["pipe", "--mps", "fast"], { stdin: "" });
    assert.equal(number.code, 2);
    assert.match(number.stderr, /--mps needs a number, got "fast"/);
  });
});

describe("the potsdb module", () => {
  it(
    "has no top-level await: require() loads it without running a command",
    { skip: !("process" in globalThis) || "Deno" in globalThis || "Bun" in globalThis ? "Node only" : false },
    () => {
      // Node's require(esm) refuses a module graph with top-level await (ERR_REQUIRE_ASYNC_MODULE).
      // The path goes by the environment: as argv[1] it would make the module think it is the program.
      const loaded = execFileSync(
        process.execPath,
        ["-e", "const m = require(process.env.POTSDB_CLI_ENTRY); console.log(typeof m.main)"],
        {
          cwd: root,
          encoding: "utf8",
          stdio: ["ignore", "pipe", "pipe"],
          env: { ...process.env, POTSDB_CLI_ENTRY: entry },
        },
      );
      assert.equal(loaded.trim(), "function");
    },
  );
});

describe("potsdb send", () => {
  it("writes exactly one put line and exits 0", async () => {
    await withServer(async (server) => {
      const r = await runCli([
        "send",
        "sys.cpu.user",
        "42.5",
        "cpu=0",
        "--tsd",
        `127.0.0.1:${server.port}`,
        "--timestamp",
        "1700000000",
        "--host-tag",
        "web1",
      ]);
      assert.equal(r.code, 0, r.stderr);
      await waitFor(() => server.received().endsWith("\n"), HANG_GUARD_MS, "the line");
      assert.equal(server.received(), "put sys.cpu.user 1700000000 42.5 cpu=0 host=web1\n");
      assert.equal(r.stderr, "");
    });
  });

  it("takes the server from POTSDB_TSD, negative values and --no-host-tag", async () => {
    await withServer(async (server) => {
      const r = await runCli(
        ["send", "app.temp", "-5", "room=lab", "--no-host-tag", "--timestamp=1700000001"],
        { env: { POTSDB_TSD: `127.0.0.1:${server.port}` } },
      );
      assert.equal(r.code, 0, r.stderr);
      await waitFor(() => server.received().endsWith("\n"), HANG_GUARD_MS, "the line");
      assert.equal(server.received(), "put app.temp 1700000001 -5 room=lab\n");
    });
  });

  it("refuses an invalid point with exit 1 and sends nothing", async () => {
    await withServer(async (server) => {
      const r = await runCli(["send", "cpu!", "1", "a=b", "--tsd", `127.0.0.1:${server.port}`]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /potsdb send: invalid point: metric "cpu!" has a character OpenTSDB rejects/);
      const value = await runCli(["send", "cpu", "0x10", "a=b", "--tsd", `127.0.0.1:${server.port}`]);
      assert.equal(value.code, 1);
      assert.match(value.stderr, /invalid point: value "0x10" is not a number/);
      assert.equal(server.connections, 0);
      assert.equal(server.received(), "");
    });
  });

  it("exits 1 and says why when the point cannot be delivered", async () => {
    const port = await closedPort();
    // The refusal must be seen before the deadline ends the attempt: 2 s leaves a loaded machine room.
    const r = await runCli(["send", "cpu", "1", "a=b", "--tsd", `127.0.0.1:${port}`, "--timeout", "2"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`potsdb send: not delivered to 127\\.0\\.0\\.1:${port}: .+`));
  });
});

describe("potsdb pipe", () => {
  it("sends valid lines in order, reports bad ones by line number, and counts them", async () => {
    await withServer(async (server) => {
      const input = [
        "put sys.cpu.user 1700000000 42.5 cpu=0", // 1
        "", // 2: blank, skipped
        "# a comment", // 3: skipped
        "sys.cpu.nice 1700000001 7 cpu=1", // 4: tcollector form
        "cpu! 1 a=b", // 5: bad metric
        "app.hits 3 route=home", // 6: timestamped now
        "put sys.cpu.user 1700000002 abc cpu=0", // 7: bad value
        "put x 1700000002 1 a=1 a=2", // 8: duplicate tag key
        "app.big 1700000003 9223372036854775807 kind=max", // 9: int64 max, kept exact
        "put sys.cpu.user 1700000004 NaN cpu=0", // 10: not a number
        "app.temp 1700000005 -0.5 room=lab", // 11
        "put short 1", // 12: too few fields
        "put sys.cpu.user 1700000006 1e3 cpu=0", // 13: no final newline
      ].join("\n");
      const before = Math.floor(Date.now() / 1000);
      const r = await runCli(["pipe", "--tsd", `127.0.0.1:${server.port}`, "--host-tag", "web1"], {
        stdin: input,
      });
      const afterRun = Math.ceil(Date.now() / 1000);
      assert.equal(r.code, 1, r.stderr);
      await waitFor(() => server.lines().length >= 6, HANG_GUARD_MS, "six lines");
      const lines = server.lines();
      const now = /^put app\.hits (\d+) 3 route=home host=web1$/.exec(lines[2]);
      assert.ok(now, lines[2]);
      assert.ok(Number(now[1]) >= before && Number(now[1]) <= afterRun, `timestamp ${now[1]} is now`);
      assert.equal(
        server.received(),
        [
          "put sys.cpu.user 1700000000 42.5 cpu=0 host=web1",
          "put sys.cpu.nice 1700000001 7 cpu=1 host=web1",
          `put app.hits ${now[1]} 3 route=home host=web1`,
          "put app.big 1700000003 9223372036854775807 kind=max host=web1",
          "put app.temp 1700000005 -0.5 room=lab host=web1",
          "put sys.cpu.user 1700000006 1000 cpu=0 host=web1",
          "",
        ].join("\n"),
      );
      const reported = [...r.stderr.matchAll(/^potsdb pipe: line (\d+): /gm)].map((m) => Number(m[1]));
      assert.deepEqual(reported, [5, 7, 8, 10, 12]);
      assert.match(r.stderr, /line 5: metric "cpu!" has a character OpenTSDB rejects.*: cpu! 1 a=b$/m);
      assert.match(r.stderr, /line 7: value "abc" is not a number: /);
      assert.match(r.stderr, /line 8: tag key "a" appears twice: /);
      assert.match(r.stderr, /line 12: a put line needs: /);
      assert.match(r.stderr, /^potsdb pipe: 11 read, 6 sent, 5 invalid, 0 dropped$/m);
    });
  });

  it("takes timestamps by the client's rule: seconds or 13-digit milliseconds, nothing ambiguous", async () => {
    await withServer(async (server) => {
      const input = [
        "put t.s 4294967295 1 a=b", // 1: the last second OpenTSDB reads as seconds
        "put t.ms 1700000000123 2 a=b", // 2: 13 digits: milliseconds
        "put t.amb 170000000000 3 a=b", // 3: 12 digits: ambiguous
        "t.amb 17000000000 4 a=b", // 4: 11 digits: ambiguous
        "put t.frac 1700000000.5 5 a=b", // 5: a fraction
        "t.frac 1700000000.25 6 a=b", // 6: the tcollector form, a fraction
      ].join("\n");
      const r = await runCli(["pipe", "--tsd", `127.0.0.1:${server.port}`, "--no-host-tag"], {
        stdin: input,
      });
      assert.equal(r.code, 1, r.stderr);
      await waitFor(
        () => server.lines().filter((l) => l.startsWith("put ")).length >= 2,
        HANG_GUARD_MS,
        "2 lines",
      );
      assert.deepEqual(server.lines().filter((l) => l.startsWith("put ")), [
        "put t.s 4294967295 1 a=b",
        "put t.ms 1700000000123 2 a=b",
      ]);
      const reported = [...r.stderr.matchAll(/^potsdb pipe: line (\d+): /gm)].map((m) => Number(m[1]));
      assert.deepEqual(reported, [3, 4, 5, 6]);
      assert.match(r.stderr, /line 3: timestamp 170000000000 is ambiguous: .*13 digits/);
      assert.match(r.stderr, /line 5: timestamp 1700000000\.5 is not a whole number/);
      assert.match(r.stderr, /^potsdb pipe: 6 read, 2 sent, 4 invalid, 0 dropped$/m);
      const send = await runCli([
        "send",
        "t",
        "1",
        "a=b",
        "--timestamp",
        "17000000000",
        "--tsd",
        `127.0.0.1:${server.port}`,
      ]);
      assert.equal(send.code, 1);
      assert.match(send.stderr, /invalid point: timestamp 17000000000 is ambiguous/);
    });
  });

  it("drops repeats of a metric, tags and second and says so; --no-dedup sends them", async () => {
    await withServer(async (server) => {
      const input = ["put d 1700000000 1 a=b", "put d 1700000000 2 a=b", "put d 1700000000 3 a=b", ""].join(
        "\n",
      );
      const tsd = `127.0.0.1:${server.port}`;
      const deduped = await runCli(["pipe", "--tsd", tsd, "--no-host-tag"], { stdin: input });
      assert.equal(deduped.code, 1, "two points were not delivered");
      assert.match(
        deduped.stderr,
        /^potsdb pipe: 3 read, 1 sent, 0 invalid, 2 dropped \(2 duplicates: see --no-dedup\)$/m,
      );
      const all = await runCli(["pipe", "--tsd", tsd, "--no-host-tag", "--no-dedup"], { stdin: input });
      assert.equal(all.code, 0, all.stderr);
      assert.match(all.stderr, /^potsdb pipe: 3 read, 3 sent, 0 invalid, 0 dropped$/m);
      await waitFor(
        () => server.lines().filter((l) => l.startsWith("put ")).length >= 4,
        HANG_GUARD_MS,
        "4 lines",
      );
      assert.deepEqual(server.lines().filter((l) => l.startsWith("put ")), [
        "put d 1700000000 1 a=b",
        "put d 1700000000 1 a=b",
        "put d 1700000000 2 a=b",
        "put d 1700000000 3 a=b",
      ]);
    });
  });

  it("passes clean input through byte for byte and exits 0, pausing while the queue is full", async () => {
    await withServer(async (server) => {
      const expected: string[] = [];
      for (let i = 0; i < 300; i++) {
        expected.push(`put test.pipe.m${i % 7} ${1700000000 + i} ${i} k=v${i % 3}`);
      }
      // CRLF line ends, as a Windows tool would write them.
      const r = await runCli(
        ["pipe", "--tsd", `127.0.0.1:${server.port}`, "--no-host-tag", "--qsize", "7"],
        { stdin: expected.join("\r\n") + "\r\n" },
      );
      assert.equal(r.code, 0, r.stderr);
      await waitFor(() => server.lines().length >= 300, HANG_GUARD_MS, "300 lines");
      assert.equal(server.received(), expected.join("\n") + "\n");
      assert.equal(r.stderr, "potsdb pipe: 300 read, 300 sent, 0 invalid, 0 dropped\n");
    });
  });

  it("keeps to --mps", async () => {
    // A lower bound on time: load can only make the run slower, never the limit look broken.
    // The spread between arrivals could shrink under load (the first one seen late), so the
    // bound runs from before the process starts: its client and its full bucket come after.
    const arrivals: number[] = [];
    const server = await startServer({
      onConnection: (socket) => socket.on("data", () => arrivals.push(Date.now())),
    });
    try {
      const input = Array.from({ length: 30 }, (_, i) => `put test.mps ${1700000000 + i} ${i} k=v\n`).join(
        "",
      );
      const started = Date.now();
      const r = await runCli(
        ["pipe", "--tsd", `127.0.0.1:${server.port}`, "--no-host-tag", "--mps", "10"],
        { stdin: input },
      );
      assert.equal(r.code, 0, r.stderr);
      await waitFor(() => server.lines().length >= 30, HANG_GUARD_MS, "30 lines");
      assert.equal(server.received(), input);
      // 10 at once (a second's worth), then 10 a second: the last no sooner than 2 s after the
      // client was made (100 ms off for the two processes' clocks and their granularity).
      const took = arrivals[arrivals.length - 1] - started;
      assert.ok(took >= 1900, `30 lines at 10/s all arrived ${took} ms after the start`);
    } finally {
      await server.close();
    }
  });

  it("with --no-wait drops the oldest when the queue is full, and counts every drop", async () => {
    const port = await closedPort();
    const input = Array.from({ length: 10 }, (_, i) => `test.drop ${i} k=v\n`).join("");
    const r = await runCli(
      // The refusal must be seen before the deadline: 2 s leaves a loaded machine room. The
      // points are timestamped now, most in one second: --no-dedup, or they would be duplicates.
      ["pipe", "--tsd", `127.0.0.1:${port}`, "--qsize", "3", "--no-wait", "--timeout", "2", "--no-dedup"],
      { stdin: input },
    );
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(`potsdb pipe: cannot reach 127\\.0\\.0\\.1:${port}: .+ \\(retrying\\)`),
    );
    assert.match(r.stderr, /^potsdb pipe: 10 read, 0 sent, 0 invalid, 10 dropped$/m);
  });

  it("reconnects when the server drops the connection and delivers the rest", async () => {
    await withServer(async (server) => {
      const run = startCli(["pipe", "--tsd", `127.0.0.1:${server.port}`, "--no-host-tag"]);
      const first = "put test.re 1700000000 1 k=v\nput test.re 1700000001 2 k=v\n";
      const second = "put test.re 1700000002 3 k=v\nput test.re 1700000003 4 k=v\n";
      run.child.stdin!.write(first);
      await waitFor(() => server.lines().length === 2, HANG_GUARD_MS, "the first lines");
      server.dropAll();
      await waitFor(() => server.sockets.size === 0, HANG_GUARD_MS, "the reset");
      // Whether the client has seen the reset yet or not: a write into the reset connection
      // fails and its lines are written again on the next one, so no wait is needed here.
      run.child.stdin!.end(second);
      const r = await run.done;
      assert.equal(r.code, 0, r.stderr);
      await waitFor(() => server.lines().length === 4, HANG_GUARD_MS, "all lines");
      assert.equal(server.received(), first + second);
      assert.equal(server.connections, 2);
      assert.match(r.stderr, /^potsdb pipe: 4 read, 4 sent, 0 invalid, 0 dropped, 1 reconnect$/m);
    });
  });
  it("on Ctrl-C delivers what it has read, prints the summary and exits 130", async () => {
    await withServer(async (server) => {
      const run = startCli(["pipe", "--tsd", `127.0.0.1:${server.port}`, "--no-host-tag"]);
      run.child.stdin!.write("put test.int 1700000000 1 k=v\n");
      await waitFor(() => server.lines().length === 1, HANG_GUARD_MS, "the line");
      // process.kill rather than child.kill: Deno's child_process reports a child it
      // signalled itself as killed by the signal, whatever its real exit status.
      process.kill(run.child.pid!, "SIGINT");
      const r = await run.done;
      assert.equal(r.code, 130, r.stderr);
      assert.match(r.stderr, /potsdb pipe: interrupted: delivering what is queued/);
      assert.match(r.stderr, /^potsdb pipe: 1 read, 1 sent, 0 invalid, 0 dropped$/m);
      assert.equal(server.received(), "put test.int 1700000000 1 k=v\n");
    });
  });
});

describe("potsdb demo", () => {
  it(
    "streams to its own VictoriaMetrics, reads every series back and stops it",
    { timeout: 120_000 },
    async () => {
      const r = await runCli(["demo", "--seconds", "2"], { timeoutMs: 90_000 });
      assert.equal(r.code, 0, r.stderr);
      for (
        const series of [
          "demo.cpu.percent{mode=user}",
          "demo.cpu.percent{mode=idle}",
          "demo.mem.bytes{state=used}",
          "demo.process.memory_bytes{kind=rss}",
          "demo.load.average{period=1m}",
          "demo.eventloop.lag_ms{stat=max}",
          "demo.synthetic.wave{shape=sine}",
          "demo.synthetic.walk{series=7}",
        ]
      ) {
        // name, points read back, points sent: two live points, or the 1800-point burst
        const row = new RegExp(`^${series.replace(/[.{}]/g, "\\$&")}\\s+([\\d,]+)\\s+([\\d,]+)\\s`, "m").exec(
          r.stdout,
        );
        assert.ok(row, `${series} in\n${r.stdout}`);
        assert.equal(row[1], row[2], `${series}: read back = sent`);
        assert.equal(row[1], series.startsWith("demo.synthetic.walk") ? "1,800" : "2");
      }
      assert.match(r.stdout, /[▁▂▃▄▅▆▇█]{10,}/);
      const total = /^23 series read back: ([\d,]+) points stored, ([\d,]+) sent$/m.exec(r.stdout);
      assert.ok(total, r.stdout);
      assert.equal(total[1], total[2]);
      assert.match(r.stderr, /sent [\d,]+ \([\d,]+\/s\)\s+queued \d+\s+dropped 0\s+reconnects 0/);
      assert.match(r.stderr, /potsdb demo: stopped VictoriaMetrics\n$/);
    },
  );

  it("stops its VictoriaMetrics on Ctrl-C", { timeout: 120_000 }, async () => {
    const run = startCli(["demo", "--seconds", "30"], { timeoutMs: 90_000 });
    await waitFor(() => run.stderr().includes("sending this machine's metrics"), 60_000, "the demo to start");
    process.kill(run.child.pid!, "SIGINT");
    const r = await run.done;
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /potsdb demo: interrupted: stopping/);
    assert.match(r.stderr, /potsdb demo: stopped VictoriaMetrics\n$/);
    assert.equal(r.stdout, "");
  });

  it("sends to --tsd without starting a server and shows what was sent", { timeout: 120_000 }, async () => {
    await withServer(async (server) => {
      const r = await runCli([
        "demo",
        "--seconds",
        "1",
        "--tsd",
        `127.0.0.1:${server.port}`,
        "--host-tag",
        "h1",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /starting VictoriaMetrics/);
      assert.match(r.stderr, /not reading back: add --http HOST:PORT/);
      assert.match(r.stdout, /^series \(as sent\)\s+points\s+min\s+avg\s+max\s+trend$/m);
      await waitFor(() => server.lines().length >= 14_400, HANG_GUARD_MS, "the demo's points");
      const lines = server.lines();
      assert.ok(
        lines.every((l) => /^put demo\.[a-z_.]+ \d{10} \S+ .*run=[0-9a-f]{6} host=h1$/.test(l)),
        lines[0],
      );
      assert.ok(lines.some((l) => l.startsWith("put demo.cpu.percent ")));
      const sent = /^23 series, ([\d,]+) points sent$/m.exec(r.stdout);
      assert.ok(sent, r.stdout);
      assert.equal(Number(sent[1].replace(/,/g, "")), lines.length);
    });
  });
});
