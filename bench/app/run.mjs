#!/usr/bin/env node
// `npm run bench:app`: the same HTTP service (bench/app/service.ts) on Node (24),
// Deno and Bun, once per way of instrumenting it, loaded by autocannon at a fixed
// concurrency. Variants are alternated (their order rotates every round) over
// several rounds in one run; each variant runs next to a "none" run of its own, and
// is compared with that one. Reports requests/s, p50/p99 latency, the service's CPU
// (utime+stime from /proc over the measured run) and RSS at its end, and what
// reached the telnet sink. Prints a Markdown table; writes bench/app/results.json.
//
// Usage: node bench/app/run.mjs [--rounds 3] [--duration 4] [--warmup 1] [--connections 20]
//        [--runtimes node,deno,bun] [--variants none,meters,send,otel,otlp,prom,statsd]
import autocannon from "autocannon";
import { spawn, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import { join } from "node:path";

const root = new URL("../..", import.meta.url).pathname;
const args = process.argv.slice(2);
function arg(name, fallback) {
  const at = args.indexOf(`--${name}`);
  return at === -1 ? fallback : args[at + 1];
}
const ROUNDS = Number(arg("rounds", 3));
const DURATION = Number(arg("duration", 4));
const WARMUP = Number(arg("warmup", 1));
const CONNECTIONS = Number(arg("connections", 20));
const RUNTIMES = arg("runtimes", "node,deno,bun").split(",");
const VARIANTS = arg("variants", "none,meters,send,otel,otlp,prom,statsd").split(",");
const others = VARIANTS.filter((v) => v !== "none");
const SCRAPE_MS = 15_000;
const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;
const machineNode = process.env.npm_node_execpath || process.execPath;

const commands = {
  node: [join(root, "node_modules/node24/bin/node"), []],
  deno: [join(root, "node_modules/.bin/deno"), ["run", "-A"]],
  bun: [join(root, "node_modules/.bin/bun"), []],
};

const LABELS = {
  none: "none",
  meters: "potsdb meters (telnet)",
  send: "potsdb send() per request",
  otel: "OTel SDK + OpenTsdbMetricExporter",
  otlp: "OTel SDK + OTLP HTTP exporter",
  prom: "prom-client (+ scrape / 15 s)",
  statsd: "hot-shots (UDP)",
};

/** Starts a sink process and resolves with the numbers of its first stdout line. */
function startProcess(file) {
  const child = spawn(machineNode, [join(root, file)], { stdio: ["pipe", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    child.stdout.setEncoding("utf8");
    child.stdout.once("data", (d) => resolve({ ports: d.trim().split(" ").slice(1).map(Number), child }));
    child.once("error", reject);
  });
}

/** One command to the telnet sink's control port. */
function control(port, command) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(command + "\n"));
    socket.setEncoding("utf8");
    socket.once("data", (d) => {
      socket.end();
      resolve(d.trim());
    });
    socket.once("error", reject);
  });
}

function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime, stime
}

function rssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024;
}

async function startService(runtime, variant, ports) {
  const [cmd, pre] = commands[runtime];
  const child = spawn(cmd, [...pre, join(root, "bench/app/service.ts"), variant, ...ports.map(String)], {
    stdio: ["pipe", "pipe", "inherit"],
    cwd: root,
  });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${runtime} ${variant}: no READY in 30 s`)), 30_000);
    let text = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d) => {
      text += d;
      const m = /READY (\d+)/.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once("exit", (code) => reject(new Error(`${runtime} ${variant} exited (${code})`)));
  });
  return { child, port };
}

async function stopService(child) {
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.stdin.end();
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

function load(port, seconds) {
  return autocannon({ url: `http://127.0.0.1:${port}/`, connections: CONNECTIONS, duration: seconds });
}

