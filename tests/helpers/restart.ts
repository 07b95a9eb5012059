// A numbered stream through a server restart, shared by the restart tests (VictoriaMetrics
// stopped and started, stunnel stopped and started): point #n has value n, series `lane=n % lanes`
// and second `base + n / lanes`, so an export tells exactly which points arrived and how often.

import assert from "node:assert/strict";
import type { Client } from "../../mod.ts";
import type { ExportedSeries } from "../../scripts/tsdb.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How a {@linkcode seqStream} runs. */
export interface SeqStreamOptions {
  /** The metric every point goes to. */
  metric: string;
  /** The first second (a point's second is `base + n / lanes`). */
  base: number;
  /** Points per second: series `lane=0` … `lane=lanes-1`. */
  lanes: number;
  /** Points per burst. */
  chunk: number;
  /** Pause between bursts. */
  pauseMs: number;
  /** Bounds the loop whatever happens. */
  maxPoints: number;
  /** Holds the stream back while this many points wait in the client (so the queue never drops). */
  maxQueued?: number;
}

/** A running stream: its position, and how to stop it. */
export interface SeqStream {
  /** Points sent so far (the next point's number). */
  readonly seq: number;
  /** Stops the stream and returns how many points it sent. */
  stop(): Promise<number>;
}

/** Sends numbered points in bursts until stopped or `maxPoints` is reached. */
export function seqStream(client: Client, o: SeqStreamOptions): SeqStream {
  let seq = 0;
  let running = true;
  const done = (async () => {
    while (running && seq < o.maxPoints) {
      if (o.maxQueued === undefined || client.stats().queued < o.maxQueued) {
        for (let i = 0; i < o.chunk; i++, seq++) {
          client.send(o.metric, seq, { lane: String(seq % o.lanes) }, o.base + Math.floor(seq / o.lanes));
        }
      }
      await sleep(o.pauseMs);
    }
  })();
  return {
    get seq() {
      return seq;
    },
    async stop() {
      running = false;
      await done;
      return seq;
    },
  };
}

/** Where a stream was when the client first lost its connection, and when it had one again. */
export interface ReconnectMarks {
  /** The stream's position at the first disconnect event. */
  disconnectSeq: number | undefined;
  /** `stats().sent` at that moment: lines written to the old connection. */
  sentAtDisconnect: number;
  /** The stream's position at the first connect after it. */
  reconnectSeq: number | undefined;
}

/** Marks the first disconnect and the reconnect after it against `seq()`. */
export function markReconnect(client: Client, seq: () => number): ReconnectMarks {
  const marks: ReconnectMarks = { disconnectSeq: undefined, sentAtDisconnect: 0, reconnectSeq: undefined };
  client.addEventListener("disconnect", () => {
    if (marks.disconnectSeq !== undefined) return;
    marks.disconnectSeq = seq();
    marks.sentAtDisconnect = client.stats().sent;
  });
  client.addEventListener("connect", () => {
    if (marks.disconnectSeq !== undefined) marks.reconnectSeq ??= seq();
  });
  return marks;
}

/** What arrived of `total` numbered points. */
export interface Arrivals {
  /** Points that never arrived. */
  lost: number;
  /** The first and last of them (-1 when none). */
  firstLost: number;
  lastLost: number;
  /** Arrivals beyond the first of each point. */
  duplicates: number;
  /** How often point #n arrived. */
  seen: Uint8Array;
}

/** Counts the arrivals of points 0 … total-1 in an export; any other value fails the test. */
export function countArrivals(exported: ExportedSeries[], total: number): Arrivals {
  const seen = new Uint8Array(total);
  let samples = 0;
  for (const s of exported) {
    for (const v of s.values) {
      assert.ok(Number.isInteger(v) && v >= 0 && v < total, `unexpected value ${v}`);
      seen[v]++;
      samples++;
    }
  }
  let lost = 0;
  let firstLost = -1;
  let lastLost = -1;
  for (let i = 0; i < total; i++) {
    if (seen[i] > 0) continue;
    lost++;
    if (firstLost < 0) firstLost = i;
    lastLost = i;
  }
  return { lost, firstLost, lastLost, duplicates: samples - (total - lost), seen };
}

/**
 * The loss rules of a restart over telnet: every point sent from the disconnect on arrived,
 * the loss is within `bound` (lines written to the old connection and not stored before the
 * stop), and only lines written to the old connection were lost.
 */
export function assertRestartLoss(a: Arrivals, marks: ReconnectMarks, bound: number): void {
  assert.ok(
    marks.disconnectSeq !== undefined && marks.reconnectSeq !== undefined,
    "disconnected and reconnected",
  );
  for (let i = marks.disconnectSeq; i < a.seen.length; i++) {
    assert.ok(a.seen[i] > 0, `point #${i}, sent after the disconnect, did not arrive`);
  }
  assert.ok(a.lost <= bound, `lost ${a.lost} > in-flight bound ${bound}`);
  assert.ok(a.lastLost < marks.sentAtDisconnect, "only lines written on the old connection may be lost");
}
