// A telnet-like transport the test scripts (answer `version` or not, close at once, reset,
// hold writes), and a virtual clock whose sleeps end as the test moves time on. Both are
// in-memory: every test that uses them is deterministic and waits on nothing real.

import type { Clock } from "../../src/writer.ts";
import type { Connection, ConnectOptions, Transport } from "../../src/transport/types.ts";

export const OPENTSDB_ANSWER = [
  "net.opentsdb.tools 2.4.0 built at revision 1a2b3c4 (MINT)",
  "Built on 2019/01/01 00:00:00 +0000 by user@host:/path",
];

const utf8 = new TextDecoder();

/** One write a scripted connection took. */
export interface ScriptedWrite {
  connection: number;
  /** The put lines in it (probes left out). */
  lines: string[];
  /** Virtual time of the write. */
  at: number;
}

/** One connection of a {@linkcode ScriptedTransport}. */
export class ScriptedConnection implements Connection {
  readonly closed: Promise<Error | undefined>;
  readonly index: number;
  readonly address: string;
  open = true;
  ended = false;
  destroyed = false;
  /** Probes received. */
  probes = 0;
  /** Writes whose `done` waits until `release()` (a full kernel buffer). */
  held: (() => void)[] = [];
  #resolve!: (error: Error | undefined) => void;
  #readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  readonly #t: ScriptedTransport;
  readonly #onLine: (line: string) => void;

