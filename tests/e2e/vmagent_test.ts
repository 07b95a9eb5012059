// Through vmagent: a client sends telnet `put` to vmagent, which forwards to
// VictoriaMetrics by remote write through its persistent queue on disk.
// vmagent is restarted (SIGTERM, a pause, start) in mid-stream; the client
// reconnects by itself.
//
// vmagent, like VictoriaMetrics, never answers `version`: over telnet the
// client cannot learn what vmagent read, and delivery over the cut connection
// is at-most-once. What is asserted:
// - every point written on a connection that was not cut arrives;
// - on the cut connection only a tail is lost (vmagent reads in order), and
//   at most what was in flight at the stop: what the client had written on
//   it (stats().sent at the disconnect) minus the rows vmagent had read just
//   before the stop (vmagent_rows_inserted_total{type="opentsdb"}), so every
//   row vmagent read before its SIGTERM is stored, through its queue.
// The figures go on a line starting with "vmagent (<runtime>): ".

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../../mod.ts";
import { HANG_GUARD_MS, waitFor } from "../helpers/servers.ts";
import { counter, leaseTsdb, nameMatch, runtime, type TsdbLease, uniquePrefix } from "../helpers/tsdb_env.ts";
import { startVmagent, type Vmagent } from "../helpers/vmagent.ts";
import { cutFigures, lostOutsideCuts, track } from "../helpers/cuts.ts";

const CHUNK = 50; // points per burst
const PAUSE_MS = 10; // between bursts: up to 5,000 points/s
// The phases end on counts, not times.
const BEFORE_STOP_POINTS = 5_000;
const DOWN_MS = 300; // vmagent stays down at least this long
const AFTER_RECONNECT_POINTS = 5_000;
const MAX_QUEUED = 20_000; // the stream holds back while this many wait in the client
const MAX_POINTS = 200_000; // bounds the loop whatever happens
const LANES = 100; // VictoriaMetrics reads telnet timestamps as seconds: LANES points share a second

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe(`e2e through vmagent (${runtime})`, { timeout: 4 * HANG_GUARD_MS }, () => {
  let lease: TsdbLease;
  let agent: Vmagent | undefined;
  before(async () => {
    lease = await leaseTsdb();
    agent = await startVmagent(lease.tsdb.url);
  });
  after(async () => {
    await agent?.dispose();
    await lease?.release();
  });

  it("a vmagent restart loses at most what was in flight; what vmagent read is stored", async () => {
    const tsdb = lease.tsdb;
    const prefix = uniquePrefix("vmagent");
    const metric = `${prefix}.seq`;
    const base = Math.floor(Date.now() / 1000) - Math.ceil(MAX_POINTS / LANES) - 60;
    const client = new Client("127.0.0.1", {
      port: agent!.port,
      hostTag: "e2e",
      reconnect: { initialMs: 50, maxMs: 250 },
    });
    const t = track(client);
    let seq = 0;
    let streaming = true;
    const streamer = (async () => {
      while (streaming && seq < MAX_POINTS) {
        if (client.stats().queued < MAX_QUEUED) {
          for (let i = 0; i < CHUNK; i++, seq++) {
            client.send(metric, seq, { lane: String(seq % LANES) }, base + Math.floor(seq / LANES));
          }
        }
        await sleep(PAUSE_MS);
      }
    })();
    let readBeforeStop: number;
    try {
      await waitFor(() => client.stats().sent >= BEFORE_STOP_POINTS, HANG_GUARD_MS, "the stream to flow");
      readBeforeStop = counter(await agent!.metrics(), "vmagent_rows_inserted_total", 'type="opentsdb"');
      await agent!.stop();
      await sleep(DOWN_MS);
      await agent!.start();
      await waitFor(() => t.conns.length >= 2, HANG_GUARD_MS, "the reconnect");
      const target = client.stats().sent + AFTER_RECONNECT_POINTS;
      await waitFor(() => client.stats().sent >= target || seq >= MAX_POINTS, HANG_GUARD_MS, "points after");
    } finally {
      streaming = false;
      await streamer;
    }
    const stats = await client.close({ timeoutMs: HANG_GUARD_MS });
    const total = seq;
    assert.equal(stats.accepted, total);
    assert.equal(stats.dropped.total, 0, JSON.stringify(stats.dropped));
    assert.equal(stats.sent, total, "everything was written in the end");
    assert.ok(t.conns[0].to !== undefined, "the restart cut the first connection");
    // Only the rows of the cut connection that vmagent had not read before its stop may be lost.
    const inFlight = t.conns[0].to! - readBeforeStop;

    const copies = new Uint16Array(total);
    const readBack = async () => {
      copies.fill(0);
      for (const series of await tsdb.exportSeries(nameMatch(prefix))) {
        for (const v of series.values) {
          assert.ok(Number.isInteger(v) && v >= 0 && v < total, `unexpected value ${v}`);
          copies[v]++;
        }
      }
    };
    const deadline = Date.now() + HANG_GUARD_MS;
    for (await readBack(); lostOutsideCuts(t, copies).length > 0 && Date.now() < deadline; await readBack()) {
      await sleep(250);
    }
    await sleep(500); // a last look, for rows of the cut connection still in vmagent's queue
    await readBack();
    const required = lostOutsideCuts(t, copies);
    assert.deepEqual(required.slice(0, 10), [], `${required.length} points lost outside the cut connection`);
    const f = cutFigures(t, copies);
    assert.deepEqual(f.notTail, []);
    console.log(
      `vmagent (${runtime}): ${total} points, vmagent restarted after ${t.conns[0].to} were written; ` +
        `lost ${f.lost} (in flight at the stop: ${inFlight} = ${t.conns[0].to} written on the cut ` +
        `connection - ${readBeforeStop} read by vmagent), duplicated ${f.duplicated}, reconnects ${stats.reconnects}`,
    );
    assert.ok(f.lost <= inFlight, `lost ${f.lost}, more than the ${inFlight} in flight at the stop`);
  });
});
