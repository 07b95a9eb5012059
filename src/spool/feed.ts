/**
 * Moves lines between the writer's queue and a spool. With a spool, lines
 * flow queue → spool → connection: in "overflow" mode the queue's overflow
 * hook moves its oldest lines to disk instead of dropping them; in "always"
 * mode every line goes to disk at once (a write-ahead log). The writer reads
 * from the spool before the queue (those lines are older), commits a spool
 * batch once it is delivered, and at stop or process exit what is pending
 * goes to the spool. No runtime names here: the spool's disk is behind the
 * `Spool` interface.
 *
 * @module
 */

import type { BufferPool, InFlightLedger, SeqBatch } from "../ledger.ts";
import type { DropOldestQueue } from "../queue.ts";
import type { TokenBucket } from "../rate_limit.ts";
import type { Spool, SpoolPosition } from "./types.ts";

/** A batch read from the spool: it is committed there once delivered. */
export type SpoolBatch = SeqBatch & { spoolStart?: SpoolPosition; spoolEnd?: SpoolPosition };

/** What {@linkcode SpoolFeed.read} returns when the rate limit has no tokens now. */
export const RATE_LIMITED = "rate-limited";

/** What the feed needs of the writer. */
export interface FeedHost {
  /** Lines accepted so far: the sequence number the next one gets. */
  accepted(): number;
  /** Whether the writer has stopped. */
  stopped(): boolean;
  /** A full batch went to disk in "always" mode: write it now if the connection takes it. */
  pumpFull(): void;
}

/** Settings of a {@linkcode SpoolFeed}. */
export interface FeedOptions {
  /** The writer's queue. */
  queue: DropOldestQueue;
  /** Write buffers shared with the writer (their size is the largest batch). */
  buffers: BufferPool;
  /** The rate limit, if any: what is read from the spool takes its tokens. */
  limiter: TokenBucket | undefined;
  /** The writer. */
  host: FeedHost;
}

/**
 * The writer's side of a spool.
 *
 * @example
 * ```ts
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { BufferPool } from "../ledger.ts";
 * import { DropOldestQueue } from "../queue.ts";
 * import { SpoolFeed } from "./feed.ts";
 * import { FileSpool } from "./file.ts";
 *
 * const dir = mkdtempSync(join(tmpdir(), "potsdb-feed-"));
 * const spool = new FileSpool({ dir, maxBytes: 1 << 20, mode: "always", fsync: "never" }, () => {});
 * const queue = new DropOldestQueue(1000);
 * const feed = new SpoolFeed(spool, {
 *   queue,
 *   buffers: new BufferPool(65536, 4),
 *   limiter: undefined,
 *   host: { accepted: () => queue.length, stopped: () => false, pumpFull() {} },
 * });
 * queue.push("put a 1 1 t=v\n");
 * const batch = feed.read(); // "always": the queue goes to disk first, then is read from there
 * if (typeof batch !== "object") throw new Error("a batch was expected");
 * console.assert(batch.count === 1 && batch.seq === 0);
 * feed.delivered(batch); // off the disk
 * spool.close();
 * rmSync(dir, { recursive: true });
 * ```
 */
export class SpoolFeed {
  /** The spool. */
  readonly spool: Spool;
  /** "always" mode: every line goes to disk first. */
  readonly wal: boolean;
  readonly #o: FeedOptions;
  /** Sequence number of the spool's first line read since it was opened. */
  #base = 0;
  #spillScheduled = false;

  /**
   * Hooks the spool to the queue (its overflow, in "overflow" mode).
   *
   * @param spool the spool
   * @param options the queue, the buffers, the rate limit and the writer
   */
  constructor(spool: Spool, options: FeedOptions) {
    this.spool = spool;
    this.#o = options;
    this.wal = spool.mode === "always";
    if (!this.wal) options.queue.overflow = () => this.spill(true);
  }

  /** Whether the spool has lines to read. */
  get ready(): boolean {
    return this.spool.active && this.spool.unread > 0;
  }

  /** Sequence number of the spool's next unread line. */
  get nextSeq(): number {
    return this.#base + this.spool.consumed;
  }

