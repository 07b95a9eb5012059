// Partitions: a TSD on a test host in a network namespace loses its link (no RST) while the
// client sends 1,000 points/s. Scenario 1: a second, healthy TSD on loopback takes over —
// with a TSD that answers `version` every point arrives at least once; with one that does not,
// what is lost is at most what stats() counts as unconfirmed. Scenario 2: partition, then heal.
// Scenario 3: every address partitioned; close() keeps its deadline and the accounting adds up.
// Outcomes and accounting are asserted; the time to fail over is printed, not asserted.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { Client, type ClientStats, type ConnectionLostError } from "../mod.ts";
import { nodeTransport } from "../src/transport/node.ts";
import { closedPort, HANG_GUARD_MS, settles, waitFor } from "./helpers/servers.ts";
import { netnsUnavailable, startTestHost, type TestHost } from "./helpers/netns.ts";
import { type FakeTsd, startFakeTsd } from "./helpers/tsd.ts";

const unavailable = netnsUnavailable();
const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
// One name per test host, unique to this process.
let made = 0;
const nextHost = () => `pt${process.pid % 100000}h${made++}`;

// Short enough that a scenario takes seconds, long enough that a busy machine's scheduling
// delays (hundreds of ms) are not taken for a dead peer.
const LIVENESS = { stallTimeoutMs: 1500, heartbeatMs: 500, connectTimeoutMs: 1500 };
const TS = Math.floor(Date.now() / 1000);

function balanced(s: ClientStats): void {
  assert.equal(s.accepted, s.sent + s.queued + s.dropped.total, JSON.stringify(s));
}

const seqOf = (line: string) => Number(line.split(" ")[3]);

