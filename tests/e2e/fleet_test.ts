// A fleet: three VictoriaMetrics, thirty clients given all three addresses. The clients spread
// over the servers (none gets fewer than three), one server is frozen with SIGSTOP for 5 s in
// mid-stream (longer than the clients' stallTimeoutMs, so a client that mistook the frozen
// server's silence for a dead connection would fail over and replay) and then continued, and every point arrives at least once across the three, read
// back through /api/v1/export.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../../mod.ts";
import { startTsdb, type Tsdb } from "../../scripts/tsdb.ts";
import { nameMatch, runtime, uniquePrefix } from "../helpers/tsdb_env.ts";
import { HANG_GUARD_MS, settles, waitFor } from "../helpers/servers.ts";

const CLIENTS = 30;
const FREEZE_MS = 5_000;

describe(`e2e fleet of three servers, one frozen (${runtime})`, { timeout: 6 * HANG_GUARD_MS }, () => {
  const servers: Tsdb[] = [];

  before(async () => {
    for (let i = 0; i < 3; i++) servers.push(await startTsdb());
  });

  after(async () => {
    for (const s of servers) await s.dispose();
  });

  it("spreads 30 clients, survives a frozen server, and delivers every point at least once", async () => {
    const prefix = uniquePrefix("fleet");
    const addresses = servers.map((s) => `127.0.0.1:${s.telnetPort}`);
    const clients = Array.from(
      { length: CLIENTS },
      () => new Client(addresses, { hostTag: false, stallTimeoutMs: 2000, heartbeatMs: 800 }),
    );
    const firstPort: number[] = [];
    clients.forEach((c, k) => c.addEventListener("connect", (e) => firstPort[k] ??= e.detail.port));
    const base = Math.floor(Date.now() / 1000) - 3600; // one point a second per client, an hour back
    let seq = 0;
    let running = true;
    // 2 points per client every 100 ms: 600 points/s over the fleet.
    const streaming = (async () => {
      while (running) {
        for (let r = 0; r < 2; r++, seq++) {
          clients.forEach((c, k) => c.send(`${prefix}.points`, seq, { client: `c${k}` }, base + seq));
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      await waitFor(
        () => firstPort.filter((p) => p !== undefined).length === CLIENTS,
        HANG_GUARD_MS,
        "all connected",
      );
      const per = servers.map((s) => firstPort.filter((p) => p === s.telnetPort).length);
      console.log(`fleet (${runtime}): clients per server ${per.join(" / ")}`);
      for (const n of per) assert.ok(n >= 3, `a server got ${n} clients: ${per.join("/")}`);
      await waitFor(() => seq >= 50, HANG_GUARD_MS, "points flowing");
      const frozen = servers[0];
      frozen.signal("SIGSTOP");
      try {
        await new Promise((r) => setTimeout(r, FREEZE_MS));
      } finally {
        frozen.signal("SIGCONT");
      }
      const atThaw = seq;
      await waitFor(() => seq >= atThaw + 50, HANG_GUARD_MS, "points after the thaw");
    } finally {
      running = false;
      await streaming;
    }
    const total = seq;
    const stats = await settles(
      Promise.all(clients.map((c) => c.close({ timeoutMs: HANG_GUARD_MS }))),
      "close()",
    );
    for (const s of stats) assert.equal(s.accepted, s.sent + s.queued + s.dropped.total);
    assert.equal(stats.reduce((n, s) => n + s.dropped.total, 0), 0);
    // Every (client, point) on at least one of the three servers.
    const seen = new Set<string>();
    const deadline = Date.now() + HANG_GUARD_MS;
    while (seen.size < CLIENTS * total && Date.now() < deadline) {
      for (const server of servers) {
        for (const series of await server.exportSeries(nameMatch(prefix))) {
          for (const t of series.timestamps) seen.add(`${series.metric.client}@${t / 1000 - base}`);
        }
      }
      if (seen.size < CLIENTS * total) await new Promise((r) => setTimeout(r, 500));
    }
    const missing = [];
    for (let k = 0; k < CLIENTS; k++) {
      for (let i = 0; i < total; i++) if (!seen.has(`c${k}@${i}`)) missing.push(`c${k}@${i}`);
    }
    assert.deepEqual(missing.slice(0, 10), [], `${missing.length} of ${CLIENTS * total} missing`);
    const replayed = stats.reduce((n, s) => n + s.replayed, 0);
    console.log(
      `fleet (${runtime}): ${CLIENTS * total} points, all read back; frozen ${FREEZE_MS / 1000} s; ` +
        `${replayed} replayed, ${stats.reduce((n, s) => n + s.reconnects, 0)} reconnects`,
    );
  });
});
