/**
 * The disk spool, on `node:fs` (so the same code serves Node, Deno and
 * Bun): segment files of length- and CRC-framed records (`segment.ts`), a
 * commit file saying how far delivery got, and a lock file (`lock.ts`).
 *
 * Appends go to the newest segment with one `writeSync` per record; a new
 * segment starts when one reaches its size, and the oldest is deleted when
 * the spool would pass `maxBytes` (its unread lines are counted as dropped)
 * or once everything in it was delivered. Reads walk the records in order;
 * records appended while the reader is caught up are also kept in memory
 * (a few MiB at most), so a live spool does not read back what it just
 * wrote. The commit file has two slots written in turn, each with a
 * sequence number and a CRC, so a torn write of one leaves the other.
 *
 * At start the directory is locked, segments before the committed position
 * are deleted, and every record after it is checked: the first that is torn
 * or fails its CRC ends its segment (the rest of that file is cut off and
 * counted), and what is good is replayed. The new process writes to a new
 * segment.
 *
 * Importing this module makes it the clients' spool (the root entry does).
 *
 * @module
 */

import { nodeDisk, type SpoolDisk } from "./disk.ts";
import { OptionsError, SpoolError } from "../errors.ts";
import { unrefTimer } from "../runtime.ts";
import { crc32 } from "./crc32.ts";
import { setSpoolFactory } from "./default.ts";
import { acquireLock, type DirLock } from "./lock.ts";
import {
  frameRecord,
  readHeader,
  RECORD_HEADER_BYTES,
  scanRecords,
  SEGMENT_HEADER_BYTES,
  SEGMENT_MAGIC,
  segmentId,
  segmentName,
  skipLines,
} from "./segment.ts";
import type {
  ResolvedSpoolOptions,
  Spool,
  SpoolBatch,
  SpoolFsync,
  SpoolMode,
  SpoolPosition,
} from "./types.ts";

/** How often `fsync: "interval"` syncs. */
export const FSYNC_INTERVAL_MS = 1000;
const READ_CHUNK = 256 * 1024;
const CACHE_MAX_BYTES = 8 * 1024 * 1024;
const COMMIT_FILE = "commit";
const COMMIT_MAGIC = 0x706f7473; // "pots"
const COMMIT_SLOT_BYTES = 32;

interface Segment {
  id: number;
  /** Bytes in the file (header included). */
  size: number;
  /** Lines in it from where this process started on it. */
  lines: number;
  /** Of those, read. */
  read: number;
  /** Of those, delivered. */
  done: number;
}

interface Cached {
  seg: number;
  off: number;
  payload: Uint8Array;
  count: number;
}

interface InFlight {
  start: SpoolPosition;
  end: SpoolPosition;
  /** Segment number and lines, in pairs. */
  parts: number[];
}

const copy = (p: SpoolPosition): SpoolPosition => ({ seg: p.seg, off: p.off, line: p.line, byte: p.byte });

function before(a: SpoolPosition, b: SpoolPosition): boolean {
  return a.seg !== b.seg ? a.seg < b.seg : a.off !== b.off ? a.off < b.off : a.line < b.line;
}

/**
 * A spool in a directory. Made by {@linkcode openFileSpool} (which clients
 * call for their `spool` option); see {@linkcode Spool} for the contract.
 *
 * @example
 * ```ts
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { FileSpool } from "./file.ts";
 *
 * const dir = mkdtempSync(join(tmpdir(), "potsdb-spool-"));
 * const opts = { dir, maxBytes: 1 << 20, mode: "overflow" as const, fsync: "never" as const };
 * const spool = new FileSpool(opts, (e) => console.error(e));
 * spool.append(new TextEncoder().encode("put a 1 1 t=v\nput a 2 2 t=v\n"), 2);
 * spool.close(); // not delivered: the next spool on the directory finds both lines
 * const next = new FileSpool(opts, (e) => console.error(e));
 * const batch = next.read(1000, 65536)!;
 * console.assert(next.recovered === 2 && batch.count === 2);
 * next.commit(batch.end); // delivered: removed
 * next.close();
 * rmSync(dir, { recursive: true });
 * ```
 */
