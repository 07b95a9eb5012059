// Signals with a spool, across real processes of the runtime running this test: a child
// streams points to a sink here (loopback) with a spool in "overflow" or "always" mode, the
// test sends it SIGTERM (SIGINT, SIGHUP) mid-stream, and the child must end as the signal ends
// a process — killed by it, or status 128 + n — after its spool took what was queued and in
// flight; the next process on the directory then delivers the rest, so that every accepted
// point arrives exactly once. Also: a process that listens for SIGTERM itself is not ended by
// the client, and no listener exists without an open spool.
//
// "Accepted" at the signal: the child prints "ACCEPTED <n>" after each chunk of send() calls,
// before it yields. A signal is handled between tasks only, so the last line it printed is
// what it had accepted when the signal came, however many chunks it sent after the test
// decided to kill it. The points are numbered 0, 1, 2, …: what the killed process delivered
// and what the next one delivers must together be 0 .. n-1, each once.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as net from "node:net";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Client } from "../mod.ts";
import { closedPort, HANG_GUARD_MS, settles, waitFor } from "./helpers/servers.ts";
import { type ScriptChild, startScript } from "./helpers/child_script.ts";

const runtime = "Deno" in globalThis
  ? "deno"
  : "Bun" in globalThis
  ? "bun"
  : `node${process.versions.node.split(".")[0]}`;

type EndingSignal = "SIGINT" | "SIGTERM" | "SIGHUP";

type Child = ScriptChild;

function start(args: (string | number)[]): Child {
  return startScript("signal_script", args, HANG_GUARD_MS);
}

/** Ends a child that is still running (a failed test), and waits for it. */
async function stop(child: Child): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await child.ended;
}

interface SinkConnection {
  values: number[];
  closed: boolean;
}

