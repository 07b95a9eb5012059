/**
 * The spool's on-disk format, with no I/O of its own.
 *
 * A segment file (`<number>.seg`, 16 digits) starts with the 8 bytes
 * `potsdb1\n`, then holds records back to back. A record is a 12-byte
 * header — payload length, line count and CRC-32, each a little-endian
 * uint32 — and the payload: whole `put` lines, each ending in `\n`. The CRC
 * covers the length, the count and the payload, so a torn or corrupt record
 * is told apart from a good one and never replayed.
 *
 * @module
 */

import { crc32 } from "./crc32.ts";

/** The first bytes of every segment file. */
export const SEGMENT_MAGIC: Uint8Array = new TextEncoder().encode("potsdb1\n");
/** Bytes before a segment's first record. */
export const SEGMENT_HEADER_BYTES = 8;
/** Bytes of a record's header. */
export const RECORD_HEADER_BYTES = 12;
/** The largest payload a record may claim (larger is taken for corruption). */
export const MAX_RECORD_BYTES = 1 << 30;

/**
 * Frames lines as one record: header and payload in one new buffer.
 *
 * @param data whole lines, each ending in `\n`
 * @param count how many lines `data` holds
 * @returns the record's bytes
 *
 * @example
 * ```ts
 * import { frameRecord, scanRecords } from "./segment.ts";
 *
 * const record = frameRecord(new TextEncoder().encode("put a 1 1 t=v\n"), 1);
 * const scan = scanRecords(record, 0);
 * console.assert(scan.records === 1 && scan.lines === 1 && scan.end === record.length && !scan.corrupt);
 * ```
 */
export function frameRecord(data: Uint8Array, count: number): Uint8Array {
  const record = new Uint8Array(RECORD_HEADER_BYTES + data.length);
  record.set(data, RECORD_HEADER_BYTES);
  sealRecord(record, 0, data.length, count);
  return record;
}

/**
 * Writes the header of the record whose payload is already at
 * `at + RECORD_HEADER_BYTES` in `buf`.
 *
 * @param buf the buffer
 * @param at where the record starts
 * @param length the payload's length
 * @param count its lines
 */
export function sealRecord(buf: Uint8Array, at: number, length: number, count: number): void {
  const view = new DataView(buf.buffer, buf.byteOffset + at, RECORD_HEADER_BYTES);
  view.setUint32(0, length, true);
  view.setUint32(4, count, true);
  const crc = crc32(
    buf.subarray(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + length),
    crc32(buf.subarray(at, at + 8)),
  );
  view.setUint32(8, crc, true);
}

/** One record's header, read and checked against the bytes available. */
export interface RecordHeader {
  /** Payload length. */
  length: number;
  /** Lines. */
  count: number;
  /** The stored CRC-32. */
  crc: number;
}

/**
 * Reads the record header at `at`.
 *
 * @param buf bytes of a segment
 * @param at where the record starts
 * @returns the header, or undefined when fewer than 12 bytes are left or it claims an impossible size
 */
export function readHeader(buf: Uint8Array, at: number): RecordHeader | undefined {
  if (at + RECORD_HEADER_BYTES > buf.length) return undefined;
  const view = new DataView(buf.buffer, buf.byteOffset + at, RECORD_HEADER_BYTES);
  const length = view.getUint32(0, true);
  const count = view.getUint32(4, true);
  if (length === 0 || count === 0 || length > MAX_RECORD_BYTES || count > length) return undefined;
  return { length, count, crc: view.getUint32(8, true) };
}

/** What {@linkcode scanRecords} found. */
export interface Scan {
  /** Offset after the last good record: where a torn or corrupt tail starts. */
  end: number;
  /** Good records. */
  records: number;
  /** Lines in them. */
  lines: number;
  /** Whether bytes after `end` are not a good record (a torn or corrupt tail). */
  corrupt: boolean;
}

/**
 * Walks the records of a segment from `start`, checking each one's CRC and
 * that its payload ends in `\n` and holds as many lines as it says; stops at
 * the first that fails.
 *
 * @param buf the segment's bytes (or a part that starts at a record)
 * @param start where the first record starts
 * @returns how far the good records go
 */
export function scanRecords(buf: Uint8Array, start: number): Scan {
  let at = start;
  let records = 0;
  let lines = 0;
  while (at < buf.length) {
    const h = readHeader(buf, at);
    const payloadAt = at + RECORD_HEADER_BYTES;
    if (h === undefined || payloadAt + h.length > buf.length) break;
    const payload = buf.subarray(payloadAt, payloadAt + h.length);
    if (crc32(payload, crc32(buf.subarray(at, at + 8))) !== h.crc) break;
    if (payload[h.length - 1] !== 10 || countLines(payload, 0, h.length) !== h.count) break;
    at = payloadAt + h.length;
    records++;
    lines += h.count;
  }
  return { end: at, records, lines, corrupt: at < buf.length };
}

/**
 * Newlines in `buf[from..to)`.
 *
 * @param buf bytes
 * @param from first index
 * @param to index after the last
 * @returns the count
 */
export function countLines(buf: Uint8Array, from: number, to: number): number {
  let n = 0;
  for (let i = buf.indexOf(10, from); i !== -1 && i < to; i = buf.indexOf(10, i + 1)) n++;
  return n;
}

/**
 * Byte offset just after the `lines`-th newline at or after `from` (the
 * end of that many whole lines), or -1 when there are fewer.
 *
 * @param buf bytes
 * @param from where to start
 * @param lines how many lines
 * @returns the offset after them
 */
export function skipLines(buf: Uint8Array, from: number, lines: number): number {
  let at = from;
  for (let i = 0; i < lines; i++) {
    const nl = buf.indexOf(10, at);
    if (nl === -1) return -1;
    at = nl + 1;
  }
  return at;
}

/**
 * A segment's file name.
 *
 * @param id its number
 * @returns e.g. `0000000000000042.seg`
 */
export function segmentName(id: number): string {
  return `${String(id).padStart(16, "0")}.seg`;
}

/**
 * A segment's number from its file name.
 *
 * @param name a file name
 * @returns the number, or undefined when it is not a segment's name
 */
export function segmentId(name: string): number | undefined {
  const m = /^(\d{16})\.seg$/.exec(name);
  return m ? Number(m[1]) : undefined;
}
