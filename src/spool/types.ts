/**
 * What the writer needs of a spool, and the `spool` option: no runtime
 * names here, so the core can use the types while the file I/O (`node:fs`)
 * stays in `file.ts`, which only the root entry loads.
 *
 * @module
 */

import type { SpoolError } from "../errors.ts";

/** When points go to disk. */
export type SpoolMode = "overflow" | "always";

/** When the spool's files are flushed from the OS's page cache to the disk (fsync). */
export type SpoolFsync = "never" | "interval" | "always";

/**
 * The `spool` option of `Client`: a directory where points wait on disk
 * instead of being dropped, and where the next process finds them.
 */
export interface SpoolOptions {
  /** The directory (made if missing). One live process at a time may use it: a lock file says which. */
  dir: string;
  /** Most bytes on disk; when full the oldest segment is dropped (`dropped.spoolFull`). Default 256 MiB. */
  maxBytes?: number;
  /**
   * `"overflow"` (default): points go to disk when the queue is full, at
   * `close()`'s deadline and at process exit. `"always"`: every point is
   * written to disk first (a write-ahead log) and delivered from there.
   */
  mode?: SpoolMode;
  /**
   * `"never"`: the OS writes the files back when it likes (a process crash
   * loses nothing written; power loss can lose the last ~30 s). `"interval"`
   * (default): fsync about once a second (power loss loses at most ~1 s).
   * `"always"`: fsync after every write to the spool (power loss loses
   * nothing written; slow).
   */
  fsync?: SpoolFsync;
}

/** {@linkcode SpoolOptions} checked, with the defaults filled in. */
export interface ResolvedSpoolOptions {
  /** The directory. */
  dir: string;
  /** Most bytes on disk. */
  maxBytes: number;
  /** When points go to disk. */
  mode: SpoolMode;
  /** When the files are synced. */
  fsync: SpoolFsync;
  /** Bytes per segment file (derived from `maxBytes` unless given, for tests). */
  segmentBytes?: number;
}

/** A place in the spool: a record (by segment and offset) and how many of its lines are behind it. */
export interface SpoolPosition {
  /** Segment number. */
  seg: number;
  /** Offset of the record in the segment file. */
  off: number;
  /** Lines of that record already behind the position. */
  line: number;
  /** Bytes of that record's payload already behind the position. */
  byte: number;
}

/** Lines read from the spool, and the position after them (to commit once they are delivered). */
export interface SpoolBatch {
  /** The lines, each ending in `\n`. The caller owns it. */
  data: Uint8Array;
  /** How many lines. */
  count: number;
  /** The position of the first of them. */
  start: SpoolPosition;
  /** The position after the last of them. */
  end: SpoolPosition;
}

/**
 * A spool: an append-only log of encoded lines with a read cursor and a
 * commit point. Lines are appended in order, read in order, and removed
 * (committed) once delivered; what was not committed is read again by the
 * next spool on the same directory.
 */
export interface Spool {
  /** When points go to disk. */
  readonly mode: SpoolMode;
  /** Whether it still works: false after an I/O error (the client then runs memory-only). */
  readonly active: boolean;
  /** Lines on disk not read yet. */
  readonly unread: number;
  /** Lines on disk not delivered yet (unread, or read and not committed). */
  readonly spooled: number;
  /** Lines read or dropped unread since it was opened: where the next unread line stands in the stream. */
  readonly consumed: number;
  /** Unread lines dropped because the spool was full. */
  readonly droppedFull: number;
  /** Lines found on disk at start, left by an earlier process. */
  readonly recovered: number;
  /** Torn or corrupt tails cut off at start (one per segment; a tail may hold several records). */
  readonly corruptTails: number;
  /** Bytes cut off with them. */
  readonly corruptBytes: number;
  /**
   * Appends lines as one record.
   *
   * @param data whole lines, each ending in `\n`
   * @param count how many
   * @returns false when the spool cannot take them (it has failed): nothing was written
   */
  append(data: Uint8Array, count: number): boolean;
  /**
   * Reads the oldest unread lines, at most `maxLines` and (unless the first
   * line is longer) `maxBytes`.
   *
   * @param maxLines most lines
   * @param maxBytes most bytes
   * @param into a buffer to copy them into when they fit
   * @returns the lines, or undefined when none is unread
   */
  read(maxLines: number, maxBytes: number, into?: Uint8Array): SpoolBatch | undefined;
  /**
   * Everything before `end` was delivered: it is removed (in order; an older
   * position than the last committed is ignored).
   *
   * @param end a batch's `end`
   */
  commit(end: SpoolPosition): void;
  /**
   * Whether lines read from `start` on are still on disk (not dropped
   * because the spool was full while they were being delivered); the caller
   * gives the batch back (it will not deliver it). When they are, they count
   * as unread again: read again after a rewind, or by the next process, or
   * counted as dropped if a full spool drops them first. When they are not,
   * the caller is to append that batch again whole: its lines that are still
   * on disk (in the next segment) are let go at once, so that no line is on
   * disk twice.
   *
   * @param start a batch's `start`
   * @returns true when they are
   */
  onDisk(start: SpoolPosition): boolean;
  /**
   * Whether lines read from `start` on are still on disk, asked only: unlike
   * {@linkcode Spool.onDisk}, the batch stays in the caller's hands.
   *
   * @param start a batch's `start`
   * @returns true when a full spool has not dropped them
   */
  holds(start: SpoolPosition): boolean;
  /**
   * Reads again from the last commit: what was read and not committed counts
   * as unread (also after a failure, when no more is read: the lines are on
   * disk for the next process).
   */
  rewind(): void;
  /**
   * Sets what to run, synchronously, when the process exits with the spool
   * still open (the writer puts its pending lines into the spool).
   *
   * @param hook the function
   */
  onExit(hook: () => void): void;
  /** Writes out and syncs what is buffered, releases the lock and stops the exit hook. */
  close(): void;
}

/** Opens a spool; `onError` hears of I/O failures (after which the spool is inactive). */
export type SpoolFactory = (options: ResolvedSpoolOptions, onError: (error: SpoolError) => void) => Spool;
