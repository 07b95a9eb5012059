/**
 * A bounded FIFO of encoded lines that drops its oldest entry when full.
 *
 * Lines are kept as UTF-8 bytes in one growing ring buffer, not as a string
 * each: a queue that fills and drops while the server is down then makes no
 * garbage per line, and a batch goes to the socket as the bytes it already is.
 *
 * @module
 */

import { OptionsError, ValidationError } from "./errors.ts";

/** What {@linkcode DropOldestQueue.take} hands the writer: whole lines, as bytes. */
export interface Batch {
  /** The lines, each ending in `\n`, as UTF-8. The caller owns it. */
  data: Uint8Array;
  /** How many lines `data` holds. */
  count: number;
}

/**
 * Where {@linkcode PutEncoder.encodeTo} puts a line: as the three parts it
 * is built of, so that it is never joined into a string of its own.
 */
export interface LineSink {
  /**
   * Appends the line `head + value + tail`.
   *
   * @param head the line's first bytes (UTF-8)
   * @param value ASCII text (a formatted number)
   * @param tail the line's last bytes (UTF-8), ending in `\n`
   * @returns 1 when the oldest line was dropped to make room, else 0
   */
  pushLine(head: Uint8Array, value: string, tail: Uint8Array): number;
  /**
   * Appends the line `head + value + tail`, the value given as the decimal
   * `scaled / 10 ** point` and written in fixed notation (see {@linkcode writeDecimal}),
   * with no string made for it.
   *
   * @param head the line's first bytes (UTF-8)
   * @param scaled the value times `10 ** point`: an integer, |scaled| < 2 ** 53
   * @param point how many digits go after the decimal point (0: none, and no point)
   * @param tail the line's last bytes (UTF-8), ending in `\n`
   * @returns 1 when the oldest line was dropped to make room, else 0
   */
  pushDecimalLine(head: Uint8Array, scaled: number, point: number, tail: Uint8Array): number;
}

/**
 * How many bytes {@linkcode writeDecimal} writes for `scaled` and `point`.
 *
 * @param scaled an integer, |scaled| < 2 ** 53
 * @param point digits after the decimal point
 * @returns the text's length
 */
export function decimalLength(scaled: number, point: number): number {
  const v = scaled < 0 ? -scaled : scaled;
  let digits = 1;
  for (let p = 10; p <= v; p *= 10) digits++;
  // At least one digit before the point: 0.05, not .05.
  if (point > 0) digits = (digits > point ? digits : point + 1) + 1;
  return scaled < 0 ? digits + 1 : digits;
}

/**
 * Writes `scaled / 10 ** point` in fixed notation at `end - length` .. `end` of `buf`,
 * digits from the last: `-`, the integer part (at least `0`), then `.` and exactly
 * `point` digits when `point` > 0. (5, 1) is `0.5`, (-125, 2) is `-1.25`, (42, 0) is `42`.
 *
 * @param buf where to write
 * @param end the offset after the last byte
 * @param length {@linkcode decimalLength} of `scaled` and `point`
 * @param scaled an integer, |scaled| < 2 ** 53
 * @param point digits after the decimal point
 */
export function writeDecimal(
  buf: Uint8Array,
  end: number,
  length: number,
  scaled: number,
  point: number,
): void {
  const start = scaled < 0 ? end - length + 1 : end - length;
  if (scaled < 0) buf[start - 1] = 0x2d; // "-"
  const v = scaled < 0 ? -scaled : scaled;
  // Below 2 ** 31 in int32 arithmetic: a division by 10 is then a multiplication, not a
  // floating-point division, about half the cost of the whole value.
  if (v <= 0x7fffffff) writeInt32Digits(buf, start, end, v | 0, point);
  else writeDigits(buf, start, end, v, point);
}

function writeInt32Digits(buf: Uint8Array, start: number, end: number, v: number, point: number): void {
  let at = end;
  for (let i = 0; i < point; i++) {
    const q = (v / 10) | 0;
    buf[--at] = 0x30 + v - q * 10;
    v = q;
  }
  if (point > 0) buf[--at] = 0x2e; // "."
  do {
    const q = (v / 10) | 0;
    buf[--at] = 0x30 + v - q * 10;
    v = q;
  } while (at > start);
}

