/**
 * A bounded FIFO of encoded lines that drops its oldest entry when full.
 *
 * @module
 */

/** What {@linkcode DropOldestQueue.take} hands the writer: lines joined into one string. */
export interface Batch {
  /** The lines, each ending in `\n`, concatenated. */
  text: string;
  /** How many lines `text` holds. */
  count: number;
}

/**
 * A ring buffer of strings. `push` is O(1); when `capacity` entries are held
 * the oldest is discarded and counted in `dropped`. A capacity of 0 means
 * unbounded (the ring grows).
 *
 * @example
 * ```ts
 * import { DropOldestQueue } from "@x/potsdb";
 *
 * const q = new DropOldestQueue(2);
 * q.push("a\n");
 * q.push("b\n");
 * q.push("c\n"); // "a\n" is dropped
 * console.assert(q.dropped === 1);
 * console.assert(q.take(10, 1024)?.text === "b\nc\n");
 * ```
 */
export class DropOldestQueue {
  /** The most entries held at once; 0 = unbounded. */
  readonly capacity: number;
  /** Entries discarded because the queue was full, since it was made. */
  dropped = 0;
  #ring: (string | undefined)[];
  #head = 0;
  #length = 0;
  #chars = 0;
  // Reused by take() to gather a batch.
  #parts: string[] = [];

  /**
   * Makes an empty queue.
   *
   * @param capacity most entries held at once; 0 = unbounded
   */
  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) {
      throw new RangeError(`capacity must be a non-negative integer, got ${capacity}`);
    }
    this.capacity = capacity;
    this.#ring = new Array(capacity === 0 ? 1024 : Math.min(capacity, 1024));
  }

  /** Entries held. */
  get length(): number {
    return this.#length;
  }

  /** UTF-16 units held, summed over all entries (a cheap proxy for bytes). */
  get chars(): number {
    return this.#chars;
  }

  /**
   * Appends `line`; when the queue is full the oldest entry is dropped.
   *
   * @param line the entry
   * @returns 1 when an entry was dropped to make room, else 0
   */
  push(line: string): number {
    let dropped = 0;
    if (this.#length === this.capacity && this.capacity !== 0) {
      const old = this.#ring[this.#head]!;
      this.#ring[this.#head] = undefined;
      this.#head = (this.#head + 1) % this.#ring.length;
      this.#length--;
      this.#chars -= old.length;
      this.dropped++;
      dropped = 1;
    } else if (this.#length === this.#ring.length) {
      this.#grow();
    }
    const ring = this.#ring;
    let tail = this.#head + this.#length;
    if (tail >= ring.length) tail -= ring.length;
    ring[tail] = line;
    this.#length++;
    this.#chars += line.length;
    return dropped;
  }

  /**
   * Removes up to `maxCount` entries from the front, stopping before the
   * batch would exceed `maxChars` (the first entry is always taken).
   *
   * @param maxCount most entries to take
   * @param maxChars most UTF-16 units to take
   * @returns the entries joined, or undefined when the queue is empty or `maxCount` < 1
   */
  take(maxCount: number, maxChars: number): Batch | undefined {
    if (this.#length === 0 || maxCount < 1) return undefined;
    const ring = this.#ring;
    const size = ring.length;
    const parts = this.#parts;
    let head = this.#head;
    let chars = 0;
    let count = 0;
    const limit = Math.min(maxCount, this.#length);
    while (count < limit) {
      const next = ring[head]!;
      if (count > 0 && chars + next.length > maxChars) break;
      parts[count++] = next;
      chars += next.length;
      ring[head] = undefined;
      head = head + 1 === size ? 0 : head + 1;
    }
    // One join builds a flat string at once; `+=` would build a rope of ropes that the
    // socket write has to walk and flatten.
    parts.length = count;
    const text = parts.join("");
    parts.length = 0;
    this.#head = head;
    this.#length -= count;
    this.#chars -= chars;
    return { text, count };
  }

  /**
   * Removes everything.
   *
   * @returns how many entries were removed
   */
  clear(): number {
    const n = this.#length;
    this.#ring.fill(undefined);
    this.#head = 0;
    this.#length = 0;
    this.#chars = 0;
    return n;
  }

  #grow(): void {
    const old = this.#ring;
    const size = this.capacity === 0 ? old.length * 2 : Math.min(this.capacity, old.length * 2);
    const ring = new Array<string | undefined>(size);
    for (let i = 0; i < this.#length; i++) ring[i] = old[(this.#head + i) % old.length];
    this.#ring = ring;
    this.#head = 0;
  }
}