async function measure(runtime, variant, ports, tcpControl) {
  await control(tcpControl, "reset");
  const { child, port } = await startService(runtime, variant, ports);
  try {
    if (WARMUP > 0) await load(port, WARMUP);
    let scrapes = 0;
    const scrape = () =>
      fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text()).then(() => scrapes++);
    let scraper;
    if (variant === "prom") {
      await scrape();
      scraper = setInterval(scrape, SCRAPE_MS);
    }
    const before = cpuTicks(child.pid);
    const started = performance.now();
    const result = await load(port, DURATION);
    const elapsed = (performance.now() - started) / 1000;
    const cpu = ((cpuTicks(child.pid) - before) / CLK_TCK / elapsed) * 100;
    const rss = rssMb(child.pid);
    clearInterval(scraper);
    await stopService(child);
    const [, lines] = (await control(tcpControl, "count")).split(" ").map(Number);
    return {
      rps: result.requests.average,
      p50: result.latency.p50,
      p99: result.latency.p99,
      cpu,
      // The service's CPU time per request: less at the mercy of a starved load generator than req/s.
      cpuUs: (cpu / 100) * 1e6 / result.requests.average,
      rss,
      errors: result.errors + result.timeouts + result.non2xx,
      sinkLines: lines,
      scrapes,
    };
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const range = (xs, f) => `${f(Math.min(...xs))}–${f(Math.max(...xs))}`;

const tcp = await startProcess("bench/sink.mjs");
const other = await startProcess("bench/app/sinks.mjs");
const ports = [tcp.ports[0], other.ports[0], other.ports[1]];
const tcpControl = tcp.ports[1];
const results = {}; // runtime → variant → [{…, ratio}]
const inProcess = {}; // runtime → variant → CPU ns per request, "none" subtracted
const began = Date.now();
const loadBefore = os.loadavg();
try {
  const log = (round, runtime, variant, r) =>
    console.error(
      `round ${round + 1}/${ROUNDS} ${runtime} ${variant}: ${Math.round(r.rps)} req/s, p99 ${r.p99} ms, ` +
        `cpu ${r.cpu.toFixed(0)} %, ${r.cpuUs.toFixed(1)} µs/req, rss ${r.rss.toFixed(0)} MB, ` +
        `sink ${r.sinkLines} lines` + (r.errors ? `, ${r.errors} errors` : ""),
    );
  // First the instrumentation alone, without HTTP: one process per variant (bench/app/observe.ts).
  for (const runtime of RUNTIMES) {
    for (const variant of others) {
      const [cmd, pre] = commands[runtime];
      const run = spawnSync(cmd, [
        ...pre,
        join(root, "bench/app/observe.ts"),
        ...ports.map(String),
        "none",
        variant,
      ], {
        cwd: root,
        encoding: "utf8",
        timeout: 180_000,
      });
      const line = run.stdout.trim().split("\n").at(-1);
      try {
        (inProcess[runtime] ??= {})[variant] = JSON.parse(line)[variant];
      } catch {
        console.error(`${runtime} ${variant}: observe.ts failed: ${run.stderr.slice(-500)}`);
      }
      console.error(`in-process ${runtime} ${variant}: ${inProcess[runtime]?.[variant]} ns/request`);
    }
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const runtime of RUNTIMES) {
      // Each variant runs right next to a "none" of its own (before it in even rounds, after it in
      // odd ones), so that the load of a shared machine drifts as little as possible between the two;
      // and the variants' order rotates every round, so that none always runs first or last.
      const order = others.map((_, i) => others[(i + round) % others.length]);
      for (const variant of order) {
        const pair = round % 2 === 0 ? ["none", variant] : [variant, "none"];
        const got = {};
        for (const v of pair) {
          got[v] = await measure(runtime, v, ports, tcpControl);
          log(round, runtime, v, got[v]);
        }
        const r = got[variant];
        r.ratio = r.rps / got.none.rps;
        r.cpuExtraUs = r.cpuUs - got.none.cpuUs;
        ((results[runtime] ??= {})[variant] ??= []).push(r);
        (results[runtime].none ??= []).push(got.none);
      }
    }
  }
} finally {
  tcp.child.stdin.end();
  other.child.stdin.end();
}

const versions = Object.fromEntries(
  RUNTIMES.map((
    r,
  ) => [r, spawnSync(commands[r][0], ["--version"], { encoding: "utf8" }).stdout.split("\n")[0]]),
);
writeFileSync(
  join(root, "bench/app/results.json"),
  JSON.stringify(
    {
      date: new Date().toISOString(),
      cpus: os.cpus().length,
      loadBefore,
      loadAfter: os.loadavg(),
      rounds: ROUNDS,
      duration: DURATION,
      connections: CONNECTIONS,
      versions,
      results,
      inProcess,
    },
    null,
    2,
  ) + "\n",
);

const signed = (x) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(1)}`;
const pct = (x) => `${x >= 1 ? "+" : "−"}${Math.abs((x - 1) * 100).toFixed(0)} %`;
const out = [];
out.push(
  `${ROUNDS} rounds × ${DURATION} s per variant, autocannon -c ${CONNECTIONS}, ${os.cpus().length} CPUs, ` +
    `${((Date.now() - began) / 60000).toFixed(1)} min; ${Object.values(versions).join(", ")}; load average ` +
    `(1, 5, 15 min) before ${loadBefore.map((x) => x.toFixed(1)).join(" ")}, after ` +
    `${os.loadavg().map((x) => x.toFixed(1)).join(" ")}`,
);
out.push("");
out.push(
  "| runtime | variant | req/s median (range) | vs the none run next to it: median (range) | CPU µs/request (+ vs none) | p50 ms | p99 ms | CPU % | RSS MB | lines at telnet sink |",
);
out.push("|---|---|---|---|---|---|---|---|---|---|");
for (const runtime of RUNTIMES) {
  for (const variant of VARIANTS) {
    const rs = results[runtime]?.[variant];
    if (!rs) continue;
    const rps = rs.map((r) => r.rps);
    const ratios = rs.map((r) => r.ratio);
    const k = (x) => `${(x / 1000).toFixed(1)} k`;
    out.push(
      `| ${runtime} | ${LABELS[variant]} | ${k(median(rps))} (${range(rps, k)}) | ` +
        (variant === "none" ? "—" : `${pct(median(ratios))} (${range(ratios, pct)})`) +
        ` | ${median(rs.map((r) => r.cpuUs)).toFixed(1)}` +
        (variant === "none" ? "" : ` (${signed(median(rs.map((r) => r.cpuExtraUs)))})`) +
        ` | ${median(rs.map((r) => r.p50))} | ${median(rs.map((r) => r.p99))} | ` +
        `${median(rs.map((r) => r.cpu)).toFixed(0)} | ${median(rs.map((r) => r.rss)).toFixed(0)} | ` +
        `${["meters", "send", "otel"].includes(variant) ? median(rs.map((r) => r.sinkLines)) : "—"} |`,
    );
  }
}
out.push("");
out.push(
  "Instrumentation alone, CPU ns per request (none subtracted; bench/app/observe.ts, median of 7 rounds):",
);
out.push("");
out.push(`| variant | ${RUNTIMES.join(" | ")} |`);
out.push(`|---|${RUNTIMES.map(() => "---:").join("|")}|`);
for (const variant of others) {
  out.push(`| ${LABELS[variant]} | ${RUNTIMES.map((r) => inProcess[r]?.[variant] ?? "—").join(" | ")} |`);
}
console.log(out.join("\n"));
