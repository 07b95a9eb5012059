// Server restart while streaming: the client reconnects by itself, every
// point sent from the disconnect on arrives, and the loss stays within what
// was in flight when the server went away.
//
// Telnet has no acknowledgements: a point counts as sent once its bytes are
// in the operating system's buffers. Lines the client had written but the
// server had not yet read when it stopped are gone (at-most-once). The bound
// asserted here is measured, not guessed:
//
//   in flight ≤ stats.sent at the disconnect event   (lines written to the OS
//                                                      on the old connection)
//             − vm_rows_inserted_total just before the stop (lines the server
//                                                      had read and stored; a
//                                                      graceful stop keeps them)
//
// Lines still in the writer (unconfirmed or queued) are not lost: on the
// disconnect they go back in front of the queue and are written again, so
// they can at worst arrive twice. For scale the test also prints the static
// ceiling: the kernel's largest send + receive buffers (tcp_wmem and tcp_rmem
// maxima) plus the writer's unconfirmed batches (the transport's high-water
// mark plus one batch), in lines.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Client } from "../../mod.ts";
import { startTsdb, type Tsdb } from "../../scripts/tsdb.ts";
import { HANG_GUARD_MS, waitFor } from "../helpers/servers.ts";
import { counter, exportWhenComplete, nameMatch, runtime, uniquePrefix } from "../helpers/tsdb_env.ts";
import { assertRestartLoss, countArrivals, markReconnect, seqStream } from "../helpers/restart.ts";

const CHUNK = 200; // points per send burst
const PAUSE_MS = 5; // between bursts: a steady stream of some 10-40 k points/s
// The phases end on counts, not on times, so a slow machine (or a slow restart) changes how
// long they take, not what is asserted.
const BEFORE_STOP_POINTS = 20_000; // written before the server is stopped
const DOWN_MS = 500; // the server stays down at least this long
const AFTER_RECONNECT_POINTS = 20_000; // sent after the reconnect
// The streamer holds back while this many points wait in the client's queue (its qsize is
// 100,000): a server slow to come back makes the stream wait, never the queue drop.
const MAX_QUEUED = 50_000;
const MAX_POINTS = 1_000_000; // bounds the loop whatever happens
// VictoriaMetrics reads telnet timestamps as seconds, so a point's series
// (lane) and second come from its number: LANES points share each second.
const LANES = 500;
const BATCH_BYTES = 65536; // the client's default batchBytes
const HIGH_WATER_MARK = 128 * 1024; // the buffered transports' (Deno, Bun); Node's is 16 KiB

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Largest TCP send plus receive buffer in bytes; Linux defaults when /proc is not readable. */
function kernelBufferCeiling(): number {
  const max = (file: string, fallback: number) => {
    try {
      return Number(readFileSync(file, "utf8").trim().split(/\s+/)[2]);
    } catch {
      return fallback;
    }
  };
  return max("/proc/sys/net/ipv4/tcp_wmem", 4 << 20) + max("/proc/sys/net/ipv4/tcp_rmem", 6 << 20);
}

describe(`e2e restart (${runtime})`, () => {
  // Its own server: this test stops and starts it.
  let tsdb: Tsdb;
  before(async () => {
    tsdb = await startTsdb();
  });
  after(async () => {
    await tsdb?.dispose();
  });

  it("reconnects by itself and loses at most what was in flight at the stop", async () => {
    const prefix = uniquePrefix("restart");
    const metric = `${prefix}.seq`;
    // Seconds from far enough back that MAX_POINTS / LANES of them end in the past.
    const base = Math.floor(Date.now() / 1000) - Math.ceil(MAX_POINTS / LANES) - 60;
    const client = new Client("127.0.0.1", {
      port: tsdb.telnetPort,
      hostTag: "e2e",
      reconnect: { initialMs: 50, maxMs: 250 },
    });
    // The shortest line (value 0): the most lines a byte count can hold.
    const lineBytes = `put ${metric} ${base} 0 lane=0 host=e2e\n`.length;
    const stream = seqStream(client, {
      metric,
      base,
      lanes: LANES,
      chunk: CHUNK,
      pauseMs: PAUSE_MS,
      maxPoints: MAX_POINTS,
      maxQueued: MAX_QUEUED,
    });
    const marks = markReconnect(client, () => stream.seq);

    await waitFor(() => client.stats().sent >= BEFORE_STOP_POINTS, HANG_GUARD_MS, "the stream to flow");
    const ingestedBeforeStop = counter(await tsdb.metrics(), "vm_rows_inserted_total", 'type="opentsdb"');
    const seqAtStop = stream.seq;
    await tsdb.stop();
    await sleep(DOWN_MS);
    const seqAtStart = stream.seq;
    await tsdb.start();
    await waitFor(() => marks.reconnectSeq !== undefined, HANG_GUARD_MS, "the reconnect");
    await waitFor(
      () => stream.seq >= marks.reconnectSeq! + AFTER_RECONNECT_POINTS || stream.seq >= MAX_POINTS,
      HANG_GUARD_MS,
      "points sent after the reconnect",
    );
    const total = await stream.stop();
    const stats = await client.close({ timeoutMs: HANG_GUARD_MS });

    assert.ok(total - marks.reconnectSeq! >= AFTER_RECONNECT_POINTS, "points were sent after the reconnect");
    assert.equal(stats.accepted, total);
    assert.equal(stats.dropped.total, 0, JSON.stringify(stats));
    assert.equal(stats.sent, total, "everything was written in the end");
    assert.ok(stats.reconnects >= 1, "reconnected");

    // Every point arrives except those lost in flight: wait for the count to
    // settle at the lowest it may be, then look at what is there.
    const bound = marks.sentAtDisconnect - ingestedBeforeStop;
    const exported = await exportWhenComplete(tsdb, nameMatch(prefix), total - bound, HANG_GUARD_MS);
    const a = countArrivals(exported, total);
    const ceiling = Math.ceil((kernelBufferCeiling() + HIGH_WATER_MARK + BATCH_BYTES) / lineBytes);
    console.log(
      `# restart (${runtime}): ${total} points, stop at #${seqAtStop}, start at #${seqAtStart}, ` +
        `disconnect seen at #${marks.disconnectSeq}, reconnect at #${marks.reconnectSeq}; ` +
        `lost ${a.lost}${a.lost ? ` (#${a.firstLost}..#${a.lastLost})` : ""}, duplicates ${a.duplicates}; ` +
        `in-flight bound ${bound} (written ${marks.sentAtDisconnect} − stored ${ingestedBeforeStop}), ` +
        `static ceiling ${ceiling}`,
    );
    assertRestartLoss(a, marks, bound);
    assert.ok(a.lost <= ceiling, `lost ${a.lost} > static ceiling ${ceiling}`);
  });
});