  /** "always" mode, a line was queued: a full batch goes to disk now, anything less when the caller's task ends. */
  queued(): void {
    const queue = this.#o.queue;
    if (queue.bytes < this.#o.buffers.size) {
      if (!this.#spillScheduled) {
        this.#spillScheduled = true;
        queueMicrotask(() => {
          this.#spillScheduled = false;
          if (!this.#o.host.stopped()) this.spill(false);
        });
      }
      return;
    }
    this.spill(false);
    this.#o.host.pumpFull();
  }

  /**
   * Moves lines from the front of the queue into the spool: one batch when
   * `once` (to make room in a full queue), else all of them. A spool that
   * fails takes nothing; the queue then works as without one.
   *
   * @param once one batch only
   */
  spill(once: boolean): void {
    const spool = this.spool;
    const queue = this.#o.queue;
    if (!spool.active || queue.length === 0) return;
    // The spool's unread lines run on into these; when it has none, they start here.
    if (spool.unread === 0) this.#base = this.#o.host.accepted() - queue.length - spool.consumed;
    const buffers = this.#o.buffers;
    const into = buffers.take();
    try {
      while (queue.length > 0) {
        const batch = queue.peek(queue.length, buffers.size, into)!;
        if (!spool.append(batch.data, batch.count)) return;
        queue.discard(batch.count);
        if (once) return;
      }
    } finally {
      buffers.give(into);
    }
  }

  /**
   * The next batch from the spool.
   *
   * @returns the batch; `undefined` when the spool has none; {@linkcode RATE_LIMITED} when the rate limit has no
   * token now
   */
  read(): SpoolBatch | undefined | typeof RATE_LIMITED {
    if (this.wal) this.spill(false);
    if (!this.ready) return undefined;
    const spool = this.spool;
    let max = spool.unread;
    const limiter = this.#o.limiter;
    if (limiter !== undefined) {
      max = limiter.take(max);
      if (max === 0) return RATE_LIMITED;
    }
    const seq = this.nextSeq;
    const buffers = this.#o.buffers;
    const into = buffers.take();
    const read = spool.read(max, buffers.size, into);
    if (read === undefined || read.data.buffer !== into.buffer) buffers.give(into);
    if (limiter !== undefined) limiter.giveBack(max - (read?.count ?? 0));
    if (read === undefined) return undefined;
    return { data: read.data, count: read.count, seq, spoolStart: read.start, spoolEnd: read.end };
  }

  /**
   * A batch left the writer for good (delivered, or let go): if it came from
   * the spool, it is removed from the disk.
   *
   * @param batch the batch
   */
  delivered(batch: SeqBatch): void {
    const end = (batch as SpoolBatch).spoolEnd;
    if (end !== undefined) this.spool.commit(end);
  }

  /**
   * Writes every pending line to the spool: lines in flight and kept ones
   * (taken back from the ledger: the caller counts them), then the queue.
   * Batches read from the spool are on disk still (uncommitted), in their
   * place: at stop the spool is rewound to read them again first, and closed.
   * Runs at stop, and synchronously at process exit.
   *
   * @param ledger the writer's ledger, emptied here
   * @param stopping the writer stops (else the process exits)
   * @returns the kept lines taken back (they were counted as sent), and the lines the spool could not take
   */
  persist(ledger: InFlightLedger, stopping: boolean): { replayed: number; lost: number } {
    const spool = this.spool;
    if (!spool.active) {
      if (stopping) spool.close();
      return { replayed: 0, lost: 0 };
    }
    const replayed = ledger.requeue();
    const retry: SpoolBatch[] = [];
    for (let b = ledger.nextRetry(); b !== undefined; b = ledger.nextRetry()) retry.push(b);
    // Pending lines go to disk in their order. A batch only in memory (taken from the queue, or
    // read from disk and then dropped there by a full spool) is older than the lines spilled
    // after it: when newer lines are on disk, appending it would put it after them, so
    // everything pending is written again in order and the old records are let go.
    const inPlace = (b: SpoolBatch) => b.spoolStart !== undefined && spool.holds(b.spoolStart);
    const firstOut = retry.find((b) => !inPlace(b));
    const newerOnDisk = firstOut !== undefined &&
      (spool.unread > 0 || retry.some((b) => b.seq > firstOut.seq && inPlace(b)));
    const lost = newerOnDisk ? this.#rewrite(retry) : this.#appendMissing(retry);
    this.spill(false);
    if (stopping) {
      spool.rewind();
      spool.close();
    }
    return { replayed, lost };
  }

  /** Appends the batches not on disk (read from it and still there, they stay in their place). */
  #appendMissing(retry: SpoolBatch[]): number {
    const spool = this.spool;
    let lost = 0;
    for (const b of retry) {
      if (b.spoolStart !== undefined && spool.onDisk(b.spoolStart)) continue;
      if (lost > 0 || !spool.append(b.data, b.count)) lost += b.count;
    }
    return lost;
  }

  /**
   * Writes the batches, then the spool's unread lines, again after what is
   * on disk, and lets the old records go once all of it is written (a crash
   * in between leaves lines twice, never none). When the spool fails on the
   * way, a line not written again is lost unless its old record is still on
   * disk: a full spool may have dropped it while it was in flight, or these
   * very appends may have pushed its segment out.
   */
  #rewrite(retry: SpoolBatch[]): number {
    const spool = this.spool;
    const unread: { data: Uint8Array; count: number; spoolStart: SpoolPosition; spoolEnd: SpoolPosition }[] =
      [];
    let end: SpoolPosition | undefined;
    for (
      let r = spool.read(spool.unread, this.#o.buffers.size);
      r !== undefined;
      r = spool.read(spool.unread, this.#o.buffers.size)
    ) {
      unread.push({ data: r.data, count: r.count, spoolStart: r.start, spoolEnd: r.end });
      end = r.end;
    }
    for (const b of retry) {
      if (b.spoolEnd !== undefined && (end === undefined || before(end, b.spoolEnd))) end = b.spoolEnd;
    }
    let lost = 0;
    let written = true;
    let copied: SpoolPosition | undefined; // the end of the old records written again
    for (const b of [...retry, ...unread]) {
      if (written && spool.append(b.data, b.count)) {
        if (b.spoolEnd !== undefined) copied = b.spoolEnd;
        continue;
      }
      written = false;
      if (b.spoolStart === undefined || !spool.onDisk(b.spoolStart)) lost += b.count;
    }
    if (written && end !== undefined) spool.commit(end);
    // Failed on the way: the lines written again are on disk twice now (never none), and the
    // next process may deliver both; here they count once, as the new records (the failed
    // spool only marks their old ones delivered in memory).
    else if (copied !== undefined) spool.commit(copied);
    return lost;
  }
}

/** Whether position `a` comes before `b`. */
function before(a: SpoolPosition, b: SpoolPosition): boolean {
  return a.seg !== b.seg ? a.seg < b.seg : a.off !== b.off ? a.off < b.off : a.line < b.line;
}
