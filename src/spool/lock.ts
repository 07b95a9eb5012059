/**
 * The spool directory's lock: a file `lock` holding the owner's pid, made
 * with an exclusive create. A lock whose pid is no longer running is stale
 * and taken over; one held by a live process (or by another client in this
 * process) refuses the directory with an `OptionsError`.
 *
 * @module
 */

import * as fs from "node:fs";
import { join, resolve } from "node:path";
import process from "node:process";
import { OptionsError } from "../errors.ts";

// Directories locked by clients of this process (a second client there would share the pid).
const held = new Set<string>();

/** A held directory lock. */
export interface DirLock {
  /** The lock file. */
  readonly path: string;
  /** Whether a stale lock (of a dead pid) was taken over. */
  readonly tookOver: number | undefined;
  /** Removes the lock file (synchronously; safe at process exit). */
  release(): void;
}

/**
 * Whether a process with this pid runs (signal 0 tests without sending).
 *
 * @param pid the pid
 * @returns true when it runs, or exists but belongs to another user
 */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

/**
 * Takes the lock of `dir` (which must exist).
 *
 * @param dir the spool directory
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
export function acquireLock(dir: string): DirLock {
  const key = resolve(dir);
  const path = join(key, "lock");
  if (held.has(key)) {
    throw new OptionsError(`spool dir ${dir} is in use by another client of this process`);
  }
  let tookOver: number | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = fs.openSync(path, "wx");
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST") throw e;
      let text: string;
      try {
        text = fs.readFileSync(path, "utf8");
      } catch (e2) {
        if ((e2 as { code?: string }).code === "ENOENT") continue; // released meanwhile
        throw e2;
      }
      const pid = Number.parseInt(text, 10);
      if (pid !== process.pid && processAlive(pid)) {
        throw new OptionsError(`spool dir ${dir} is locked by the running process ${pid} (${path})`);
      }
      // Stale: its process is gone (or it is this pid's leftover, not in `held`).
      tookOver = Number.isFinite(pid) ? pid : -1;
      try {
        fs.unlinkSync(path);
      } catch (e2) {
        if ((e2 as { code?: string }).code !== "ENOENT") throw e2;
      }
      continue;
    }
    try {
      fs.writeSync(fd, `${process.pid}\n`);
    } finally {
      fs.closeSync(fd);
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
          if (Number.parseInt(fs.readFileSync(path, "utf8"), 10) === process.pid) fs.unlinkSync(path);
        } catch {
          // gone already, or the directory went away
        }
      },
    };
  }
  throw new OptionsError(`spool dir ${dir}: cannot take the lock ${path} (others keep taking it)`);
}