export class FileSpool implements Spool {
  /** When points go to disk. */
  readonly mode: SpoolMode;
  /** Whether it still works. */
  active = true;
  /** Lines on disk not read yet. */
  unread = 0;
  /** Lines on disk not delivered yet. */
  spooled = 0;
  /** Lines read or dropped unread since it was opened. */
  consumed = 0;
  /** Unread lines dropped because the spool was full. */
  droppedFull = 0;
  /** Lines found at start. */
  recovered = 0;
  /** Torn or corrupt tails cut off at start. */
  corruptTails = 0;
  /** Bytes cut off with them. */
  corruptBytes = 0;
  /** Whether a stale lock (of a dead process) was taken over at start. */
  tookOverLock = false;
  /** Bytes on disk in segment files. */
  bytes = 0;

  readonly #dir: string;
  readonly #maxBytes: number;
  readonly #segmentBytes: number;
  readonly #fsync: SpoolFsync;
  readonly #onError: (error: SpoolError) => void;
  readonly #disk: SpoolDisk;
  #lock: DirLock | undefined;
  #segs: Segment[] = [];
  #wfd: number | undefined;
  #cursor: SpoolPosition = { seg: 0, off: SEGMENT_HEADER_BYTES, line: 0, byte: 0 };
  #origin: SpoolPosition = this.#cursor;
  #committed: SpoolPosition | undefined;
  #inFlight: InFlight[] = [];
  #cfd: number | undefined;
  #commitSeq = 0;
  readonly #slot = new Uint8Array(COMMIT_SLOT_BYTES);
  #rfd: number | undefined;
  #rfdSeg = -1;
  #rbuf = new Uint8Array(READ_CHUNK);
  #rbufStart = 0;
  #rbufEnd = 0;
  #cache: Cached[] = [];
  #cacheHead = 0;
  #cacheBytes = 0;
  #dirty = false;
  #commitDirty = false;
  #dirDirty = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #exitHook: (() => void) | undefined;
  #exitListener: (() => void) | undefined;
  #removeExitListener: (() => void) | undefined;
  #closed = false;