/** A loopback server that records the value of each `put <metric>` line, per connection. */
async function startSink(metric: string) {
  const connections: SinkConnection[] = [];
  const sockets = new Set<net.Socket>();
  let paused = false;
  const prefix = `put ${metric} `;
  const server = net.createServer((socket) => {
    const conn: SinkConnection = { values: [], closed: false };
    connections.push(conn);
    sockets.add(socket);
    let partial = "";
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      const parts = (partial + d).split("\n");
      partial = parts.pop()!;
      for (const line of parts) if (line.startsWith(prefix)) conn.values.push(Number(line.split(" ")[3]));
    });
    socket.on("error", () => {});
    if (paused) socket.pause();
    socket.on("close", () => {
      conn.closed = true;
      sockets.delete(socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections,
    values: (from = 0) => connections.slice(from).flatMap((c) => c.values),
    /** Stops reading (new connections too), so that the kernel's buffers fill: backpressure. */
    pause(): void {
      paused = true;
      for (const s of sockets) s.pause();
    },
    resume(): void {
      paused = false;
      for (const s of sockets) s.resume();
    },
    close(): Promise<void> {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(join(tmpdir(), "potsdb-signal-"));
  try {
    await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function assertEndedBy(ended: { code: number | null; signal: string | null }, signal: EndingSignal): void {
  const status = 128 + constants.signals[signal];
  assert.ok(
    ended.signal === signal || ended.code === status,
    `ended with code ${ended.code}, signal ${ended.signal}: not by ${signal} (or status ${status})`,
  );
}

/** How `values` cover 0 .. accepted-1: those delivered more than once, those never, those never accepted. */
function coverage(values: number[], accepted: number) {
  const seen = new Uint8Array(accepted);
  let duplicates = 0;
  let unknown = 0;
  for (const v of values) {
    if (!Number.isInteger(v) || v < 0 || v >= accepted) unknown++;
    else if (seen[v]++ > 0) duplicates++;
  }
  let missing = 0;
  for (const n of seen) if (n === 0) missing++;
  return { duplicates, missing, firstMissing: seen.indexOf(0), unknown };
}

/** Every one of 0 .. accepted-1 delivered exactly once, and nothing else. */
function assertExactlyOnce(values: number[], accepted: number): void {
  const c = coverage(values, accepted);
  assert.equal(c.unknown, 0, `${c.unknown} delivered value(s) were never accepted`);
  assert.equal(
    c.missing,
    0,
    `${c.missing} accepted point(s) delivered by neither process (the first: ${c.firstMissing})`,
  );
  assert.equal(c.duplicates, 0, `${c.duplicates} point(s) delivered twice`);
}

/**
 * Streams to the sink (or to a closed port), sends `signal` once `killAt` points are accepted,
 * then delivers the spool with a client here; prints the figures, then checks them.
 */
async function signalDuringStream(
  dir: string,
  signal: EndingSignal,
  mode: "overflow" | "always",
  options: {
    serverUp: boolean;
    killAt: number;
    qsize: number;
    heartbeatMs: number | "default";
    mps: number;
    paused?: boolean;
  },
): Promise<void> {
  const sink = await startSink("signal.seq");
  if (options.paused) sink.pause();
  try {
    const port = options.serverUp ? sink.port : await closedPort();
    const { qsize, heartbeatMs, mps } = options;
    const child = start(["stream", dir, port, mode, 1_000_000, qsize, heartbeatMs, mps]);
    let dropped = 0;
    let accepted = 0;
    let signalledAt = 0;
    try {
      for await (const line of child.lines) {
        const m = /^ACCEPTED (\d+) (\d+)$/.exec(line);
        if (m) [accepted, dropped] = [Number(m[1]), Number(m[2])];
        if (signalledAt === 0 && (accepted >= options.killAt || line === "DONE")) {
          signalledAt = accepted;
          process.kill(child.pid!, signal);
        }
      }
      assertEndedBy(await child.ended, signal);
    } finally {
      await stop(child);
    }
    sink.resume();
    assert.ok(signalledAt > 0, `the child ended before the signal: ${child.stderrText()}`);
    assert.equal(dropped, 0, "the child dropped points: the test's queue is too small");
    // What the killed process wrote to its socket is all here once the sink sees it closed.
    await waitFor(() => sink.connections.every((c) => c.closed), HANG_GUARD_MS, "the killed child's socket");
    const firstConnections = sink.connections.length;
    const first = sink.values().length;

    const next = new Client("127.0.0.1", {
      dedup: false,
      port: sink.port,
      hostTag: false,
      spool: { dir, mode },
    });
    const recovered = next.stats().spool!.recovered;
    const s = await settles(next.close({ timeoutMs: HANG_GUARD_MS }), "the next process's close()");
    assert.equal(s.sent, recovered, "the next process wrote every point it found");
    assert.equal(s.spooled, 0);
    await waitFor(() => sink.connections.every((c) => c.closed), HANG_GUARD_MS, "the next process's socket");
    const second = sink.values(firstConnections).length;

    const c = coverage(sink.values(), accepted);
    console.log(
      `signal (${runtime}): ${signal}, ${mode} mode, server ${options.serverUp ? "up" : "down"}: ` +
        `${accepted} points accepted (signal sent at ${signalledAt}), ${first} delivered by the signalled ` +
        `process, ${second} by the next (${recovered} recovered), duplicates ${c.duplicates}` +
        (c.missing > 0 ? `, MISSING ${c.missing}` : ""),
    );
    assertExactlyOnce(sink.values(), accepted);
    assert.equal(first + second, accepted);
  } finally {
    await sink.close();
  }
}

describe(`signals with a spool (${runtime})`, () => {
  // The writer is held to 2,000 points a second (after a first burst of as many) while the child
  // streams far faster: at the signal most accepted points wait in the queue and the spool, and
  // the sink, reading all the time, leaves no write waiting on the kernel. In "overflow" mode a
  // queue of 500 makes each chunk of 1,000 overflow into the spool; in "always" mode every point
  // goes there anyway (and a queue smaller than a batch would drop points before they do).
  // heartbeatMs 0: no probes, so what the client wrote to the socket counts as delivered.
  for (const mode of ["overflow", "always"] as const) {
    it(`${mode} mode: SIGTERM mid-stream ends the process as SIGTERM does; the next process delivers every accepted point once`, () =>
      withDir((dir) =>
        signalDuringStream(dir, "SIGTERM", mode, {
          serverUp: true,
          killAt: 20_000,
          qsize: mode === "overflow" ? 500 : 100_000,
          heartbeatMs: 0,
          mps: 2000,
        })
      ));
  }

  for (const [signal, mode] of [["SIGINT", "always"], ["SIGHUP", "overflow"]] as const) {
    it(`${signal}, ${mode} mode, server down: the process ends as ${signal} ends it; nothing accepted is lost`, () =>
      withDir((dir) =>
        signalDuringStream(dir, signal, mode, {
          serverUp: false,
          killAt: 5_000,
          qsize: 100_000,
          heartbeatMs: 0,
          mps: 0,
        })
      ));
  }

  // With the default heartbeat, written lines are kept until a probe's answer confirms them; the
  // sink, like VictoriaMetrics, never answers, and the signal comes before the first probe. The
  // exit hook ends the connection as stop() does: a server never heard to answer gets no replay,
  // so the kept lines are let go (unconfirmed), not written a second time by the next process.
  it(
    "overflow mode, default heartbeat (lines kept for a probe's answer): SIGTERM, then every accepted point once",
    () =>
      withDir((dir) =>
        signalDuringStream(dir, "SIGTERM", "overflow", {
          serverUp: true,
          killAt: 20_000,
          qsize: 500,
          heartbeatMs: "default",
          mps: 2000,
        })
      ),
  );

  // The server stops reading: the kernel's buffers fill and a batch waits, part of it taken by the
  // kernel. The exit hook puts the whole batch into the spool, and what the kernel took reaches
  // the server as well: those lines arrive twice.
  it(
    "overflow mode, a server that stops reading: SIGTERM with a write half done, then every accepted point once",
    {
      todo: "the writer must learn from the transport how much of a pending write the kernel took",
    },
    () =>
      withDir((dir) =>
        signalDuringStream(dir, "SIGTERM", "overflow", {
          serverUp: true,
          killAt: 300_000,
          qsize: 500,
          heartbeatMs: 0,
          mps: 0,
          paused: true,
        })
      ),
  );

  it("a process that listens for SIGTERM itself is not ended, nor its spool closed; its close() delivers", () =>
    withDir(async (dir) => {
      const sink = await startSink("signal.own");
      const child = start(["own", dir, sink.port, 10_000]);
      try {
        const seen: string[] = [];
        for await (const line of child.lines) {
          seen.push(line);
          if (line === "READY") process.kill(child.pid!, "SIGTERM");
        }
        // One HANDLED: the client did not raise the signal again (the handler would have run twice).
        assert.deepEqual(
          seen,
          ["READY", "HANDLED", "AFTER spool open, handled 1", "CLOSED 10000"],
          child.stderrText(),
        );
        assert.deepEqual(await child.ended, { code: 0, signal: null });
        await waitFor(() => sink.connections.every((c) => c.closed), HANG_GUARD_MS, "the child's socket");
        assertExactlyOnce(sink.values(), 10_000);
        // Nothing was left for a next process.
        const next = new Client("127.0.0.1", { dedup: false, port: 1, hostTag: false, spool: { dir } });
        assert.equal(next.stats().spool!.recovered, 0);
        await next.close({ timeoutMs: 0 });
      } finally {
        await stop(child);
        await sink.close();
      }
    }));

  for (const order of ["before", "after"] as const) {
    it(`with signal-exit's listener (loaded ${order} the client): both run, and SIGTERM ends the process`, () =>
      withDir(async (dir) => {
        const down = await closedPort();
        const child = start(["signal-exit", dir, down, order]);
        const seen: string[] = [];
        try {
          for await (const line of child.lines) {
            seen.push(line);
            if (line === "READY") process.kill(child.pid!, "SIGTERM");
          }
          // Each leaving the signal to the other would keep the process alive until the hang guard.
          assertEndedBy(await child.ended, "SIGTERM");
        } finally {
          await stop(child);
        }
        assert.deepEqual(seen, ["READY", "SIGNAL-EXIT HANDLERS"], child.stderrText());
        const next = new Client("127.0.0.1", { dedup: false, port: down, hostTag: false, spool: { dir } });
        assert.equal(next.stats().spool!.recovered, 5000, "the spool took the queue");
        await next.close({ timeoutMs: 0 });
      }));
  }

  it("Deno: a handler added with Deno.addSignalListener (unseen) still runs, and the process goes on", {
    skip: "Deno" in globalThis ? false : "Deno only",
  }, () =>
    withDir(async (dir) => {
      const down = await closedPort();
      const child = start(["deno-native", dir, down]);
      const seen: string[] = [];
      try {
        for await (const line of child.lines) {
          seen.push(line);
          if (line === "READY") process.kill(child.pid!, "SIGTERM");
        }
        assert.deepEqual(await child.ended, { code: 0, signal: null }, child.stderrText());
      } finally {
        await stop(child);
      }
      // The client took the signal for one nobody handles: its spool has the points already.
      assert.deepEqual(seen, ["READY", "HANDLED, then CLOSED with 5000 in the spool"], child.stderrText());
      const next = new Client("127.0.0.1", { dedup: false, port: down, hostTag: false, spool: { dir } });
      assert.equal(next.stats().spool!.recovered, 5000);
      await next.close({ timeoutMs: 0 });
    }));

  it("listeners exist only while a spool is open, and never keep the process alive", () =>
    withDir(async (dir) => {
      const down = await closedPort();
      const child = start(["listeners", dir, down]);
      const stages: Record<string, number[]> = {};
      let end = false;
      try {
        for await (const line of child.lines) {
          const m = /^LISTENERS (\S+) (\d+) (\d+) (\d+)$/.exec(line);
          if (m) stages[m[1]] = [Number(m[2]), Number(m[3]), Number(m[4])];
          if (line === "END") end = true;
        }
        // Ended on its own with a spool client left open: the listeners did not hold it.
        assert.deepEqual(await child.ended, { code: 0, signal: null }, child.stderrText());
      } finally {
        await stop(child);
      }
      assert.ok(end);
      assert.deepEqual(stages, {
        "start": [0, 0, 0],
        "no-spool": [0, 0, 0],
        "one-spool": [1, 1, 1],
        "two-spools": [1, 1, 1],
        "one-closed": [1, 1, 1],
        "both-closed": [0, 0, 0],
        "left-open": [1, 1, 1],
      });
      // The spool left open took its points at exit.
      const next = new Client("127.0.0.1", {
        dedup: false,
        port: down,
        hostTag: false,
        spool: { dir: `${dir}/c` },
      });
      assert.equal(next.stats().spool!.recovered, 100);
      await next.close({ timeoutMs: 0 });
    }));

  it("in this process: a client without a spool adds no listener; one with a spool adds one per signal until closed", async () => {
    const signals = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
    const counts = () => signals.map((s) => process.listenerCount(s));
    const before = counts();
    const plain = new Client("127.0.0.1", { dedup: false, port: 1, hostTag: false });
    assert.deepEqual(counts(), before);
    await withDir(async (dir) => {
      const spooled = new Client("127.0.0.1", { dedup: false, port: 1, hostTag: false, spool: { dir } });
      assert.deepEqual(counts(), before.map((n) => n + 1));
      await spooled.close({ timeoutMs: 0 });
    });
    assert.deepEqual(counts(), before);
    await plain.close({ timeoutMs: 0 });
  });
});
