/**
 * The writer's record of lines that left the queue but are not yet known to
 * be delivered: batches handed to the connection and awaiting `done`;
 * batches written but not yet acknowledged by the server (kept, up to a
 * bound, to be written again if the connection dies before the answer); and
 * batches to write again after a connection was lost. All keep the order in
 * which the lines were accepted.
 *
 * @module
 */

import type { Batch } from "./queue.ts";

/** A batch with the sequence number of its first line (lines are numbered from 0 as accepted). */
export interface SeqBatch extends Batch {
  /** Sequence number of the batch's first line. */
  seq: number;
}

/**
 * Batches in flight and batches to retry, with their line counts.
 *
 * @example
 * ```ts
 * import { InFlightLedger } from "./ledger.ts";
 *
 * const ledger = new InFlightLedger();
 * ledger.written({ data: new Uint8Array(4), count: 2, seq: 0 });
 * ledger.requeue(); // the connection was lost
 * console.assert(ledger.lines === 2 && ledger.nextRetry()?.seq === 0);
 * ```
 */
export class InFlightLedger {
  #unconfirmed: SeqBatch[] = [];
  #retained: SeqBatch[] = [];
  #retry: SeqBatch[] = [];
  /** Lines handed to the connection, awaiting `done`. */
  unconfirmedLines = 0;
  /** Lines written, kept until the server acknowledges them. */
  retainedLines = 0;
  /** Bytes of the retained lines. */
  retainedBytes = 0;
  /** Lines waiting to be written again. */
  retryLines = 0;

  /** Lines not yet written: in flight or to retry (retained lines are written). */
  get lines(): number {
    return this.unconfirmedLines + this.retryLines;
  }

  /** Whether a batch waits to be written again. */
  get hasRetry(): boolean {
    return this.#retry.length > 0;
  }

  /** Sequence number of the oldest line recorded here, if any. */
  get firstSeq(): number | undefined {
    return this.#unconfirmed[0]?.seq ?? this.#retry[0]?.seq;
  }

  /**
   * Records a batch handed to the connection.
   *
   * @param batch the batch
   */
  written(batch: SeqBatch): void {
    this.#unconfirmed.push(batch);
    this.unconfirmedLines += batch.count;
  }

  /**
   * The oldest batch in flight was written: it leaves the ledger.
   *
   * @returns that batch
   */
  confirm(): SeqBatch {
    const batch = this.#unconfirmed.shift()!;
    this.unconfirmedLines -= batch.count;
    return batch;
  }

  /**
   * Takes the oldest batch to retry.
   *
   * @returns the batch, or `undefined` when none waits
   */
  nextRetry(): SeqBatch | undefined {
    const batch = this.#retry.shift();
    if (batch !== undefined) this.retryLines -= batch.count;
    return batch;
  }

  /**
   * The oldest batch to retry, left where it is.
   *
   * @returns the batch, or `undefined` when none waits
   */
  peekRetry(): SeqBatch | undefined {
    return this.#retry[0];
  }

  /**
   * Keeps a written batch until the server acknowledges it.
   *
   * @param batch the batch `confirm()` returned
   */
  retain(batch: SeqBatch): void {
    this.#retained.push(batch);
    this.retainedLines += batch.count;
    this.retainedBytes += batch.data.length;
  }

  /**
   * The oldest retained batch leaves the ledger: acknowledged, or let go.
   *
   * @returns that batch, or `undefined` when none is retained
   */
  release(): SeqBatch | undefined {
    const batch = this.#retained.shift();
    if (batch !== undefined) {
      this.retainedLines -= batch.count;
      this.retainedBytes -= batch.data.length;
    }
    return batch;
  }

  /** Sequence number of the oldest retained line, if any. */
  get retainedSeq(): number | undefined {
    return this.#retained[0]?.seq;
  }

  /**
   * The connection was lost: what was retained and what was in flight is
   * retried first, in that order, since it is older.
   *
   * @returns the retained lines taken back (they were counted as written)
   */
  requeue(): number {
    const replayed = this.retainedLines;
    this.#retry = this.#retained.concat(this.#unconfirmed, this.#retry);
    this.retryLines += this.retainedLines + this.unconfirmedLines;
    this.#retained = [];
    this.retainedLines = 0;
    this.retainedBytes = 0;
    this.#unconfirmed = [];
    this.unconfirmedLines = 0;
    return replayed;
  }

  /**
   * Forgets everything (the writer stopped). Retained lines were written
   * already, so they are let go, not counted.
   *
   * @returns the lines forgotten that were never written
   */
  clear(): number {
    const lines = this.lines;
    this.#unconfirmed = [];
    this.#retained = [];
    this.#retry = [];
    this.unconfirmedLines = 0;
    this.retainedLines = 0;
    this.retainedBytes = 0;
    this.retryLines = 0;
    return lines;
  }
}

/**
 * Write buffers of one size, kept for reuse: a batch is copied into one
 * instead of a new allocation per write, and given back once the transport
 * is done with it.
 *
 * @example
 * ```ts
 * import { BufferPool } from "./ledger.ts";
 *
 * const pool = new BufferPool(65536, 4);
 * const buffer = pool.take();
 * pool.give(buffer);
 * console.assert(pool.take() === buffer);
 * ```
 */
export class BufferPool {
  /** Bytes of each buffer. */
  readonly size: number;
  readonly #max: number;
  readonly #spare: Uint8Array[] = [];

  /**
   * @param size bytes of each buffer
   * @param max most buffers kept
   */
  constructor(size: number, max: number) {
    this.size = size;
    this.#max = max;
  }

  /** A buffer of `size` bytes: a spare one, else a new one. */
  take(): Uint8Array {
    return this.#spare.pop() ?? new Uint8Array(this.size);
  }

  /**
   * Keeps `buffer` for reuse when it is one of this pool's size and there is room.
   *
   * @param buffer a buffer the caller is done with
   */
  give(buffer: Uint8Array): void {
    if (buffer.byteLength === this.size && this.#spare.length < this.#max) this.#spare.push(buffer);
  }
}