  /**
   * Opens (or makes) the spool in `options.dir`: locks it and recovers what
   * an earlier process left. An I/O failure does not throw: it is reported
   * to `onError` and the spool is inactive.
   *
   * @param options the checked options
   * @param onError hears of I/O failures
   * @param disk the file system and process (a test's simulated one; by default `node:fs`)
   * @throws {OptionsError} when a live process (or another client here) holds the directory
   */
  constructor(
    options: ResolvedSpoolOptions,
    onError: (error: SpoolError) => void,
    disk: SpoolDisk = nodeDisk,
  ) {
    this.mode = options.mode;
    this.#dir = options.dir;
    this.#maxBytes = options.maxBytes;
    this.#segmentBytes = options.segmentBytes ??
      Math.min(16 << 20, Math.max(8 << 10, Math.floor(options.maxBytes / 8)));
    this.#fsync = options.fsync;
    this.#onError = onError;
    this.#disk = disk;
    try {
      disk.mkdirp(this.#dir);
      this.#lock = acquireLock(this.#dir, disk);
      this.tookOverLock = this.#lock.tookOver !== undefined;
      this.#recover();
      this.#rotate();
      this.#origin = copy(this.#cursor);
    } catch (e) {
      if (e instanceof OptionsError) {
        this.#closeFiles();
        throw e;
      }
      this.#fail("cannot open the spool", e);
      return;
    }
    // "interval" syncs everything once a second; "always" syncs each append itself, and the commit file here.
    if (this.#fsync !== "never") {
      this.#timer = setInterval(() => this.#sync(), FSYNC_INTERVAL_MS);
      unrefTimer(this.#timer);
    }
  }

  /**
   * Appends lines as one record; see {@linkcode Spool.append}.
   *
   * @param data whole lines
   * @param count how many
   * @returns false when the spool has failed
   */
  append(data: Uint8Array, count: number): boolean {
    if (!this.active || count === 0) return this.active;
    const record = frameRecord(data, count);
    try {
      let w = this.#segs[this.#segs.length - 1];
      if (w.size + record.length > this.#segmentBytes && w.size > SEGMENT_HEADER_BYTES) {
        this.#rotate();
        w = this.#segs[this.#segs.length - 1];
      }
      while (this.bytes + record.length > this.#maxBytes && this.#segs.length > 1) this.#evict();
      writeAll(this.#disk, this.#wfd!, record, w.size);
      if (this.#fsync === "always") this.#disk.fdatasync(this.#wfd!);
      else this.#dirty = true;
    } catch (e) {
      this.#fail("cannot write to the spool", e);
      return false;
    }
    const w = this.#segs[this.#segs.length - 1];
    // Kept in memory when the reader will want it next (it is caught up, or reading the cache).
    if (this.#cacheHead < this.#cache.length || this.unread === 0) {
      this.#cache.push({ seg: w.id, off: w.size, payload: record.subarray(RECORD_HEADER_BYTES), count });
      this.#cacheBytes += record.length;
      if (this.#cacheBytes > CACHE_MAX_BYTES) this.#dropCache();
    }
    w.size += record.length;
    w.lines += count;
    this.bytes += record.length;
    this.unread += count;
    this.spooled += count;
    return true;
  }

  /**
   * Reads the oldest unread lines; see {@linkcode Spool.read}.
   *
   * @param maxLines most lines
   * @param maxBytes most bytes (the first line is always taken)
   * @param into a buffer to copy them into when they fit
   * @returns the lines, or undefined when none is unread (or the spool failed)
   */
  read(maxLines: number, maxBytes: number, into?: Uint8Array): SpoolBatch | undefined {
    if (!this.active || this.unread === 0 || maxLines < 1) return undefined;
    const start = copy(this.#cursor);
    let out = into !== undefined && into.length >= maxBytes ? into : new Uint8Array(maxBytes);
    let lines = 0;
    let bytes = 0;
    const parts: number[] = [];
    try {
      while (lines < maxLines) {
        const record = this.#record();
        if (record === undefined) break;
        const cursor = this.#cursor;
        const rest = record.payload.subarray(cursor.byte);
        const restLines = record.count - cursor.line;
        let take = restLines;
        let takeBytes = rest.length;
        if (restLines > maxLines - lines || bytes + rest.length > maxBytes) {
          // Part of the record: whole lines up to the limits (at least one line in all).
          take = 0;
          takeBytes = 0;
          const most = Math.min(restLines, maxLines - lines);
          while (take < most) {
            const next = rest.indexOf(10, takeBytes) + 1;
            if (bytes + next > maxBytes && (take > 0 || lines > 0)) break;
            takeBytes = next;
            take++;
          }
          if (take === 0) break;
        }
        if (bytes + takeBytes > out.length) {
          const grown = new Uint8Array(bytes + takeBytes);
          grown.set(out.subarray(0, bytes));
          out = grown;
        }
        out.set(rest.subarray(0, takeBytes), bytes);
        bytes += takeBytes;
        lines += take;
        const seg = this.#segs[this.#segIndex(cursor.seg)];
        seg.read += take;
        this.unread -= take;
        this.consumed += take;
        const last = parts.length - 2;
        if (last >= 0 && parts[last] === seg.id) parts[last + 1] += take;
        else parts.push(seg.id, take);
        if (take === restLines) {
          if (
            this.#cacheHead < this.#cache.length && this.#cache[this.#cacheHead].payload === record.payload
          ) {
            this.#cacheBytes -= record.payload.length + RECORD_HEADER_BYTES;
            this.#cache[this.#cacheHead++] = undefined as unknown as Cached;
            if (this.#cacheHead === this.#cache.length) {
              this.#cache = [];
              this.#cacheHead = 0;
            }
          }
          cursor.off += RECORD_HEADER_BYTES + record.payload.length;
          cursor.line = 0;
          cursor.byte = 0;
        } else {
          cursor.line += take;
          cursor.byte += takeBytes;
          break;
        }
      }
    } catch (e) {
      // Nothing of this read is handed out: the lines taken before the failure are unread again
      // (still counted as waiting, still on disk for the next process), not lost from every count.
      for (let i = 0; i < parts.length; i += 2) {
        const index = this.#segIndex(parts[i]);
        if (index !== -1) this.#segs[index].read -= parts[i + 1];
      }
      this.unread += lines;
      this.consumed -= lines;
      this.#cursor = start;
      this.#fail("cannot read the spool", e);
      return undefined;
    }
    if (lines === 0) return undefined;
    const end = copy(this.#cursor);
    this.#inFlight.push({ start, end, parts });
    return { data: out.length === bytes ? out : out.subarray(0, bytes), count: lines, start, end };
  }

  /**
   * Removes everything before `end`; see {@linkcode Spool.commit}.
   *
   * @param end a batch's `end`
   */
  commit(end: SpoolPosition): void {
    let moved = false;
    while (this.#inFlight.length > 0 && !before(end, this.#inFlight[0].end)) {
      const { parts } = this.#inFlight.shift()!;
      for (let i = 0; i < parts.length; i += 2) {
        const index = this.#segIndex(parts[i]);
        if (index === -1) continue; // dropped while in flight: counted then
        this.#segs[index].done += parts[i + 1];
        this.spooled -= parts[i + 1];
      }
      moved = true;
    }
    if (!moved || !this.active) return;
    this.#committed = copy(end);
    try {
      // Segments before the committed one are delivered in full.
      while (this.#segs.length > 1 && this.#segs[0].id < end.seg) this.#delete(this.#segs.shift()!);
      this.#writeCommit(end);
    } catch (e) {
      this.#fail("cannot record delivery in the spool", e);
    }
  }

  /**
   * Whether lines read from `start` on are still on disk.
   *
   * @param start a batch's `start`
   * @returns true when they are
   */
  onDisk(start: SpoolPosition): boolean {
    const index = this.#inFlight.findIndex((f) => !before(f.start, start) && !before(start, f.start));
    if (this.holds(start)) {
      // The caller gives the batch back: its lines wait on disk again, counted as unread, so a
      // full spool that drops their segment before they are read again counts them as dropped
      // (they are no longer in the caller's hands).
      if (index !== -1) {
        const { parts } = this.#inFlight.splice(index, 1)[0];
        for (let i = 0; i < parts.length; i += 2) {
          const seg = this.#segIndex(parts[i]);
          if (seg === -1) continue;
          this.#segs[seg].read -= parts[i + 1];
          this.unread += parts[i + 1];
          this.consumed -= parts[i + 1];
        }
      }
      return true;
    }
    // Its first lines went with a full spool's oldest segment; the caller appends the whole
    // batch again. Its lines still on disk (a batch may run on into the next segment) are let
    // go now, or the next reader would find them twice.
    if (index !== -1) this.commit(this.#inFlight[index].end);
    return false;
  }

  /**
   * Whether lines read from `start` on are still on disk; see {@linkcode Spool.holds}.
   *
   * @param start a batch's `start`
   * @returns true when they are
   */
  holds(start: SpoolPosition): boolean {
    return this.#segs.length > 0 && start.seg >= this.#segs[0].id;
  }

  /** Reads again from the last commit: what was read and not committed counts as unread. */
  rewind(): void {
    // Counted again even after a failure: the lines are on disk for the next process, and the
    // writer counts them as waiting (in `unread`), not as lost.
    this.#inFlight = [];
    this.#dropCache();
    let unread = 0;
    for (const seg of this.#segs) {
      seg.read = seg.done;
      unread += seg.lines - seg.done;
    }
    this.consumed -= unread - this.unread;
    this.unread = unread;
    const from = this.#committed ?? this.#origin;
    this.#cursor = this.#segIndex(from.seg) !== -1 ? copy(from) : {
      seg: this.#segs[0]?.id ?? from.seg,
      off: SEGMENT_HEADER_BYTES,
      line: 0,
      byte: 0,
    };
  }

  /**
   * Runs `hook` when the process exits with the spool open, then closes it.
   *
   * @param hook puts the writer's pending lines into the spool (synchronously)
   */
  onExit(hook: () => void): void {
    this.#exitHook = hook;
    if (this.#exitListener !== undefined || this.#closed) return;
    this.#exitListener = () => {
      try {
        this.#exitHook?.();
      } finally {
        this.close();
      }
    };
    this.#removeExitListener = this.#disk.onExit(this.#exitListener);
  }

  /** Writes out, syncs (unless `fsync: "never"`), releases the lock and the exit hook. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#removeExitListener?.();
    this.#removeExitListener = undefined;
    this.#exitListener = undefined;
    if (this.active) {
      try {
        if (this.#fsync !== "never") this.#sync();
        // Segments with nothing left to deliver go (the newest too, when empty or delivered).
        if (this.#wfd !== undefined) this.#disk.close(this.#wfd);
        this.#wfd = undefined;
        this.#closeReader();
        this.#segs = this.#segs.filter((seg) => seg.done < seg.lines || (this.#delete(seg), false));
      } catch (e) {
        this.#fail("cannot close the spool", e);
      }
    }
    this.active = false;
    this.#closeFiles();
  }

  // --- inside --------------------------------------------------------------------------------

  #path(id: number): string {
    return this.#disk.join(this.#dir, segmentName(id));
  }

  #segIndex(id: number): number {
    const segs = this.#segs;
    // Segment numbers rise, mostly by one: look where that puts it first.
    const guess = id - (segs[0]?.id ?? 0);
    if (guess >= 0 && guess < segs.length && segs[guess].id === id) return guess;
    return segs.findIndex((s) => s.id === id);
  }

  /** Reads the directory: the commit point, then each segment after it, cutting bad tails. */
  #recover(): void {
    const committed = this.#readCommit();
    const ids = this.#disk.readdir(this.#dir).map(segmentId).filter((id): id is number => id !== undefined)
      .sort((a, b) => a - b);
    let cursor: SpoolPosition | undefined;
    let last = committed?.seg ?? 0;
    for (const id of ids) {
      last = Math.max(last, id);
      const path = this.#path(id);
      if (committed !== undefined && id < committed.seg) {
        this.#disk.unlink(path); // delivered; its deletion did not happen before the process ended
        continue;
      }
      const buf = this.#disk.readFile(path);
      if (buf.length < SEGMENT_HEADER_BYTES || !SEGMENT_MAGIC.every((b, i) => buf[i] === b)) {
        this.corruptTails++;
        this.corruptBytes += buf.length;
        this.#disk.unlink(path);
        continue;
      }
      let start = SEGMENT_HEADER_BYTES;
      let skip = 0;
      if (committed !== undefined && id === committed.seg) {
        start = committed.off;
        skip = committed.line;
      }
      const scan = scanRecords(buf, start);
      if (scan.corrupt) {
        this.corruptTails++;
        this.corruptBytes += buf.length - scan.end;
        this.#disk.truncate(path, scan.end);
      }
      let byte = 0;
      let delivered = 0;
      if (skip > 0 && scan.records > 0) {
        // The first record is partly delivered: its first `skip` lines.
        const h = readHeader(buf, start)!;
        if (skip >= h.count) {
          delivered = h.count;
          start += RECORD_HEADER_BYTES + h.length;
          skip = 0;
        } else {
          delivered = skip;
          byte = skipLines(buf.subarray(start + RECORD_HEADER_BYTES), 0, skip);
        }
      }
      const lines = scan.lines - delivered;
      if (lines <= 0) {
        this.#disk.unlink(path);
        continue;
      }
      this.#segs.push({ id, size: scan.end, lines, read: 0, done: 0 });
      this.bytes += scan.end;
      cursor ??= { seg: id, off: start, line: skip, byte };
    }
    this.#cursor = cursor ?? { seg: last + 1, off: SEGMENT_HEADER_BYTES, line: 0, byte: 0 };
    const total = this.#segs.reduce((n, s) => n + s.lines, 0);
    this.recovered = this.unread = this.spooled = total;
    this.#nextId = last + 1;
  }

  #nextId = 1;

  /** Starts a new segment to write to. */
  #rotate(): void {
    const old = this.#wfd;
    if (old !== undefined) {
      if (this.#fsync !== "never" && this.#dirty) this.#disk.fdatasync(old);
      this.#dirty = false;
      this.#disk.close(old);
      this.#wfd = undefined;
    }
    const id = this.#nextId++;
    const fd = this.#disk.open(this.#path(id), "wx");
    this.#wfd = fd;
    writeAll(this.#disk, fd, SEGMENT_MAGIC, 0);
    this.#segs.push({ id, size: SEGMENT_HEADER_BYTES, lines: 0, read: 0, done: 0 });
    this.bytes += SEGMENT_HEADER_BYTES;
    if (this.unread === 0 && this.#cursor.line === 0) {
      // The reader is at the end: it goes on in the new segment.
      this.#cursor = { seg: id, off: SEGMENT_HEADER_BYTES, line: 0, byte: 0 };
    }
    if (this.#fsync === "always") this.#syncDir();
    else if (this.#fsync === "interval") this.#dirDirty = true;
  }

  /** Drops the oldest segment to make room; its unread lines are counted. */
  #evict(): void {
    const seg = this.#segs.shift()!;
    const unread = seg.lines - seg.read;
    this.droppedFull += unread;
    this.unread -= unread;
    this.consumed += unread;
    this.spooled -= seg.lines - seg.done;
    this.#delete(seg);
    if (this.#cursor.seg <= seg.id) {
      this.#cursor = { seg: this.#segs[0].id, off: SEGMENT_HEADER_BYTES, line: 0, byte: 0 };
      // Records of the dropped segment that the cache still holds are not wanted now.
      while (this.#cacheHead < this.#cache.length && this.#cache[this.#cacheHead].seg <= seg.id) {
        const c = this.#cache[this.#cacheHead];
        this.#cacheBytes -= c.payload.length + RECORD_HEADER_BYTES;
        this.#cacheHead++;
      }
    }
  }

  #delete(seg: Segment): void {
    this.bytes -= seg.size;
    if (this.#rfdSeg === seg.id) this.#closeReader();
    this.#disk.unlink(this.#path(seg.id));
  }

  /** The record at the cursor (moving it into the next segment at a segment's end), or undefined at the end. */
  #record(): { payload: Uint8Array; count: number } | undefined {
    for (;;) {
      const cursor = this.#cursor;
      const index = this.#segIndex(cursor.seg);
      if (index === -1) return undefined;
      const seg = this.#segs[index];
      if (cursor.off >= seg.size) {
        if (index === this.#segs.length - 1) return undefined;
        this.#cursor = { seg: this.#segs[index + 1].id, off: SEGMENT_HEADER_BYTES, line: 0, byte: 0 };
        continue;
      }
      if (this.#cacheHead < this.#cache.length) {
        const c = this.#cache[this.#cacheHead];
        if (c.seg === cursor.seg && c.off === cursor.off) return c;
        this.#dropCache(); // out of step: read from disk until caught up again
      }
      return this.#readRecord(seg, cursor.off);
    }
  }

  #readRecord(seg: Segment, off: number): { payload: Uint8Array; count: number } {
    if (this.#rfdSeg !== seg.id) {
      this.#closeReader();
      this.#rfd = this.#disk.open(this.#path(seg.id), "r");
      this.#rfdSeg = seg.id;
    }
    if (off < this.#rbufStart || off + RECORD_HEADER_BYTES > this.#rbufEnd) {
      this.#fill(seg, off, RECORD_HEADER_BYTES);
    }
    let h = readHeader(this.#rbuf, off - this.#rbufStart);
    if (h === undefined) throw new Error(`bad record at ${segmentName(seg.id)}:${off}`);
    const size = RECORD_HEADER_BYTES + h.length;
    if (off + size > this.#rbufEnd) {
      this.#fill(seg, off, size);
      h = readHeader(this.#rbuf, 0)!;
    }
    const at = off - this.#rbufStart + RECORD_HEADER_BYTES;
    return { payload: this.#rbuf.subarray(at, at + h.length), count: h.count };
  }

  /** Reads at least `need` bytes of `seg` from `off` into the read buffer. */
  #fill(seg: Segment, off: number, need: number): void {
    const size = Math.min(Math.max(need, READ_CHUNK), seg.size - off);
    if (size < need) throw new Error(`record past the end of ${segmentName(seg.id)}`);
    if (this.#rbuf.length < size) this.#rbuf = new Uint8Array(size);
    let got = 0;
    while (got < size) {
      const n = this.#disk.read(this.#rfd!, this.#rbuf, got, size - got, off + got);
      if (n === 0) throw new Error(`${segmentName(seg.id)} is shorter than expected`);
      got += n;
    }
    this.#rbufStart = off;
    this.#rbufEnd = off + size;
  }

  #closeReader(): void {
    if (this.#rfd !== undefined) this.#disk.close(this.#rfd);
    this.#rfd = undefined;
    this.#rfdSeg = -1;
    this.#rbufStart = this.#rbufEnd = 0;
  }

  #dropCache(): void {
    this.#cache = [];
    this.#cacheHead = 0;
    this.#cacheBytes = 0;
  }

  #readCommit(): SpoolPosition | undefined {
    const path = this.#disk.join(this.#dir, COMMIT_FILE);
    this.#cfd = this.#disk.open(path, this.#disk.exists(path) ? "r+" : "w+");
    const buf = new Uint8Array(2 * COMMIT_SLOT_BYTES);
    const n = this.#disk.read(this.#cfd, buf, 0, buf.length, 0);
    let best: { seq: number; position: SpoolPosition } | undefined;
    for (let slot = 0; slot + 24 <= n; slot += COMMIT_SLOT_BYTES) {
      const view = new DataView(buf.buffer, slot, 24);
      if (view.getUint32(0, true) !== COMMIT_MAGIC) continue;
      if (crc32(buf.subarray(slot, slot + 20)) !== view.getUint32(20, true)) continue; // torn
      const seq = view.getUint32(4, true);
      if (best !== undefined && seq < best.seq) continue;
      best = {
        seq,
        position: {
          seg: view.getUint32(8, true),
          off: view.getUint32(12, true),
          line: view.getUint32(16, true),
          byte: 0,
        },
      };
    }
    this.#commitSeq = best?.seq ?? 0;
    return best?.position;
  }

  #writeCommit(p: SpoolPosition): void {
    const seq = ++this.#commitSeq;
    const slot = this.#slot;
    const view = new DataView(slot.buffer);
    view.setUint32(0, COMMIT_MAGIC, true);
    view.setUint32(4, seq, true);
    view.setUint32(8, p.seg, true);
    view.setUint32(12, p.off, true);
    view.setUint32(16, p.line, true);
    view.setUint32(20, crc32(slot.subarray(0, 20)), true);
    writeAll(this.#disk, this.#cfd!, slot.subarray(0, 24), (seq & 1) * COMMIT_SLOT_BYTES);
    this.#commitDirty = true;
  }

  /** Flushes what was written to the disk (the interval timer; close). */
  #sync(): void {
    if (!this.active) return;
    try {
      if (this.#dirty && this.#wfd !== undefined) this.#disk.fdatasync(this.#wfd);
      this.#dirty = false;
      if (this.#commitDirty && this.#cfd !== undefined) this.#disk.fdatasync(this.#cfd);
      this.#commitDirty = false;
      if (this.#dirDirty) this.#syncDir();
    } catch (e) {
      this.#fail("cannot sync the spool", e);
    }
  }

  #syncDir(): void {
    this.#dirDirty = false;
    this.#disk.syncDir(this.#dir);
  }

  #fail(what: string, e: unknown): void {
    const wasActive = this.active;
    this.active = false;
    this.#dropCache();
    if (!wasActive) return;
    const reason = e instanceof Error ? e.message : String(e);
    this.#onError(new SpoolError(this.#dir, `spool ${this.#dir}: ${what}: ${reason}`, e));
    // Memory-only from now on; what is on disk stays for the next process.
    clearInterval(this.#timer);
    this.#closeFiles(false);
  }

  #closeFiles(release = true): void {
    for (const fd of [this.#wfd, this.#cfd, this.#rfd]) {
      if (fd === undefined) continue;
      try {
        this.#disk.close(fd);
      } catch {
        // already closed
      }
    }
    this.#wfd = this.#cfd = this.#rfd = undefined;
    this.#rfdSeg = -1;
    if (release || this.#closed) {
      this.#lock?.release();
      this.#lock = undefined;
    }
  }
}

function writeAll(disk: SpoolDisk, fd: number, data: Uint8Array, position: number): void {
  let done = 0;
  while (done < data.length) done += disk.write(fd, data, done, data.length - done, position + done);
}

/**
 * Opens the spool of a client's `spool` option: what clients made from the
 * root entry use (a `node:fs` spool, on Node, Deno and Bun).
 *
 * @param options the checked options
 * @param onError hears of I/O failures (the spool is inactive after one)
 * @returns the spool
 * @throws {OptionsError} when a live process holds the directory
 *
 * @example
 * ```ts
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { openFileSpool } from "./file.ts";
 *
 * const dir = mkdtempSync(join(tmpdir(), "potsdb-spool-"));
 * const spool = openFileSpool({ dir, maxBytes: 1 << 20, mode: "always", fsync: "never" }, () => {});
 * console.assert(spool.active && spool.spooled === 0);
 * spool.close();
 * rmSync(dir, { recursive: true });
 * ```
 */
export function openFileSpool(options: ResolvedSpoolOptions, onError: (error: SpoolError) => void): Spool {
  return new FileSpool(options, onError);
}

setSpoolFactory(openFileSpool);
