/**
 * The writer's record of lines that left the queue but are not yet known to
 * be written: batches handed to the connection and awaiting `done`, and
 * batches to write again after a connection was lost. Both keep the order
 * in which the lines were accepted.
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
  #retry: SeqBatch[] = [];
  /** Lines handed to the connection, awaiting `done`. */
  unconfirmedLines = 0;
  /** Lines waiting to be written again. */
  retryLines = 0;

  /** All lines recorded here. */
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

  /** The connection was lost: what was in flight is retried first, since it is older. */
  requeue(): void {
    this.#retry = this.#unconfirmed.concat(this.#retry);
    this.retryLines += this.unconfirmedLines;
    this.#unconfirmed = [];
    this.unconfirmedLines = 0;
  }

  /**
   * Forgets everything (the writer stopped).
   *
   * @returns the lines forgotten
   */
  clear(): number {
    const lines = this.lines;
    this.#unconfirmed = [];
    this.#retry = [];
    this.unconfirmedLines = 0;
    this.retryLines = 0;
    return lines;
  }
}
