/**
 * The spool directory's lock: a file `lock` holding the owner's pid. A lock
 * whose pid is no longer running is stale and taken over; one held by a
 * live process (or by another client in this process) refuses the directory
 * with an `OptionsError`.
 *
 * Every step that matters is one atomic file-system call, so that two
 * processes can never both hold the lock:
 * - The lock is made whole, then given its name: the pid is written to a
 *   file of this process's own (`lock.<pid>.<n>`), which `link()` names
 *   `lock` — that fails when `lock` exists. Nobody ever sees an empty lock
 *   (an empty or unreadable one is a damaged leftover, taken for stale).
 * - A stale lock is removed by one process only: the one that first makes
 *   the claim file `lock.break.<lock's id>.<level>` (with `link()` again).
 *   The claim holds the claimant's pid; a claim of a dead claimant (it died
 *   while taking over) is passed by making the next level. The claimant
 *   checks that `lock` is still the stale one it judged, removes it, and
 *   tries again to make its own, as anyone may.
 *
 * @module
 */

import { OptionsError } from "../errors.ts";
import { crc32 } from "./crc32.ts";
import { nodeDisk, type SpoolDisk } from "./disk.ts";

// Directories locked by clients of this process (a second client there would share the pid),
// by pid and canonical path: a symlink or another spelling of the same directory is the same.
const held = new Set<string>();

const utf8 = new TextEncoder();
const text = new TextDecoder();

// Attempts before giving up when others keep taking and releasing the lock.
const ATTEMPTS = 50;
// Levels of dead claimants passed before giving up on a stale lock.
const MAX_LEVELS = 16;

let made = 0;

/** A held directory lock. */
export interface DirLock {
  /** The lock file. */
  readonly path: string;
  /** The pid of the stale lock that was taken over (-1 when it was unreadable). */
  readonly tookOver: number | undefined;
  /** Removes the lock file (synchronously; safe at process exit). */
  release(): void;
}

/**
 * Whether a process with this pid runs (signal 0 tests without sending).
 *
 * @param pid the pid
 * @returns true when it runs, or exists but belongs to another user
 *
 * @example
 * ```ts
 * import process from "node:process";
 * import { processAlive } from "./lock.ts";
 *
 * console.assert(processAlive(process.pid));
 * ```
 */
export function processAlive(pid: number): boolean {
  return nodeDisk.processAlive(pid);
}

function errorCode(e: unknown): string | undefined {
  return (e as { code?: string } | undefined)?.code;
}

/** Waits a little without returning to the event loop (another process is mid-way through a few calls). */
function pause(ms: number): void {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  } catch {
    // A runtime that cannot block here just tries again at once.
  }
}

/** A file's text and identity, or undefined when it does not exist. */
function look(disk: SpoolDisk, path: string): { text: string; id: number } | undefined {
  try {
    const id = disk.identity(path);
    return { text: text.decode(disk.readFile(path)), id };
  } catch (e) {
    if (errorCode(e) === "ENOENT") return undefined;
    throw e;
  }
}

function removeQuietly(disk: SpoolDisk, path: string): void {
  try {
    disk.unlink(path);
  } catch (e) {
    if (errorCode(e) !== "ENOENT") throw e;
  }
}

/**
 * Takes the lock of `dir` (which must exist).
 *
 * @param dir the spool directory
 * @param disk the file system (a test's simulated one, or the real one)
 * @returns the lock
 * @throws {OptionsError} when a live process, or another client of this one, holds it
 * @throws the file system's error when the directory cannot be written
 *
 * @example
 * ```ts
 * import { mkdtempSync, rmSync } from "node:fs";
 * import { tmpdir } from "node:os";
 * import { join } from "node:path";
 * import { acquireLock } from "./lock.ts";
 *
 * const dir = mkdtempSync(join(tmpdir(), "potsdb-lock-"));
 * const lock = acquireLock(dir);
 * try {
 *   acquireLock(dir); // throws: this process holds it
 * } catch (e) {
 *   console.assert((e as Error).name === "OptionsError");
 * }
 * lock.release();
 * rmSync(dir, { recursive: true });
 * ```
 */
export function acquireLock(dir: string, disk: SpoolDisk = nodeDisk): DirLock {
  const canonical = disk.realpath(dir);
  const key = `${disk.pid}:${canonical}`;
  const path = disk.join(canonical, "lock");
  if (held.has(key)) {
    throw new OptionsError(`spool dir ${dir} is in use by another client of this process`);
  }
  const token = `${disk.pid}\n`;
  // This process's lock, whole before it is named `lock`.
  const own = disk.join(canonical, `lock.${disk.pid}.${made++}.${Math.floor(Math.random() * 1e9)}`);
  const fd = disk.open(own, "wx");
  try {
    const bytes = utf8.encode(token);
    for (let done = 0; done < bytes.length;) done += disk.write(fd, bytes, done, bytes.length - done, done);
  } finally {
    disk.close(fd);
  }
  let tookOver: number | undefined;
  try {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      try {
        disk.link(own, path);
      } catch (e) {
        if (errorCode(e) !== "EEXIST") throw e;
        const found = look(disk, path);
        if (found === undefined) continue; // released meanwhile
        const pid = Number.parseInt(found.text, 10);
        if (pid !== disk.pid && disk.processAlive(pid)) {
          throw new OptionsError(`spool dir ${dir} is locked by the running process ${pid} (${path})`);
        }
        // Stale: its process is gone (or it is this pid's leftover, not in `held`), or it is damaged.
        if (breakStale(disk, canonical, path, own, found)) tookOver = Number.isFinite(pid) ? pid : -1;
        else pause(1); // another process is taking it over: see who won
        continue;
      }
      held.add(key);
      let released = false;
      return {
        path,
        tookOver,
        release() {
          if (released) return;
          released = true;
          held.delete(key);
          try {
            // Ours still (nobody takes over a live process's lock): removed.
            if (look(disk, path)?.text === token) disk.unlink(path);
          } catch {
            // gone already, or the directory went away
          }
        },
      };
    }
  } finally {
    removeQuietly(disk, own);
  }
  throw new OptionsError(`spool dir ${dir}: cannot take the lock ${path} (others keep taking it)`);
}

/**
 * Removes the stale lock `found` unless another process is removing it.
 *
 * @returns true when this process removed it
 */
function breakStale(
  disk: SpoolDisk,
  dir: string,
  path: string,
  own: string,
  found: { text: string; id: number },
): boolean {
  const id = `${crc32(utf8.encode(found.text)).toString(16)}-${found.id}`;
  for (let level = 1; level <= MAX_LEVELS; level++) {
    const claim = disk.join(dir, `lock.break.${id}.${level}`);
    try {
      disk.link(own, claim); // the claim holds our pid from the start
    } catch (e) {
      if (errorCode(e) !== "EEXIST") throw e;
      const claimant = look(disk, claim);
      if (claimant === undefined) return false; // finished meanwhile: look again
      const pid = Number.parseInt(claimant.text, 10);
      if (disk.processAlive(pid) && pid !== disk.pid) return false; // a live process is on it
      continue; // it died on the way: the next level
    }
    // Only the claimant of this level removes the lock; is it still the one judged stale?
    const now = look(disk, path);
    if (now === undefined || now.text !== found.text || now.id !== found.id) {
      removeQuietly(disk, claim);
      return false;
    }
    disk.unlink(path);
    // The claims were about a lock that is gone: nobody needs them now.
    for (let l = 1; l <= level; l++) removeQuietly(disk, disk.join(dir, `lock.break.${id}.${l}`));
    return true;
  }
  return false;
}