  constructor(t: ScriptedTransport, index: number, address: string, onLine: (line: string) => void) {
    this.#t = t;
    this.index = index;
    this.address = address;
    this.#onLine = onLine;
    this.closed = new Promise((resolve) => this.#resolve = resolve);
  }

  write(data: Uint8Array, done: (error?: Error) => void): boolean {
    if (!this.open) {
      queueMicrotask(() => done(new Error("connection closed")));
      return false;
    }
    const lines = utf8.decode(data).split("\n").slice(0, -1);
    const puts = lines.filter((l) => l !== "version");
    if (puts.length > 0) this.#t.writes.push({ connection: this.index, lines: puts, at: this.#t.now() });
    const probes = lines.length - puts.length;
    this.probes += probes;
    this.#t.probes += probes;
    const finish = () => {
      if (!this.open) return done(new Error("connection closed"));
      done();
      for (let i = 0; i < probes; i++) {
        if (this.#t.answer(this)) {
          queueMicrotask(() => this.open && this.#t.answerLines.forEach(this.#onLine));
        }
      }
    };
    if (this.#t.holdWrites) {
      this.held.push(finish);
      return false; // a full buffer: the writer waits for ready()
    }
    queueMicrotask(finish);
    return true;
  }

  /** Lets held writes complete. */
  release(): void {
    const held = this.held;
    this.held = [];
    for (const f of held) f();
    for (const w of this.#readyWaiters.splice(0)) w.resolve();
  }

  ready(): Promise<void> {
    if (!this.open) return Promise.reject(new Error("connection closed"));
    if (this.held.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.#readyWaiters.push({ resolve, reject }));
  }

  end(): void {
    this.ended = true;
    // A graceful end writes what is held first: while writes are held (a peer that reads
    // nothing), it never gets there, and only destroy() ends the connection.
    if (this.#t.holdWrites && this.held.length > 0) return;
    this.release();
    queueMicrotask(() => this.close());
  }

  destroy(): void {
    this.destroyed = true;
    this.close(undefined, true);
  }

  /** Ends the connection as the server would: cleanly, or with `error` (a reset). */
  close(error?: Error, drop = false): void {
    if (!this.open) return;
    this.open = false;
    if (drop) { for (const f of this.held.splice(0)) f(); }
    for (const w of this.#readyWaiters.splice(0)) w.reject(new Error("connection closed"));
    this.#resolve(error);
  }

  /** The server sends a line. */
  reply(line: string): void {
    if (this.open) this.#onLine(line);
  }

  ref(): void {}
  unref(): void {}
}

/** A scripted telnet transport (no `acknowledges`: the writer probes it). */
export class ScriptedTransport implements Transport {
  readonly name = "scripted";
  readonly connections: ScriptedConnection[] = [];
  readonly writes: ScriptedWrite[] = [];
  /** Connect attempts, with their address and virtual time. */
  readonly attempts: { address: string; at: number }[] = [];
  probes = 0;
  /** Whether a connection answers a probe; by default every one does. */
  answer: (c: ScriptedConnection) => boolean = () => true;
  answerLines: string[] = OPENTSDB_ANSWER;
  /** Called with each new connection (to close it at once, say). */
  onConnect: ((c: ScriptedConnection) => void) | undefined;
  /** Refuses connects to these addresses (`host:port`), or all with `"*"`. */
  refuse = new Set<string>();
  holdWrites = false;
  readonly now: () => number;

  constructor(now: () => number = () => 0) {
    this.now = now;
  }

  connect(o: ConnectOptions): Promise<Connection> {
    const address = `${o.host}:${o.port}`;
    this.attempts.push({ address, at: this.now() });
    if (o.signal.aborted) return Promise.reject(o.signal.reason);
    if (this.refuse.has(address) || this.refuse.has("*")) {
      return Promise.reject(new Error(`connection refused by ${address}`));
    }
    const c = new ScriptedConnection(this, this.connections.length, address, o.onLine);
    this.connections.push(c);
    this.onConnect?.(c);
    return Promise.resolve(c);
  }

  /** The connection open now, if any. */
  get current(): ScriptedConnection | undefined {
    const last = this.connections.at(-1);
    return last?.open ? last : undefined;
  }

  /** Every put line written, in order, across connections. */
  lines(): string[] {
    return this.writes.flatMap((w) => w.lines);
  }

  /** The value of each put line written (the tests send a sequence number as the value). */
  values(): number[] {
    return this.lines().map((l) => Number(l.split(" ")[3]));
  }
}

/** A clock whose sleeps end when the test moves time on with `advance()`. */
export class VirtualClock implements Clock {
  time = 0;
  #timers: { at: number; resolve: () => void }[] = [];

  now(): number {
    return this.time;
  }

  sleep(ms: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = {
        at: this.time + Math.max(0, ms),
        resolve: () => {
          signal.removeEventListener("abort", abort);
          resolve();
        },
      };
      const abort = () => {
        this.#timers = this.#timers.filter((t) => t !== timer);
        resolve();
      };
      this.#timers.push(timer);
      signal.addEventListener("abort", abort, { once: true });
    });
  }

  /** Sleeps not yet over. */
  get pending(): number {
    return this.#timers.length;
  }

  /**
   * Lets the code woken last run a macrotask turn, then moves time to the earliest sleep's end
   * and ends it (with any due at the same time).
   *
   * @returns false when no sleep was pending (time did not move)
   */
  async advanceToNext(): Promise<boolean> {
    await new Promise((r) => setTimeout(r, 0)); // the code woken last may sleep again first
    if (this.#timers.length === 0) return false;
    this.time = Math.max(this.time, Math.min(...this.#timers.map((t) => t.at)));
    const due = this.#timers.filter((t) => t.at <= this.time);
    this.#timers = this.#timers.filter((t) => t.at > this.time);
    for (const t of due) t.resolve();
    return true;
  }

  /** Moves time on by `ms`, ending each sleep at its time, in order, and lets the woken code run. */
  async advance(ms: number, step = Infinity): Promise<void> {
    const end = this.time + ms;
    for (let guard = 0; guard < 1_000_000; guard++) {
      await settle();
      this.#timers.sort((a, b) => a.at - b.at);
      const next = this.#timers[0];
      const to = Math.min(end, this.time + step);
      if (next === undefined || next.at > to) {
        this.time = to;
        if (to >= end) break;
        continue;
      }
      this.#timers.shift();
      this.time = Math.max(this.time, next.at);
      next.resolve();
    }
    await settle();
  }
}

/** Lets queued microtasks and a few macrotask turns run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 0));
}
