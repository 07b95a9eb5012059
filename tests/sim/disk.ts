// A simulated file system under the real spool code (src/spool/file.ts and lock.ts, through the
// SpoolDisk interface): files in memory, with what was synced kept apart from what was only
// written, and faults drawn from the scenario's seed — EIO on read, write and fsync, ENOSPC
// after a short write, and a process crash at a write, which leaves a torn prefix of it behind.
// Several simulated processes (pids) share one file system; a crashed one is dead for the lock.

import type { SpoolDisk } from "../../src/spool/disk.ts";
import type { Rng } from "./scheduler.ts";

interface SimFile {
  data: Uint8Array;
  size: number;
  ino: number;
}

/** Thrown at the process that crashed, by every call it makes after its crash. */
export class CrashError extends Error {
  constructor() {
    super("the process crashed");
  }
}

function fsError(code: string, call: string, path = ""): Error {
  return Object.assign(new Error(`${code}: simulated ${call} ${path}`), { code });
}

/** Fault rates of a scenario's disk (per call). */
export interface DiskFaults {
  readEio: number;
  writeEio: number;
  fsyncEio: number;
  enospc: number;
  /** A crash of the process at a write (the write torn). */
  crash: number;
}

export const NO_FAULTS: DiskFaults = { readEio: 0, writeEio: 0, fsyncEio: 0, enospc: 0, crash: 0 };

/** The shared file system. */
export class SimFs {
  readonly files = new Map<string, SimFile>();
  readonly dirs = new Set<string>(["/"]);
  #ino = 1;
  readonly alive = new Set<number>();
  /** Lock holders by the spool: who believes it holds `lock` (set by the simulation). */
  faults: DiskFaults = NO_FAULTS;
  /** Faults are injected only while armed (not while the simulation itself looks at the disk). */
  armed = true;
  readonly injected: string[] = [];
  readonly rng: Rng;
  constructor(rng: Rng) {
    this.rng = rng;
  }

  newIno(): number {
    return this.#ino++;
  }

  /** Bytes in the segment files of `dir`. */
  segmentBytes(dir: string): number {
    let n = 0;
    for (const [path, f] of this.files) if (path.startsWith(dir + "/") && path.endsWith(".seg")) n += f.size;
    return n;
  }

  text(path: string): string | undefined {
    const f = this.files.get(path);
    return f && new TextDecoder().decode(f.data.subarray(0, f.size));
  }
}

function norm(path: string): string {
  const parts: string[] = [];
  for (const p of path.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") parts.pop();
    else parts.push(p);
  }
  return "/" + parts.join("/");
}