/** Sends 10 points every 10 ms (1,000/s), numbered from 0, until stopped. */
function stream(c: Client): { stop(): Promise<number>; readonly sent: number } {
  let n = 0;
  let running = true;
  const done = (async () => {
    while (running) {
      for (let k = 0; k < 10; k++) c.send("part.seq", n++, { t: "a" }, TS);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    get sent() {
      return n;
    },
    async stop() {
      running = false;
      await done;
      return n;
    },
  };
}

describe(`partitions through network namespaces (${runtime})`, {
  skip: unavailable,
  timeout: 10 * HANG_GUARD_MS,
}, () => {
  for (const answer of [true, false]) {
    it(`scenario 1: the TSD is partitioned, the second address takes over (${answer ? "answers version" : "silent"})`, async () => {
      const name = nextHost();
      let a: TestHost | undefined;
      let b: FakeTsd | undefined;
      let c: Client | undefined;
      try {
        a = await startTestHost(name, answer);
        const bPort = await closedPort(); // down until the client is on A
        c = new Client([`${a.address}:${a.port}`, `127.0.0.1:${bPort}`], {
          dedup: false,
          ...LIVENESS,
          hostTag: false,
          reconnect: { initialMs: 50, maxMs: 500 },
          transport: nodeTransport,
        });
        const lost: ConnectionLostError[] = [];
        const connects: string[] = [];
        c.addEventListener("disconnect", (e) => lost.push(e.detail));
        c.addEventListener("connect", (e) => connects.push(e.detail.host));
        const s = stream(c);
        await waitFor(() => connects.includes(a!.address), HANG_GUARD_MS, "connected to the test host");
        b = await startFakeTsd({ port: bPort, answer });
        // Past the first probe's verdict (answered, or silent), with points arriving at A.
        await waitFor(() => a!.puts().length >= 2000, HANG_GUARD_MS, "2,000 points at A");
        // The verdict must be in by outcome, not by time: an answered probe confirmed lines.
        if (answer) await waitFor(() => c!.stats().confirmed > 0, HANG_GUARD_MS, "a probe answered");
        a.partition();
        const cut = performance.now();
        await waitFor(() => b!.puts.length > 0, HANG_GUARD_MS, "points at B");
        const failover = performance.now() - cut;
        const atCut = s.sent;
        await waitFor(() => s.sent >= atCut + 1000, HANG_GUARD_MS, "a second more of points");
        const total = await s.stop();
        const stats = await settles(c.close({ timeoutMs: HANG_GUARD_MS }), "close()");
        balanced(stats);
        assert.equal(stats.dropped.total, 0);
        assert.equal(lost[0]?.code, "CONNECTION_STALLED", lost[0]?.message);
        await waitFor(() => b!.puts.length > 0 && c!.stats().queued === 0, HANG_GUARD_MS, "all written");
        const seen = new Set([...a.puts(), ...b.puts].map(seqOf));
        const missing = Array.from({ length: total }, (_, i) => i).filter((i) => !seen.has(i));
        console.log(
          `partition ${answer ? "answering" : "silent"} (${runtime}): failover ${
            (failover / 1000).toFixed(1)
          } s ` +
            `(stallTimeoutMs ${LIVENESS.stallTimeoutMs}, heartbeatMs ${LIVENESS.heartbeatMs}); ${total} sent, ` +
            `${missing.length} lost, ${stats.replayed} replayed, ${stats.confirmed} confirmed, ` +
            `${stats.unconfirmed} unconfirmed`,
        );
        if (answer) {
          assert.deepEqual(missing, [], "every point at least once");
          assert.ok(stats.replayed > 0, "what A did not acknowledge was written again");
        } else {
          assert.ok(
            missing.length <= stats.unconfirmed,
            `${missing.length} lost > ${stats.unconfirmed} unconfirmed`,
          );
          assert.equal(stats.replayed, 0, "nothing written twice to a server that never answered");
        }
      } finally {
        await c?.close({ timeoutMs: 0 });
        await b?.close();
        await a?.destroy();
      }
    });
  }

  it("scenario 2: partition, then heal: the one TSD gets every point at least once", async () => {
    const name = nextHost();
    let a: TestHost | undefined;
    let c: Client | undefined;
    try {
      a = await startTestHost(name, true);
      c = new Client(`${a.address}:${a.port}`, {
        dedup: false,
        ...LIVENESS,
        hostTag: false,
        reconnect: { initialMs: 50, maxMs: 500 },
        transport: nodeTransport,
      });
      const lost: ConnectionLostError[] = [];
      let connects = 0;
      c.addEventListener("disconnect", (e) => lost.push(e.detail));
      c.addEventListener("connect", () => connects++);
      const s = stream(c);
      await waitFor(() => a!.puts().length >= 2000, HANG_GUARD_MS, "2,000 points");
      a.partition();
      await waitFor(() => lost.length > 0, HANG_GUARD_MS, "the stall seen");
      a.heal();
      await waitFor(() => connects >= 2, HANG_GUARD_MS, "reconnected after the heal");
      const atHeal = s.sent;
      await waitFor(() => s.sent >= atHeal + 1000, HANG_GUARD_MS, "a second more");
      const total = await s.stop();
      await settles(c.flush({ timeoutMs: HANG_GUARD_MS }), "flush()");
      await waitFor(() => c!.stats().confirmed >= c!.stats().sent, HANG_GUARD_MS, "all confirmed");
      const stats = await c.close();
      balanced(stats);
      assert.equal(lost[0].code, "CONNECTION_STALLED");
      const seen = new Set(a.puts().map(seqOf));
      const missing = Array.from({ length: total }, (_, i) => i).filter((i) => !seen.has(i));
      assert.deepEqual(missing, []);
      assert.equal(stats.dropped.total, 0);
    } finally {
      await c?.close({ timeoutMs: 0 });
      await a?.destroy();
    }
  });

  it("scenario 3: every address partitioned: close() keeps its deadline, the accounting adds up", async () => {
    const hosts: TestHost[] = [];
    let c: Client | undefined;
    try {
      for (let k = 0; k < 2; k++) {
        const name = nextHost();
        hosts.push(await startTestHost(name, true));
      }
      c = new Client(hosts.map((h) => `${h.address}:${h.port}`), {
        dedup: false,
        ...LIVENESS,
        hostTag: false,
        reconnect: { initialMs: 50, maxMs: 500 },
        transport: nodeTransport,
      });
      let connects = 0;
      let stalls = 0;
      c.addEventListener("connect", () => connects++);
      c.addEventListener("disconnect", (e) => e.detail.code === "CONNECTION_STALLED" && stalls++);
      const s = stream(c);
      await waitFor(() => connects > 0 && c!.stats().sent > 2000, HANG_GUARD_MS, "sending");
      for (const h of hosts) h.partition();
      await waitFor(() => stalls > 0 && c!.stats().connectFailures > 0, HANG_GUARD_MS, "stalled, failing");
      await s.stop();
      // A deadline far shorter than the hang guard: close() must come back on its own.
      const stats = await settles(c.close({ timeoutMs: 500 }), "close() with a 500 ms deadline");
      balanced(stats);
      assert.equal(stats.queued, 0);
      assert.ok(stats.dropped.closed > 0, JSON.stringify(stats));
      assert.equal(stats.connected, false);
    } finally {
      await c?.close({ timeoutMs: 0 });
      for (const h of hosts) await h.destroy();
    }
  });
});
