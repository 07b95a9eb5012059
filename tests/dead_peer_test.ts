// Dead peers over loopback, with a fake OpenTSDB that answers `version` or stays silent:
// acknowledged delivery and replay, one probe per silent connection, a stalled connection
// left for the next address, rebalancing, and HTTP's ?sync. Outcomes and accounting only;
// every wait is a hang guard.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Client, type ClientStats, type ConnectionLostError } from "../mod.ts";
import { httpTransport } from "../src/transport/http.ts";
import { nodeTransport } from "../src/transport/node.ts";
import { closedPort, HANG_GUARD_MS, settles, waitFor } from "./helpers/servers.ts";
import { type FakeTsd, startFakeTsd } from "./helpers/tsd.ts";

const TS = 1700000000;

function balanced(s: ClientStats): void {
  assert.equal(s.accepted, s.sent + s.queued + s.dropped.total, JSON.stringify(s));
}

/** The sequence numbers (values) in put lines. */
function values(puts: string[]): number[] {
  return puts.map((l) => Number(l.split(" ")[3]));
}

async function sendRounds(c: Client, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    c.send("seq", i, { t: "a" }, TS);
    if (i % 100 === 99) await new Promise((r) => setTimeout(r, 1));
  }
}

describe("acknowledged delivery over telnet", { timeout: 4 * HANG_GUARD_MS }, () => {
  it("counts the points an answer to version confirms; the answers are no server errors", async () => {
    const tsd = await startFakeTsd({ answer: true });
    const c = new Client("127.0.0.1", {
      dedup: false,
      port: tsd.port,
      hostTag: false,
      heartbeatMs: 20,
      transport: nodeTransport,
    });
    try {
      await sendRounds(c, 0, 1000);
      await waitFor(() => c.stats().confirmed === 1000, HANG_GUARD_MS, "1000 confirmed");
      const s = await c.close();
      assert.ok(tsd.probes >= 1);
      assert.deepEqual(values(tsd.puts), Array.from({ length: 1000 }, (_, i) => i));
      assert.equal(s.serverErrors, 0);
      assert.equal(s.replayed, 0);
      balanced(s);
    } finally {
      await tsd.close();
    }
  });

  it("writes again what a dead connection had not had acknowledged: at least once", async () => {
    const tsd = await startFakeTsd({ answer: true });
    const c = new Client("127.0.0.1", {
      dedup: false,
      port: tsd.port,
      hostTag: false,
      heartbeatMs: 20,
      reconnect: { initialMs: 10, maxMs: 50 },
      transport: nodeTransport,
    });
    try {
      await sendRounds(c, 0, 500);
      await waitFor(() => c.stats().confirmed === 500, HANG_GUARD_MS, "500 confirmed");
      tsd.answer = false; // the server now takes lines but no longer answers
      const probes = tsd.probes;
      await sendRounds(c, 500, 800);
      await waitFor(
        () => tsd.puts.length === 800 && tsd.probes > probes,
        HANG_GUARD_MS,
        "800 arrived, probed",
      );
      assert.equal(c.stats().confirmed, 500);
      tsd.answer = true;
      const connections = tsd.connections;
      // The connection dies before any answer for the last 300.
      tsd.dropAll();
      await waitFor(() => tsd.connections > connections, HANG_GUARD_MS, "a new connection");
      await waitFor(() => c.stats().confirmed === 800, HANG_GUARD_MS, "all 800 confirmed");
      const s = await c.close();
      assert.equal(s.replayed, 300);
      const got = values(tsd.puts);
      for (let i = 0; i < 800; i++) assert.ok(got.includes(i), `${i} arrived`);
      assert.equal(got.length, 1100, "the 300 unacknowledged ones twice");
      assert.equal(s.sent, 800);
      balanced(s);
    } finally {
      await tsd.close();
    }
  });

  it("a server that never answers gets one probe per connection and stays at-most-once", async () => {
    const tsd = await startFakeTsd();
    const c = new Client("127.0.0.1", {
      dedup: false,
      port: tsd.port,
      hostTag: false,
      heartbeatMs: 10,
      stallTimeoutMs: 100,
      transport: nodeTransport,
    });
    try {
      for (let round = 0; round < 20; round++) {
        await sendRounds(c, round * 50, round * 50 + 50);
        await new Promise((r) => setTimeout(r, 20));
      }
      await c.flush();
      await waitFor(() => tsd.puts.length === 1000, HANG_GUARD_MS, "1000 arrived");
      const s = await c.close();
      assert.equal(tsd.probes, 1);
      assert.equal(tsd.connections, 1);
      assert.equal(s.unconfirmed, 1000);
      assert.equal(s.confirmed + s.replayed + s.serverErrors, 0);
      balanced(s);
    } finally {
      await tsd.close();
    }
  });

  it("with heartbeatMs: 0, sends no probe at all", async () => {
    const tsd = await startFakeTsd({ answer: true });
    const c = new Client("127.0.0.1", {
      dedup: false,
      port: tsd.port,
      hostTag: false,
      heartbeatMs: 0,
      transport: nodeTransport,
    });
    try {
      await sendRounds(c, 0, 500);
      await c.flush();
      await waitFor(() => tsd.puts.length === 500, HANG_GUARD_MS, "500 arrived");
      const s = await c.close();
      assert.equal(tsd.probes, 0);
      assert.equal(s.unconfirmed, 500);
    } finally {
      await tsd.close();
    }
  });
});