function writeDigits(buf: Uint8Array, start: number, end: number, v: number, point: number): void {
  let at = end;
  for (let i = 0; i < point; i++) {
    const q = Math.floor(v / 10);
    buf[--at] = 0x30 + v - q * 10;
    v = q;
  }
  if (point > 0) buf[--at] = 0x2e; // "."
  do {
    const q = Math.floor(v / 10);
    buf[--at] = 0x30 + v - q * 10;
    v = q;
  } while (at > start);
}

const utf8 = new TextEncoder();

// Bytes and line slots the queue starts with. Once empty it shrinks back to them when it
// had grown past 16 times that, so one burst into a large queue does not keep its memory.
const INITIAL_BYTES = 64 * 1024;
const INITIAL_LINES = 1024;
const SHRINK_FACTOR = 16;

/**
 * A ring of lines. `push` is O(1) amortised; when `capacity` lines are held
 * the oldest is discarded and counted in `dropped`. A capacity of 0 means
 * unbounded (the ring grows).
 *
 * @example
 * ```ts
 * import { DropOldestQueue } from "./queue.ts";
 *
 * const q = new DropOldestQueue(2);
 * q.push("a\n");
 * q.push("b\n");
 * q.push("c\n"); // "a\n" is dropped
 * console.assert(q.dropped === 1);
 * const batch = q.take(10, 1024)!;
 * console.assert(batch.count === 2);
 * console.assert(new TextDecoder().decode(batch.data) === "b\nc\n");
 * ```
 */
export class DropOldestQueue implements LineSink {
  /** The most lines held at once; 0 = unbounded. */
  readonly capacity: number;
  /** Lines discarded because the queue was full, since it was made. */
  dropped = 0;
  /**
   * Called when a line is pushed into the full queue, before the oldest is
   * dropped: it may take lines from the front (with `peek` and `discard`) so
   * that none is. The writer sets it when a spool takes the overflow.
   */
  overflow: (() => void) | undefined = undefined;
  // Line bytes. Held lines run from the oldest's start to #tail, and when #wrapped they
  // continue from offset 0 (the space between #wrapEnd and the end of #buf is unused).
  #buf = new Uint8Array(INITIAL_BYTES);
  #tail = 0;
  #wrapped = false;
  #wrapEnd = 0;
  // Where each held line starts and ends in #buf: a ring of #head .. #head + #length.
  #starts: Uint32Array;
  #ends: Uint32Array;
  #head = 0;
  #length = 0;
  #bytes = 0;

