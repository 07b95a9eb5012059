/**
 * The part of a connection shared by transports whose writes are
 * asynchronous or partial (Deno, Bun, web sockets): an ordered write buffer
 * with a high-water mark, `done` per write, `ready()` waiters and one
 * `closed` promise.
 *
 * @module
 */

import { connectionClosed, ReadyWaiters } from "../runtime.ts";
import type { Connection } from "./types.ts";

/** Bytes buffered before `write()` asks the caller to wait. */
export const HIGH_WATER_MARK = 128 * 1024;

interface Pending {
  /** What is left to write of it. */
  bytes: Uint8Array;
  /** Its size as written, for the buffer's accounting. */
  size: number;
  done: (error?: Error) => void;
}

/**
 * How a runtime's socket is driven by {@linkcode BufferedConnection}.
 * `send` writes as much of `bytes` as the socket takes now and returns that
 * count, or a promise of it (Deno), or -1 when the socket is closed.
 */
export interface SocketDriver {
  send(bytes: Uint8Array): number | Promise<number>;
  close(): void;
  ref(): void;
  unref(): void;
}

/**
 * A {@linkcode Connection} over a {@linkcode SocketDriver}. The adapter calls
 * `drain()` when the socket can take more (after a partial write) and
 * `finish(error)` when the socket has ended.
 */
export class BufferedConnection implements Connection {
  readonly closed: Promise<Error | undefined>;
  #driver: SocketDriver;
  #pending: Pending[] = [];
  #pendingBytes = 0;
  #writing = false;
  #ending = false;
  #done = false;
  #error: Error | undefined;
  readonly #waiters = new ReadyWaiters();
  #resolveClosed!: (e: Error | undefined) => void;

  constructor(driver: SocketDriver) {
    this.#driver = driver;
    this.closed = new Promise((resolve) => this.#resolveClosed = resolve);
  }

  write(data: Uint8Array, done: (error?: Error) => void): boolean {
    if (this.#done || this.#ending) {
      const error = connectionClosed(this.#error);
      queueMicrotask(() => done(error));
      return false;
    }
    this.#pending.push({ bytes: data, size: data.length, done });
    this.#pendingBytes += data.length;
    if (!this.#writing) this.drain();
    return this.#pendingBytes < HIGH_WATER_MARK;
  }

  ready(): Promise<void> {
    if (this.#done) return Promise.reject(connectionClosed(this.#error));
    if (this.#pendingBytes < HIGH_WATER_MARK) return Promise.resolve();
    return this.#waiters.wait();
  }

  /** Writes buffered data until the socket pushes back or the buffer is empty. */
  drain(): void {
    if (this.#writing || this.#done) return;
    this.#writing = true;
    try {
      while (this.#pending.length > 0) {
        const item = this.#pending[0];
        const sent = this.#driver.send(item.bytes);
        if (typeof sent !== "number") {
          // Deno: the write completes later; continue from there.
          sent.then((n) => this.#afterAsyncSend(item, n), (e) => this.finish(e));
          return;
        }
        if (!this.#advance(item, sent)) return;
      }
      this.#writing = false;
      this.#settleWaiters();
      if (this.#ending) this.#driver.close();
    } catch (e) {
      this.finish(e instanceof Error ? e : new Error(String(e)));
    }
  }

  #afterAsyncSend(item: Pending, n: number): void {
    if (this.#done) return;
    this.#writing = false;
    // After a partial asynchronous write, go on with the rest at once.
    this.#advance(item, n);
    this.drain();
  }

  /** Accounts for `n` bytes of `item` written; false when the socket is full or closed. */
  #advance(item: Pending, n: number): boolean {
    if (n < 0) {
      this.finish(connectionClosed());
      return false;
    }
    const bytes = item.bytes;
    if (n < bytes.length) {
      item.bytes = bytes.subarray(n);
      this.#writing = false; // wait for the adapter's drain()
      return false;
    }
    this.#pending.shift();
    this.#pendingBytes -= item.size;
    item.done(); // at once: a synchronous loop of writes is confirmed as it goes
    return true;
  }

  #settleWaiters(): void {
    if (this.#pendingBytes >= HIGH_WATER_MARK) return;
    this.#waiters.resolveAll();
  }

  /** Marks the connection ended; pending writes fail with `error`. */
  finish(error?: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.#error = error;
    const lost = connectionClosed(error);
    const pending = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    for (const p of pending) queueMicrotask(() => p.done(lost));
    this.#waiters.rejectAll(lost);
    try {
      this.#driver.close();
    } catch {
      // already closed
    }
    this.#resolveClosed(error);
  }

  end(): void {
    if (this.#done || this.#ending) return;
    this.#ending = true;
    if (this.#pending.length === 0 && !this.#writing) this.#driver.close();
  }

  destroy(): void {
    this.finish();
  }

  ref(): void {
    this.#driver.ref();
  }

  unref(): void {
    this.#driver.unref();
  }
}
