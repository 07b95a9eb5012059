// The metrics-per-second limit against the real server.
//
// The limit is a token bucket holding at most one second's worth (burst =
// mps) and full when the client is made. With mps = 20,000 and 100,000
// points queued at once, the first 20,000 go at once and the other 80,000 at
// 20,000 per second: delivery takes 80,000 / 20,000 = 4.0 s, not 5 s.
//
// The client runs on a virtual clock (the `clock` option) while the socket and
// the server are real. The test moves that clock from one sleep's end to the
// next, in order, for as long as points wait for the bucket, and stops moving
// it once the last batch is handed to the socket: how long the limit held the
// writer back, and that no write ever went past what the bucket allowed at
// that moment, are exact on any machine. The stall watchdog is off
// (`stallTimeoutMs: 0`; VictoriaMetrics never answers probes anyway), so the
// bucket's waits are the only sleeps on that clock while points wait. How
// fast it goes in real time is printed, not asserted.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { autoTransport, Client } from "../../mod.ts";
import { HANG_GUARD_MS, settles } from "../helpers/servers.ts";
import { settle, VirtualClock } from "../helpers/scripted.ts";
import { recording } from "../helpers/transports.ts";
import {
  exportWhenComplete,
  nameMatch,
  runtime,
  sampleCount,
  uniquePrefix,
  useTsdb,
} from "../helpers/tsdb_env.ts";

const MPS = 20_000;
const POINTS = 100_000;
const LANES = 100; // series; a point's second is its number / LANES

describe(`e2e rate limit (${runtime})`, () => {
  const lease = useTsdb();

  it(`delivers ${POINTS} points at mps=${MPS} in 4 s of the client's clock, all of them`, async () => {
    const prefix = uniquePrefix("rate");
    const metric = `${prefix}.seq`;
    const base = Math.floor(Date.now() / 1000) - 300 - POINTS / LANES;
    const expectedMs = ((POINTS - MPS) / MPS) * 1000;
    const clock = new VirtualClock();
    const rec = recording(autoTransport, () => clock.now());
    const client = new Client("127.0.0.1", {
      port: lease.tsdb.telnetPort,
      transport: rec.transport,
      mps: MPS,
      qsize: POINTS,
      stallTimeoutMs: 0,
      clock,
    });
    const start = performance.now();
    for (let i = 0; i < POINTS; i++) {
      client.send(metric, i, { lane: String(i % LANES) }, base + Math.floor(i / LANES));
    }
    const handed = () => rec.writes.reduce((n, w) => n + w.lines, 0);
    for (let guard = 0; handed() < POINTS && guard < 1_000_000; guard++) {
      if (!(await clock.advanceToNext())) await settle(); // a write waits on the socket: real time
    }
    const now = clock.now(); // when the last batch left the bucket
    const stats = await settles(client.close({ timeoutMs: HANG_GUARD_MS }), "close()");
    const tookMs = performance.now() - start;
    console.log(
      `# rate limit (${runtime}): ${POINTS} points at mps=${MPS}: ${(now / 1000).toFixed(2)} s on the ` +
        `client's clock (${(expectedMs / 1000).toFixed(1)} s expected: ${MPS} at once, the rest at ` +
        `${MPS}/s), ${(tookMs / 1000).toFixed(2)} s real`,
    );
    assert.equal(stats.sent, POINTS, JSON.stringify(stats));
    assert.equal(stats.dropped.total, 0);
    // The writer waited exactly as long as the bucket needed (a sleep's rounding aside)…
    assert.ok(now >= expectedMs && now <= expectedMs + 100, `${now} ms on the client's clock`);
    // …and never wrote more than the bucket held: a burst's worth plus what the time since added.
    let written = 0;
    for (const w of rec.writes) {
      written += w.lines;
      assert.ok(written <= MPS + (MPS * w.at) / 1000, `${written} lines written by ${w.at} ms`);
    }
    assert.equal(written, POINTS);

    const exported = await exportWhenComplete(lease.tsdb, nameMatch(prefix), POINTS);
    assert.equal(sampleCount(exported), POINTS, "samples stored");
    const seen = new Uint8Array(POINTS);
    for (const s of exported) {
      for (let k = 0; k < s.values.length; k++) {
        const v = s.values[k];
        assert.ok(Number.isInteger(v) && v >= 0 && v < POINTS, `unexpected value ${v}`);
        assert.equal(s.metric.lane, String(v % LANES));
        assert.equal(s.timestamps[k], (base + Math.floor(v / LANES)) * 1000);
        seen[v]++;
      }
    }
    assert.ok(seen.every((n) => n === 1), "every point arrived exactly once");
  });
});