function parent(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

/** One process's view of the shared file system: a SpoolDisk. */
export class SimDisk implements SpoolDisk {
  readonly #fs: SimFs;
  readonly #fds = new Map<number, { path: string; file: SimFile }>();
  #nextFd = 3;
  readonly exitListeners = new Set<() => void>();
  /** Set when this process crashed at a write; everything after throws. */
  crashed = false;
  /** A short write happened: the next write fails with ENOSPC. */
  #fullAfterShort = false;

  readonly pid: number;
  constructor(fs: SimFs, pid: number) {
    this.pid = pid;
    this.#fs = fs;
    fs.alive.add(pid);
  }

  /** Files this process has open. */
  get openFiles(): number {
    return this.#fds.size;
  }

  /** The process ends (crash or exit): its pid is dead, its descriptors gone. */
  die(): void {
    this.#fs.alive.delete(this.pid);
    this.#fds.clear();
  }

  #live(call: string): void {
    if (this.crashed) throw new CrashError();
    void call;
  }

  #fault(rate: number, what: string): boolean {
    const fs = this.#fs;
    if (!fs.armed || rate <= 0 || !fs.rng.chance(rate)) return false;
    fs.injected.push(what);
    return true;
  }

  processAlive(pid: number): boolean {
    return this.#fs.alive.has(pid);
  }

  onExit(listener: () => void): () => void {
    this.exitListeners.add(listener);
    return () => this.exitListeners.delete(listener);
  }

  join(...parts: string[]): string {
    return norm(parts.join("/"));
  }

  mkdirp(dir: string): void {
    this.#live("mkdir");
    let p = norm(dir);
    const todo: string[] = [];
    while (!this.#fs.dirs.has(p)) {
      if (this.#fs.files.has(p)) throw fsError("ENOTDIR", "mkdir", p);
      todo.push(p);
      p = parent(p);
    }
    for (const d of todo) this.#fs.dirs.add(d);
  }

  realpath(path: string): string {
    this.#live("realpath");
    const p = norm(path);
    if (!this.#fs.dirs.has(p) && !this.#fs.files.has(p)) throw fsError("ENOENT", "realpath", p);
    return p;
  }

  readdir(dir: string): string[] {
    this.#live("readdir");
    const d = norm(dir);
    if (!this.#fs.dirs.has(d)) throw fsError("ENOENT", "readdir", d);
    const out: string[] = [];
    for (const path of this.#fs.files.keys()) if (parent(path) === d) out.push(path.slice(d.length + 1));
    return out.sort();
  }

  exists(path: string): boolean {
    this.#live("exists");
    const p = norm(path);
    return this.#fs.files.has(p) || this.#fs.dirs.has(p);
  }

  #file(path: string, call: string): SimFile {
    const f = this.#fs.files.get(norm(path));
    if (f === undefined) throw fsError("ENOENT", call, path);
    return f;
  }

  readFile(path: string): Uint8Array {
    this.#live("readFile");
    const f = this.#file(path, "readFile");
    if (this.#fault(this.#fs.faults.readEio, "readFile EIO")) throw fsError("EIO", "readFile", path);
    return f.data.slice(0, f.size);
  }

  open(path: string, flags: "wx" | "r" | "r+" | "w+"): number {
    this.#live("open");
    const p = norm(path);
    if (!this.#fs.dirs.has(parent(p))) throw fsError("ENOENT", "open", p);
    let f = this.#fs.files.get(p);
    if (flags === "wx" && f !== undefined) throw fsError("EEXIST", "open", p);
    if ((flags === "r" || flags === "r+") && f === undefined) throw fsError("ENOENT", "open", p);
    if (f === undefined || flags === "w+") {
      f = { data: new Uint8Array(256), size: 0, ino: this.#fs.newIno() };
      this.#fs.files.set(p, f);
    }
    const fd = this.#nextFd++;
    this.#fds.set(fd, { path: p, file: f });
    return fd;
  }

  #fd(fd: number, call: string): SimFile {
    const h = this.#fds.get(fd);
    if (h === undefined) throw fsError("EBADF", call);
    return h.file;
  }

  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
    this.#live("read");
    const f = this.#fd(fd, "read");
    if (this.#fault(this.#fs.faults.readEio, "read EIO")) throw fsError("EIO", "read");
    const n = Math.max(0, Math.min(length, f.size - position));
    buf.set(f.data.subarray(position, position + n), offset);
    return n;
  }

  write(fd: number, data: Uint8Array, offset: number, length: number, position: number): number {
    this.#live("write");
    const f = this.#fd(fd, "write");
    const faults = this.#fs.faults;
    if (this.#fs.armed && faults.crash > 0 && this.#fs.rng.chance(faults.crash)) {
      // The process dies in this write: a prefix of it reached the file.
      this.#fs.injected.push("crash at write");
      const torn = this.#fs.rng.int(0, length - 1);
      this.#put(f, data.subarray(offset, offset + torn), position);
      this.crashed = true;
      throw new CrashError();
    }
    if (this.#fullAfterShort) {
      this.#fullAfterShort = false;
      throw fsError("ENOSPC", "write");
    }
    if (this.#fault(faults.writeEio, "write EIO")) throw fsError("EIO", "write");
    if (length > 1 && this.#fault(faults.enospc, "write ENOSPC (short)")) {
      // The disk fills: part of it is written, the next write fails.
      const short = this.#fs.rng.int(1, length - 1);
      this.#put(f, data.subarray(offset, offset + short), position);
      this.#fullAfterShort = true;
      return short;
    }
    this.#put(f, data.subarray(offset, offset + length), position);
    return length;
  }

  #put(f: SimFile, bytes: Uint8Array, position: number): void {
    const end = position + bytes.length;
    if (end > f.data.length) {
      const grown = new Uint8Array(Math.max(end, f.data.length * 2));
      grown.set(f.data.subarray(0, f.size));
      f.data = grown;
    }
    f.data.set(bytes, position);
    f.size = Math.max(f.size, end);
  }

  fdatasync(fd: number): void {
    this.#live("fdatasync");
    this.#fd(fd, "fdatasync");
    if (this.#fault(this.#fs.faults.fsyncEio, "fsync EIO")) throw fsError("EIO", "fdatasync");
  }

  syncDir(_dir: string): void {
    this.#live("syncDir");
  }

  close(fd: number): void {
    this.#live("close");
    if (!this.#fds.delete(fd)) throw fsError("EBADF", "close");
  }

  truncate(path: string, length: number): void {
    this.#live("truncate");
    const f = this.#file(path, "truncate");
    f.size = Math.min(f.size, length);
  }

  unlink(path: string): void {
    this.#live("unlink");
    const p = norm(path);
    if (!this.#fs.files.delete(p)) throw fsError("ENOENT", "unlink", p);
  }

  link(from: string, to: string): void {
    this.#live("link");
    const f = this.#file(from, "link");
    const t = norm(to);
    if (this.#fs.files.has(t)) throw fsError("EEXIST", "link", t);
    this.#fs.files.set(t, f);
  }

  rename(from: string, to: string): void {
    this.#live("rename");
    const f = this.#file(from, "rename");
    this.#fs.files.delete(norm(from));
    this.#fs.files.set(norm(to), f);
  }

  identity(path: string): number {
    this.#live("identity");
    return this.#file(path, "identity").ino;
  }
}
