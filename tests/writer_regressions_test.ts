// Where the writer's parts meet (issues #20, #21, #24): each test pins one defect that was
// measured, with a scripted telnet transport and a virtual clock, so that nothing waits on
// real time. Outcomes and accounting only.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Client,
  type ClientStats,
  ConnectError,
  ConnectionLostError,
  MemoryTransport,
  ServerError,
} from "../mod.ts";
import { isProbeAnswer, Liveness } from "../src/liveness.ts";
import { lineSplitter } from "../src/runtime.ts";
import type { Transport } from "../src/transport/types.ts";
import { ScriptedTransport, settle, VirtualClock } from "./helpers/scripted.ts";

const TS = 1700000000;

function balanced(s: ClientStats): void {
  assert.equal(s.accepted, s.sent + s.queued + s.dropped.total, JSON.stringify(s));
}

function send(c: Client, from: number, to: number): void {
  for (let i = from; i < to; i++) c.send("seq", i, { t: "a" }, TS);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

function setup(options: ConstructorParameters<typeof Client>[1] = {}, host: string | string[] = "tsd:4242") {
  const clock = new VirtualClock();
  const t = new ScriptedTransport(() => clock.now());
  const c = new Client(host, { transport: t, clock, hostTag: false, dedup: false, ...options });
  return { clock, t, c };
}

/** Closes `c` while the virtual clock runs (a close that waits for an answer needs time to pass). */
async function closeRunning(c: Client, clock: VirtualClock, timeoutMs = 1000): Promise<ClientStats> {
  const closing = c.close({ timeoutMs });
  let done = false;
  closing.then(() => done = true, () => done = true);
  for (let i = 0; i < 100 && !done; i++) await clock.advance(timeoutMs / 10, 10);
  return closing;
}

describe("#20.1 no reconnect storm", () => {
  it("an answering address that then closes every connection at once is retried at the backoff's pace", async () => {
    const initialMs = 100;
    const maxMs = 1000;
    const { clock, t, c } = setup({ heartbeatMs: 100, reconnect: { initialMs, maxMs } });
    try {
      send(c, 0, 100);
      await clock.advance(500, 10);
      assert.equal(c.stats().confirmed, 100, "the address answered");
      t.answer = () => false;
      send(c, 100, 200);
      await clock.advance(10, 10);
      const closedAt = clock.now();
      const before = t.attempts.length;
      // From now on every connection is closed cleanly at once. A storm guard: after 200
      // attempts connects are refused, so that a writer that loops still lets the test end.
      t.onConnect = (conn) => {
        if (t.attempts.length > before + 200) t.refuse.add("*");
        queueMicrotask(() => conn.close());
      };
      t.current!.close();
      await clock.advance(3000, 10);
      const attempts = t.attempts.slice(before).map((a) => a.at);
      assert.ok(attempts.length >= 3, `still retried: ${attempts.length}`);
      // Each wait is at least the lower half of the backoff's step for that attempt.
      let last = closedAt;
      attempts.forEach((at, k) => {
        const floor = Math.min(maxMs, initialMs * 2 ** k) / 2;
        assert.ok(
          at - last >= floor,
          `attempt ${k} after ${at - last} ms, backoff allows ${floor}: ${attempts}`,
        );
        last = at;
      });
      const s = c.stats();
      assert.ok(s.replayed <= 100 * attempts.length, `replayed ${s.replayed}`);
      balanced(s);
    } finally {
      t.refuse.add("*");
      await c.close({ timeoutMs: 0 });
    }
  });
});

describe("#20.4 stallTimeoutMs: 0", () => {
  it("counts telnet writes as unconfirmed: without liveness nothing is confirmed", async () => {
    const { clock, t, c } = setup({ stallTimeoutMs: 0 });
    t.answer = () => false;
    send(c, 0, 100);
    await clock.advance(10_000, 100);
    const s = await closeRunning(c, clock);
    assert.equal(s.confirmed, 0);
    assert.equal(s.unconfirmed, 100);
    assert.equal(t.probes, 0, "no probes");
    balanced(s);
  });
});

/** The most lines any window of the writes holds beyond what a token bucket allows. */
function overRate(t: ScriptedTransport, mps: number): number {
  let worst = 0;
  const w = t.writes;
  for (let i = 0; i < w.length; i++) {
    let lines = 0;
    for (let j = i; j < w.length; j++) {
      lines += w[j].lines.length;
      worst = Math.max(worst, lines - (mps + (mps * (w[j].at - w[i].at)) / 1000));
    }
  }
  return worst;
}

describe("#20.5 mps holds for replays", () => {
  it("lines written again wait for tokens like new ones", async () => {
    const mps = 100;
    const { clock, t, c } = setup({ heartbeatMs: 100, mps, reconnect: { initialMs: 10, maxMs: 20 } });
    try {
      send(c, 0, 50);
      await clock.advance(2000, 10);
      assert.equal(c.stats().confirmed, 50, "the address answered");
      t.answer = () => false;
      send(c, 50, 150);
      await clock.advance(10, 10);
      t.current!.close(new Error("reset"));
      t.answer = () => true;
      await clock.advance(3000, 10);
      const s = c.stats();
      assert.equal(s.replayed, 100);
      assert.ok(overRate(t, mps) <= 0, `${overRate(t, mps)} lines over the rate`);
      balanced(s);
    } finally {
      await c.close({ timeoutMs: 0 });
    }
  });
});

describe("#20.5 mps holds for spool reads", () => {
  for (const mode of ["always", "overflow"] as const) {
    it(`${mode}: lines read from the spool take tokens`, async () => {
      const dir = tempDir();
      try {
        const mps = 100;
        // The first process leaves 300 lines on disk; the next one delivers them at mps.
        const first = setup({ spool: { dir, mode, fsync: "never" } });
        first.t.refuse.add("*");
        send(first.c, 0, 300);
        await first.c.close({ timeoutMs: 0 });
        const { clock, t, c } = setup({ mps, spool: { dir, mode, fsync: "never" } });
        assert.equal(c.stats().spool?.recovered, 300);
        send(c, 300, 400);
        await clock.advance(5000, 10);
        const s = await closeRunning(c, clock);
        balanced(s);
        assert.deepEqual(t.values(), range(0, 400));
        assert.ok(overRate(t, mps) <= 0, `${overRate(t, mps)} lines over the rate`);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

describe("#20.11 rebalancing writes no duplicates", () => {
  it("moves only after an answer confirmed what was written", async () => {
    const { clock, t, c } = setup({ heartbeatMs: 50, rebalanceMs: 300 }, ["a:1", "b:1"]);
    let n = 0;
    for (let round = 0; round < 150; round++) {
      send(c, n, n += 10);
      await clock.advance(20, 10);
      balanced(c.stats());
    }
    const s = await closeRunning(c, clock);
    assert.ok(t.connections.length >= 4, `${t.connections.length} connections`);
    assert.ok(new Set(t.connections.map((x) => x.address)).size === 2);
    assert.deepEqual(t.values().sort((x, y) => x - y), range(0, n), "every point once");
    assert.equal(s.replayed, 0);
    assert.equal(s.confirmed, n);
    assert.equal(s.lastError, undefined, "a rebalance is no error");
    balanced(s);
  });
});

describe("#20.12 lastError", () => {
  it("is the most recent problem, whichever part saw it", async () => {
    const t = new MemoryTransport();
    const c = new Client("m", { transport: t, hostTag: false, dedup: false });
    try {
      send(c, 0, 10);
      await c.flush();
      t.reply("put: illegal argument: bad");
      assert.ok(c.stats().lastError instanceof ServerError);
      t.disconnect(new Error("reset by peer"));
      await settle();
      const last = c.stats().lastError;
      assert.ok(last instanceof ConnectionLostError, String(last));
    } finally {
      await c.close({ timeoutMs: 0 });
    }
  });
});

function tempDir(): string {
  return fs.mkdtempSync(join(tmpdir(), "potsdb-writer-"));
}

describe("#20.14 and #21.3: the close deadline with a spool", () => {
  for (const mode of ["overflow", "always"] as const) {
    it(`${mode}: kept, never-answered lines stay on disk, in their place, for the next process`, async () => {
      const dir = tempDir();
      try {
        const { clock, t, c } = setup({ heartbeatMs: 100, spool: { dir, mode, fsync: "never" } });
        send(c, 0, 10);
        await clock.advance(500, 10);
        assert.equal(c.stats().confirmed, 10, "the address answered");
        t.answer = () => false;
        send(c, 10, 110);
        await clock.advance(10, 10);
        assert.equal(t.values().length, 110, "written");
        const s = await closeRunning(c, clock, 1000);
        balanced(s);
        assert.equal(s.confirmed, 10);
        assert.equal(s.unconfirmed, 0, "nothing let go");
        assert.equal(s.spooled, 100, "kept on disk");
        assert.equal(s.dropped.total, 0);

        const next = setup({ heartbeatMs: 100, spool: { dir, mode, fsync: "never" } });
        assert.equal(next.c.stats().spool?.recovered, 100);
        send(next.c, 110, 120);
        await next.clock.advance(500, 10);
        const s2 = await closeRunning(next.c, next.clock);
        balanced(s2);
        assert.deepEqual(
          next.t.values(),
          range(10, 120),
          "the kept lines first, in order, then the new ones",
        );
        assert.equal(s2.confirmed, 110);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

describe("#21.3 order at the close deadline (overflow spool)", () => {
  it("lines in flight go to disk before newer lines the full queue spilled there", async () => {
    const dir = tempDir();
    try {
      const { clock, t, c } = setup({ qsize: 10, batchBytes: 4096, spool: { dir, fsync: "never" } });
      t.holdWrites = true; // the first batch stays in flight; the writer waits for ready()
      send(c, 0, 5);
      await clock.advance(10, 10);
      send(c, 5, 40); // the queue (10) overflows: its oldest lines spill to disk
      await clock.advance(10, 10);
      assert.ok(c.stats().spooled > 0, "newer lines spilled");
      const s = await closeRunning(c, clock, 100);
      balanced(s);
      assert.equal(s.dropped.total, 0);
      const next = setup({ spool: { dir, fsync: "never" } });
      const s2 = await closeRunning(next.c, next.clock);
      balanced(s2);
      assert.deepEqual(next.t.values(), range(0, 40), "in their order");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("suspected defects of #20", () => {
  it("a slow but live server is not stalled: progress behind backpressure restarts the probe's timer", () => {
    let now = 0;
    const live = new Liveness({
      heartbeatMs: 5000,
      stallTimeoutMs: 15000,
      expectAnswers: true,
      now: () => now,
    });
    live.written(10);
    live.probeSent(); // behind megabytes of kernel buffer
    for (now = 5000; now <= 40_000; now += 5000) {
      live.peerRead(); // the server reads on, slowly: backed-up bytes move
      assert.notEqual(live.tick(true), "stalled", `at ${now} ms`);
    }
    now += 15_001;
    assert.equal(live.tick(false), "stalled", "no progress and no answer for stallTimeoutMs");
    // Progress into an empty buffer proves nothing of the peer (a partitioned one takes bytes too).
    const quiet = new Liveness({
      heartbeatMs: 5000,
      stallTimeoutMs: 15000,
      expectAnswers: true,
      now: () => now,
    });
    quiet.written(1);
    quiet.probeSent();
    now += 10_000;
    quiet.progressed();
    now += 5001;
    assert.equal(quiet.tick(false), "stalled");
  });

  it("the answering addresses are forgotten: a server that stopped answering stalls once, not forever", async () => {
    const { clock, t, c } = setup({
      heartbeatMs: 100,
      stallTimeoutMs: 1000,
      reconnect: { initialMs: 10, maxMs: 20 },
    });
    const stalls: ConnectionLostError[] = [];
    c.addEventListener("disconnect", (e) => e.detail.code === "CONNECTION_STALLED" && stalls.push(e.detail));
    try {
      send(c, 0, 10);
      await clock.advance(500, 10);
      assert.equal(c.stats().confirmed, 10);
      t.answer = () => false; // now a server that takes lines and never answers
      let n = 10;
      for (let round = 0; round < 100; round++) {
        send(c, n, n += 10);
        await clock.advance(100, 10);
      }
      assert.equal(stalls.length, 1, `${stalls.length} stalls`);
      const s = c.stats();
      assert.ok(s.replayed <= 1000, `replayed ${s.replayed}`);
      balanced(s);
    } finally {
      await c.close({ timeoutMs: 0 });
    }
  });

  it("the TLS wrapper keeps Transport.acknowledges", async () => {
    const inner = new MemoryTransport();
    const acking: Transport = {
      name: "acking",
      acknowledges: true,
      connect: (o) => inner.connect(o),
      checkTls() {},
    };
    const c = new Client("m", { transport: acking, tls: true, hostTag: false, dedup: false });
    send(c, 0, 10);
    const s = await c.close();
    assert.equal(s.confirmed, 10);
    assert.ok(!inner.received().includes("version"), "no probes for a transport that acknowledges");
  });

  it("Client.connect tries every address; each failure is counted and cools its address down", async () => {
    for (let run = 0; run < 6; run++) {
      const clock = new VirtualClock();
      const t = new ScriptedTransport(() => clock.now());
      t.refuse.add("down:1");
      const c = await Client.connect(["down:1", "up:1", "up:2"], {
        transport: t,
        clock,
        hostTag: false,
        dedup: false,
      });
      try {
        const s = c.stats();
        assert.equal(s.connected, true);
        assert.equal(s.connectFailures, t.attempts.length - 1, JSON.stringify(t.attempts));
        if (s.connectFailures === 0) continue;
        assert.ok(s.lastError instanceof ConnectError);
        // The refused address cools down: the next connection goes to one that works.
        t.current!.close();
        send(c, 0, 1);
        await clock.advance(1, 1);
        assert.notEqual(t.attempts.at(-1)!.address, "down:1");
      } finally {
        await c.close({ timeoutMs: 0 });
      }
    }
  });
});

describe("a wall clock stepped forward (NTP)", () => {
  it("moves the timestamps, not what the writer measures: a live connection is not stalled", async () => {
    /** now() is wall time that NTP steps; monotonic() runs on. */
    class SteppedClock extends VirtualClock {
      step = 0;
      override now(): number {
        return this.time + this.step;
      }
      monotonic(): number {
        return this.time;
      }
    }
    const clock = new SteppedClock();
    const t = new ScriptedTransport(() => clock.time);
    const c = new Client("tsd:4242", {
      transport: t,
      clock,
      hostTag: false,
      dedup: false,
      heartbeatMs: 100,
      stallTimeoutMs: 1000,
    });
    const ends: string[] = [];
    c.addEventListener("disconnect", (e) => ends.push(e.detail.code));
    try {
      send(c, 0, 10);
      await clock.advance(300, 10);
      assert.equal(c.stats().confirmed, 10);
      t.answer = () => false; // the next probe's answer is late
      send(c, 10, 20);
      await clock.advance(150, 10);
      assert.ok(t.probes >= 2, "a probe waits for its answer");
      clock.step += 3_600_000;
      await clock.advance(100, 10);
      t.current!.reply(t.answerLines[0]);
      t.current!.reply(t.answerLines[1]);
      c.send("stamped", 1, { t: "a" }); // no timestamp: now()
      await clock.advance(300, 10);
      assert.deepEqual(ends, [], "an hour of wall clock is not an hour without an answer");
      const stamped = t.lines().find((l) => l.startsWith("put stamped "));
      assert.equal(Number(stamped?.split(" ")[2]), Math.floor(clock.now() / 1000));
      balanced(c.stats());
    } finally {
      await closeRunning(c, clock, 0);
    }
  });
});

describe("#21.1 close() confirms", () => {
  it("sends a last probe and counts what its answer confirms: unconfirmed 0 over an answering server", async () => {
    const { clock, t, c } = setup();
    send(c, 0, 1000);
    await clock.advance(10, 10);
    const s = await closeRunning(c, clock);
    assert.equal(s.confirmed, 1000);
    assert.equal(s.unconfirmed, 0);
    assert.ok(t.probes >= 1);
    balanced(s);
  });

  it("flush({ confirmed: true }) waits for the answer the same way", async () => {
    const { clock, c } = setup();
    try {
      send(c, 0, 500);
      await clock.advance(10, 10);
      const flushed = c.flush({ confirmed: true, timeoutMs: 60_000 });
      let done = false;
      flushed.then(() => done = true);
      for (let i = 0; i < 100 && !done; i++) await clock.advance(10, 10);
      await flushed;
      assert.equal(c.stats().confirmed, 500);
    } finally {
      await c.close({ timeoutMs: 0 });
    }
  });

  it("a server that never answers: close() does not wait for an answer", async () => {
    const { clock, t, c } = setup();
    t.answer = () => false;
    send(c, 0, 100);
    await clock.advance(10, 10);
    const start = clock.now();
    let done = false;
    const closing = c.close({ timeoutMs: 60_000 }).then((s) => (done = true, s));
    await settle();
    await clock.advance(0);
    assert.ok(done, "settled with no time passing");
    const s = await closing;
    assert.equal(clock.now(), start);
    assert.equal(s.unconfirmed, 100);
    balanced(s);
  });
});

describe("#24 InfluxDB's answer to version", () => {
  it("is a probe answer, even without a newline after it", () => {
    assert.ok(isProbeAnswer("InfluxDB TSDB proxy"));
    const lines: string[] = [];
    const push = lineSplitter((l) => lines.push(l));
    push("InfluxDB TSDB pro");
    push("xyInfluxDB TSDB proxy");
    assert.deepEqual(lines, ["InfluxDB TSDB proxy", "InfluxDB TSDB proxy"]);
  });

  it("confirms, with no server error", async () => {
    const { clock, t, c } = setup({ heartbeatMs: 100 });
    t.answerLines = ["InfluxDB TSDB proxy"];
    let serverErrors = 0;
    c.addEventListener("server-error", () => serverErrors++);
    send(c, 0, 100);
    await clock.advance(500, 10);
    const s = await closeRunning(c, clock);
    assert.equal(s.confirmed, 100);
    assert.equal(s.serverErrors + serverErrors, 0);
    assert.equal(s.lastError, undefined);
  });
});
