/**
 * The spool's view of the file system and of its process: every call the
 * spool and its lock make, behind one interface, so that a test (or the
 * deterministic simulation in `tests/sim/`) can put a disk that fails on
 * purpose — EIO, ENOSPC, a torn write, a crash at any write — under the real
 * spool code. {@linkcode nodeDisk} is the real one, on `node:fs` (which
 * serves Node, Deno and Bun alike).
 *
 * @module
 */

import * as fs from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { onEndingSignal } from "./signals.ts";

/** What the spool needs of a disk and of its process; file descriptors are plain numbers. */
export interface SpoolDisk {
  /** This process's id (written in the lock). */
  readonly pid: number;
  /**
   * Whether a process with this pid runs.
   *
   * @param pid the pid
   * @returns true when it runs (or exists and belongs to someone else)
   */
  processAlive(pid: number): boolean;
  /**
   * Runs `listener` when the process exits, or when SIGINT, SIGTERM or SIGHUP
   * is about to end it; returns what removes it.
   *
   * @param listener runs synchronously at exit
   * @returns removes the listener
   */
  onExit(listener: () => void): () => void;
  /**
   * Joins path parts.
   *
   * @param parts path parts
   * @returns the path
   */
  join(...parts: string[]): string;
  /**
   * Makes a directory and its parents when missing.
   *
   * @param dir the directory
   */
  mkdirp(dir: string): void;
  /**
   * The canonical path of an existing directory or file (symlinks resolved).
   *
   * @param path the path
   * @returns its canonical form
   */
  realpath(path: string): string;
  /**
   * Names in a directory.
   *
   * @param dir the directory
   * @returns the names
   */
  readdir(dir: string): string[];
  /**
   * Whether a path exists.
   *
   * @param path the path
   * @returns true when it does
   */
  exists(path: string): boolean;
  /**
   * A whole file.
   *
   * @param path the file
   * @returns its bytes
   */
  readFile(path: string): Uint8Array;
  /**
   * Opens a file: `"wx"` creates it and fails with EEXIST when it exists,
   * `"r"` reads, `"r+"` reads and writes an existing file, `"w+"` creates or
   * empties one for reading and writing.
   *
   * @param path the file
   * @param flags how
   * @returns its descriptor
   */
  open(path: string, flags: "wx" | "r" | "r+" | "w+"): number;
  /**
   * Reads into `buf[offset, offset + length)` from `position`.
   *
   * @param fd descriptor
   * @param buf the buffer
   * @param offset where in `buf`
   * @param length most bytes
   * @param position where in the file
   * @returns bytes read (0 at the end)
   */
  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number;
  /**
   * Writes `data[offset, offset + length)` at `position`.
   *
   * @param fd descriptor
   * @param data the bytes
   * @param offset where in `data`
   * @param length how many
   * @param position where in the file
   * @returns bytes written (maybe fewer)
   */
  write(fd: number, data: Uint8Array, offset: number, length: number, position: number): number;
  /**
   * Flushes a file's data to the disk.
   *
   * @param fd descriptor
   */
  fdatasync(fd: number): void;
  /**
   * Flushes a directory's entries to the disk (best effort: not every platform can).
   *
   * @param dir the directory
   */
  syncDir(dir: string): void;
  /**
   * Closes a descriptor.
   *
   * @param fd descriptor
   */
  close(fd: number): void;
  /**
   * Cuts a file to `length` bytes.
   *
   * @param path the file
   * @param length its new length
   */
  truncate(path: string, length: number): void;
  /**
   * Removes a file.
   *
   * @param path the file
   */
  unlink(path: string): void;
  /**
   * Makes `to` another name of `from`; fails with EEXIST when `to` exists (atomic).
   *
   * @param from an existing file
   * @param to the new name
   */
  link(from: string, to: string): void;
  /**
   * Renames `from` to `to` (atomic; replaces `to`).
   *
   * @param from an existing file
   * @param to the new name
   */
  rename(from: string, to: string): void;
  /**
   * The file's identity (its inode number), to tell a file from a later one of the same name.
   *
   * @param path the file
   * @returns a number that differs between two files alive at once
   */
  identity(path: string): number;
}

/**
 * The real disk and process: `node:fs`, `node:process`.
 *
 * @example
 * ```ts
 * import { nodeDisk } from "./disk.ts";
 *
 * console.assert(nodeDisk.processAlive(nodeDisk.pid));
 * ```
 */
export const nodeDisk: SpoolDisk = {
  pid: process.pid,
  processAlive(pid) {
    if (!Number.isInteger(pid) || pid <= 0) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch (e) {
      return (e as { code?: string }).code === "EPERM";
    }
  },
  onExit(listener) {
    process.on("exit", listener);
    // SIGINT, SIGTERM and SIGHUP end a process without its "exit" event: the hook runs at those too.
    const removeSignals = onEndingSignal(listener);
    return () => {
      process.off("exit", listener);
      removeSignals();
    };
  },
  join: (...parts) => join(...parts),
  mkdirp: (dir) => void fs.mkdirSync(dir, { recursive: true }),
  realpath: (path) => fs.realpathSync(path),
  readdir: (dir) => fs.readdirSync(dir),
  exists: (path) => fs.existsSync(path),
  readFile: (path) => fs.readFileSync(path),
  open: (path, flags) => fs.openSync(path, flags),
  read: (fd, buf, offset, length, position) => fs.readSync(fd, buf, offset, length, position),
  write: (fd, data, offset, length, position) => fs.writeSync(fd, data, offset, length, position),
  fdatasync: (fd) => fs.fdatasyncSync(fd),
  syncDir(dir) {
    let fd: number | undefined;
    try {
      fd = fs.openSync(dir, "r");
      fs.fsyncSync(fd);
    } catch {
      // Not every platform syncs a directory; the files themselves are synced.
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  },
  close: (fd) => fs.closeSync(fd),
  truncate: (path, length) => fs.truncateSync(path, length),
  unlink: (path) => fs.unlinkSync(path),
  link: (from, to) => fs.linkSync(from, to),
  rename: (from, to) => fs.renameSync(from, to),
  identity: (path) => Number(fs.statSync(path).ino),
};