  /**
   * Makes an empty queue.
   *
   * @param capacity most lines held at once; 0 = unbounded
   */
  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) {
      throw new OptionsError(`qsize must be a non-negative integer, got ${capacity}`);
    }
    this.capacity = capacity;
    const slots = capacity === 0 ? INITIAL_LINES : Math.min(capacity, INITIAL_LINES);
    this.#starts = new Uint32Array(slots);
    this.#ends = new Uint32Array(slots);
  }

  /** Lines held. */
  get length(): number {
    return this.#length;
  }

  /** Bytes held, summed over all lines. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Appends `line`; when the queue is full the oldest line is dropped.
   *
   * @param line a non-empty line (it should end in `\n`)
   * @returns 1 when a line was dropped to make room, else 0
   * @throws {ValidationError} for an empty string
   */
  push(line: string): number {
    if (line.length === 0) throw new ValidationError("INVALID_METRIC", "line", "a line cannot be empty");
    const size = utf8Length(line);
    const before = this.dropped;
    const at = this.#reserve(size);
    const buf = this.#buf;
    if (size === line.length) {
      for (let i = 0; i < size; i++) buf[at + i] = line.charCodeAt(i);
    } else utf8.encodeInto(line, buf.subarray(at, at + size));
    return this.dropped - before;
  }

  /**
   * Appends the line `head + value + tail` without building it as a string.
   *
   * @param head the line's first bytes
   * @param value ASCII text
   * @param tail the line's last bytes, ending in `\n`
   * @returns 1 when a line was dropped to make room, else 0
   */
  pushLine(head: Uint8Array, value: string, tail: Uint8Array): number {
    const before = this.dropped;
    const at = this.#reserve(head.length + value.length + tail.length);
    const buf = this.#buf;
    buf.set(head, at);
    let i = at + head.length;
    for (let j = 0; j < value.length; j++) buf[i++] = value.charCodeAt(j);
    buf.set(tail, i);
    return this.dropped - before;
  }

  /**
   * Appends the line `head + value + tail`, the value the decimal `scaled / 10 ** point`
   * in fixed notation, written as bytes with no string made for it.
   *
   * @param head the line's first bytes
   * @param scaled the value times `10 ** point`: an integer, |scaled| < 2 ** 53
   * @param point digits after the decimal point
   * @param tail the line's last bytes, ending in `\n`
   * @returns 1 when the oldest line was dropped to make room, else 0
   */
  pushDecimalLine(head: Uint8Array, scaled: number, point: number, tail: Uint8Array): number {
    const before = this.dropped;
    const length = decimalLength(scaled, point);
    const at = this.#reserve(head.length + length + tail.length);
    const buf = this.#buf;
    buf.set(head, at);
    const end = at + head.length + length;
    writeDecimal(buf, end, length, scaled, point);
    buf.set(tail, end);
    return this.dropped - before;
  }

  /**
   * Removes up to `maxCount` lines from the front, stopping before the batch
   * would exceed `maxBytes` (the first line is always taken).
   *
   * @param maxCount most lines to take
   * @param maxBytes most bytes to take
   * @param into a buffer to copy the lines into when they fit (a view of it is returned)
   * @returns the lines as one copy of their bytes, or undefined when the queue is empty or `maxCount` < 1
   */
  take(maxCount: number, maxBytes: number, into?: Uint8Array): Batch | undefined {
    const batch = this.peek(maxCount, maxBytes, into);
    if (batch !== undefined) this.#removeFront(batch.count, batch.data.length);
    return batch;
  }

  /**
   * Copies what {@linkcode DropOldestQueue.take} would remove, and leaves it
   * queued (the spool writes lines to disk before they leave the queue).
   *
   * @param maxCount most lines to copy
   * @param maxBytes most bytes to copy
   * @param into a buffer to copy the lines into when they fit (a view of it is returned)
   * @returns a copy of the front lines, or undefined when the queue is empty or `maxCount` < 1
   */
  peek(maxCount: number, maxBytes: number, into?: Uint8Array): Batch | undefined {
    if (this.#length === 0 || maxCount < 1) return undefined;
    const starts = this.#starts;
    const ends = this.#ends;
    const slots = starts.length;
    let slot = this.#head;
    // The lines run from `first` to `end`, and when they cross the wrap on from 0 to `end2`.
    const first = starts[slot];
    let end = ends[slot];
    let end2 = -1;
    let bytes = end - first;
    let count = 1;
    slot = slot + 1 === slots ? 0 : slot + 1;
    const limit = Math.min(maxCount, this.#length);
    while (count < limit) {
      const size = ends[slot] - starts[slot];
      if (bytes + size > maxBytes) break;
      if (end2 === -1 && starts[slot] === end) end = ends[slot];
      else end2 = ends[slot];
      bytes += size;
      count++;
      slot = slot + 1 === slots ? 0 : slot + 1;
    }
    // A copy, as the transport keeps it while the ring is reused: into the caller's
    // buffer when it is large enough (no allocation), else a new one.
    const buf = this.#buf;
    const target = into !== undefined && into.length >= bytes ? into : new Uint8Array(bytes);
    target.set(buf.subarray(first, end));
    if (end2 !== -1) target.set(buf.subarray(0, end2), end - first);
    const data = target.length === bytes ? target : target.subarray(0, bytes);
    return { data, count };
  }

  /**
   * Removes the `count` oldest lines (after a {@linkcode DropOldestQueue.peek}).
   *
   * @param count how many; at most `length`
   */
  discard(count: number): void {
    const n = Math.min(count, this.#length);
    if (n <= 0) return;
    const starts = this.#starts;
    const ends = this.#ends;
    let bytes = 0;
    for (let i = 0, slot = this.#head; i < n; i++) {
      bytes += ends[slot] - starts[slot];
      slot = slot + 1 === starts.length ? 0 : slot + 1;
    }
    this.#removeFront(n, bytes);
  }

  /**
   * Removes everything.
   *
   * @returns how many lines were removed
   */
  clear(): number {
    const n = this.#length;
    this.#removeFront(n, this.#bytes);
    return n;
  }

  /** Makes room for a line of `size` bytes (dropping the oldest when full); returns its offset. */
  #reserve(size: number): number {
    // Full: the overflow hook (the spool's) may take lines off the front first.
    if (this.#length === this.capacity && this.capacity !== 0 && this.overflow !== undefined) this.overflow();
    if (this.#length === this.capacity && this.capacity !== 0) {
      this.dropped++;
      const slot = this.#head;
      this.#removeFront(1, this.#ends[slot] - this.#starts[slot]);
    } else if (this.#length === this.#starts.length) this.#growSlots();
    let at = this.#tail;
    const buf = this.#buf;
    if (this.#length === 0) {
      if (size > buf.length) this.#growBytes(size);
      at = 0;
    } else if (!this.#wrapped) {
      if (at + size > buf.length) {
        if (size < this.#starts[this.#head]) {
          this.#wrapped = true;
          this.#wrapEnd = at;
          at = 0;
        } else at = this.#growBytes(size);
      }
    } else if (at + size > this.#starts[this.#head]) at = this.#growBytes(size);
    let slot = this.#head + this.#length;
    if (slot >= this.#starts.length) slot -= this.#starts.length;
    this.#starts[slot] = at;
    this.#ends[slot] = at + size;
    this.#tail = at + size;
    this.#length++;
    this.#bytes += size;
    return at;
  }

  #removeFront(count: number, bytes: number): void {
    const slots = this.#starts.length;
    const oldFirst = this.#starts[this.#head];
    this.#head = (this.#head + count) % slots;
    this.#length -= count;
    this.#bytes -= bytes;
    if (this.#length === 0) {
      this.#head = 0;
      this.#tail = 0;
      this.#wrapped = false;
      if (this.#buf.length > INITIAL_BYTES * SHRINK_FACTOR) this.#buf = new Uint8Array(INITIAL_BYTES);
      if (slots > INITIAL_LINES * SHRINK_FACTOR) {
        this.#starts = new Uint32Array(INITIAL_LINES);
        this.#ends = new Uint32Array(INITIAL_LINES);
      }
    } else if (this.#wrapped && this.#starts[this.#head] < oldFirst) {
      this.#wrapped = false; // the front has crossed into the lines written from offset 0
    }
  }

  /** Moves the held lines to the start of a larger buffer; returns the offset after them. */
  #growBytes(extra: number): number {
    const old = this.#buf;
    const next = new Uint8Array(Math.max(old.length * 2, this.#bytes + extra));
    let end = 0;
    if (this.#length > 0) {
      const first = this.#starts[this.#head];
      const shift = this.#wrapped ? this.#wrapEnd - first : 0;
      if (this.#wrapped) {
        next.set(old.subarray(first, this.#wrapEnd));
        next.set(old.subarray(0, this.#tail), shift);
      } else next.set(old.subarray(first, this.#tail));
      end = this.#wrapped ? shift + this.#tail : this.#tail - first;
      // Lines before the wrap move down by `first`, lines after it up by `shift`.
      const slots = this.#starts.length;
      const starts = this.#starts;
      const ends = this.#ends;
      let crossed = false;
      for (let i = 0, slot = this.#head; i < this.#length; i++) {
        if (this.#wrapped && !crossed && starts[slot] < first) crossed = true;
        const delta = crossed ? shift : -first;
        starts[slot] += delta;
        ends[slot] += delta;
        slot = slot + 1 === slots ? 0 : slot + 1;
      }
    }
    this.#buf = next;
    this.#wrapped = false;
    this.#tail = end;
    return end;
  }

  /** Doubles the line slots (up to `capacity`), keeping the order. */
  #growSlots(): void {
    const slots = this.#starts.length;
    const size = this.capacity === 0 ? slots * 2 : Math.min(this.capacity, slots * 2);
    const starts = new Uint32Array(size);
    const ends = new Uint32Array(size);
    for (let i = 0; i < this.#length; i++) {
      const slot = (this.#head + i) % slots;
      starts[i] = this.#starts[slot];
      ends[i] = this.#ends[slot];
    }
    this.#starts = starts;
    this.#ends = ends;
    this.#head = 0;
  }
}

/** UTF-8 length of `s` (a lone surrogate counts 3, as `TextEncoder` writes U+FFFD for it). */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      n += 1;
      continue;
    }
    // Three bytes for one unit, or four for a surrogate pair's two.
    n += 2;
    if (c >= 0xd800 && c <= 0xdbff && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) i++;
  }
  return n;
}