describe("stalls and addresses", { timeout: 4 * HANG_GUARD_MS }, () => {
  it("a server that stops reading stalls; its address cools down and the next one gets the points", async () => {
    const hung = await startFakeTsd();
    const bPort = await closedPort(); // the second address is down until the client is on the first
    const c = new Client([`127.0.0.1:${hung.port}`, `127.0.0.1:${bPort}`], {
      dedup: false,
      hostTag: false,
      heartbeatMs: 0,
      stallTimeoutMs: 300,
      reconnect: { initialMs: 10, maxMs: 50 },
      transport: nodeTransport,
    });
    const lost: ConnectionLostError[] = [];
    const connects: number[] = [];
    c.addEventListener("disconnect", (e) => lost.push(e.detail));
    c.addEventListener("connect", (e) => connects.push(e.detail.port));
    let healthy: FakeTsd | undefined;
    try {
      c.send("seq", -1, { t: "a" }, TS);
      await waitFor(() => connects.length === 1, HANG_GUARD_MS, "connected to the first");
      hung.pause();
      healthy = await startFakeTsd({ port: bPort });
      // Fill the kernel's buffers until the client sees no progress.
      let i = 0;
      const deadline = Date.now() + HANG_GUARD_MS;
      while (lost.length === 0 && Date.now() < deadline) await sendRounds(c, i, i += 2000);
      assert.equal(lost[0]?.code, "CONNECTION_STALLED", lost[0]?.message);
      await waitFor(() => connects.length === 2, HANG_GUARD_MS, "connected to the second");
      assert.deepEqual(connects, [hung.port, bPort]);
      const s = await settles(c.close({ timeoutMs: HANG_GUARD_MS }), "close()");
      balanced(s);
      assert.equal(s.dropped.total, 0);
      // What went to the hung server is lost (at-most-once, counted as unconfirmed); the rest arrived.
      const atB = values(healthy.puts);
      assert.ok(atB.length > 0);
      assert.ok(i - atB.length <= s.unconfirmed, `${i - atB.length} lost, ${s.unconfirmed} unconfirmed`);
      assert.deepEqual(
        atB,
        Array.from({ length: atB.length }, (_, k) => i - atB.length + k),
        "a suffix, in order",
      );
    } finally {
      await c.close({ timeoutMs: 0 });
      await hung.close();
      await healthy?.close();
    }
  });

  it("rebalanceMs moves the connection between addresses", async () => {
    const a = await startFakeTsd();
    const b = await startFakeTsd();
    const c = new Client([`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`], {
      dedup: false,
      hostTag: false,
      rebalanceMs: 30,
      transport: nodeTransport,
    });
    const connects: number[] = [];
    c.addEventListener("connect", (e) => connects.push(e.detail.port));
    try {
      let i = 0;
      const deadline = Date.now() + HANG_GUARD_MS;
      while (new Set(connects).size < 2 && Date.now() < deadline) {
        await sendRounds(c, i, i += 100);
        await new Promise((r) => setTimeout(r, 5));
      }
      assert.equal(new Set(connects).size, 2, "both addresses got a connection");
      for (let k = 1; k < connects.length; k++) assert.notEqual(connects[k], connects[k - 1]);
      const s = await c.close();
      assert.equal(s.lastError, undefined, "a rebalance is no error");
      await waitFor(() => a.puts.length + b.puts.length === i, HANG_GUARD_MS, "every point");
      assert.deepEqual(
        values([...a.puts, ...b.puts]).sort((x, y) => x - y),
        Array.from({ length: i }, (_, k) => k),
      );
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe("httpTransport({ sync })", () => {
  it("asks the server to answer once the points are stored", async () => {
    const urls: string[] = [];
    const transport = httpTransport({
      sync: true,
      syncTimeoutMs: 2000,
      gzip: false,
      fetch: (url) => {
        urls.push(url);
        return Promise.resolve(new Response(null, { status: 204 }));
      },
    });
    const c = new Client("127.0.0.1", { dedup: false, port: 4242, hostTag: false, transport });
    c.send("m", 1, { t: "a" }, TS);
    const s = await c.close();
    assert.equal(s.confirmed, 1);
    assert.match(urls[0], /\/api\/put\?details&sync&sync_timeout=2000$/);
    assert.throws(() => httpTransport({ syncTimeoutMs: 10 }), /sync: true/);
  });
});
