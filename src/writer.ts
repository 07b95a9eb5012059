/**
 * The writer: one per client, it moves lines from the queue to the server.
 *
 * States: idle (nothing to write; handles unref'd) → connecting (with a
 * connect timeout, to the next address that is not cooling down) → writing
 * (coalesced batches, rate-limited, waiting on backpressure) → back to idle,
 * or to connecting when the connection ends. One connection's life (probes,
 * answers, watchdog, rebalance, its end) is a `Session` (`connection.ts`);
 * every end of one reaches `#ended`, which applies `planEnd`; the address
 * book decides where and when to connect next. `stop()` ends it.
 *
 * @module
 */

import { type Address, AddressBook, type EndReason } from "./addresses.ts";
import { type BackoffOptions, sleep } from "./backoff.ts";
import { openConnection, planEnd, Session, type SessionOwner, type Timers } from "./connection.ts";
import type { ConnectError, ConnectionLostError, PotsdbError } from "./errors.ts";
import { KeepAlive } from "./keep_alive.ts";
import { BufferPool, InFlightLedger, type SeqBatch } from "./ledger.ts";
import { isProbeAnswer, isProbeAnswerTail } from "./liveness.ts";
import { DropOldestQueue, type LineSink } from "./queue.ts";
import { TokenBucket } from "./rate_limit.ts";
import { raceSignal, unrefTimer } from "./runtime.ts";
import { RATE_LIMITED, SpoolFeed } from "./spool/feed.ts";
import type { Spool } from "./spool/types.ts";
import type { Connection, Rejection, Transport } from "./transport/types.ts";

export type { Address };

/** A time source: `now()` in ms, and a sleep that resolves early on abort. */
export interface Clock {
  /** The current time in milliseconds: the timestamp of a point sent without one. */
  now(): number;
  /**
   * Elapsed time in milliseconds, which never jumps: the rate limit, the
   * reconnect backoff and the dead-peer watchdog measure with it. Without it
   * they use `now()`, so a clock whose `now()` can be stepped (a wall clock
   * that NTP corrects) should give this too, or a step forward of an hour
   * reads as an hour without progress.
   */
  monotonic?(): number;
  /** Waits `ms` (or until `signal` aborts). */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

/**
 * What measures elapsed time for a clock: its `monotonic()`, else its
 * `now()`; without a clock, `performance.now()`.
 *
 * @param clock the `clock` option, if any
 * @returns a function giving milliseconds
 *
 * @example
 * ```ts
 * import { elapsedOf } from "./writer.ts";
 *
 * const wall = { now: () => 1_700_000_000_000, monotonic: () => 5, sleep: async () => {} };
 * console.assert(elapsedOf(wall)() === 5);
 * ```
 */
export function elapsedOf(clock: Clock | undefined): () => number {
  if (clock === undefined) return () => performance.now();
  return clock.monotonic ? () => clock.monotonic!() : () => clock.now();
}

/** What the writer tells its owner as it happens. */
export interface WriterEvents {
  /** A connection was opened. */
  connect(address: Address): void;
  /** The open connection ended. */
  disconnect(error: ConnectionLostError): void;
  /** A connection attempt failed. */
  connectError(error: ConnectError): void;
  /** The server sent a line. */
  serverLine(line: string): void;
  /** Lines were confirmed written (flush waiters re-check). */
  progress(): void;
  /** The server refused these points for good (they are not retried). */
  rejected?(rejections: readonly Rejection[]): void;
}

/** Settings of a {@linkcode Writer}. */
export interface WriterOptions {
  /** Opens connections. */
  transport: Transport;
  /** Where to connect, tried in turn after each failure. */
  addresses: Address[];
  /** Queue capacity; 0 = unbounded. */
  qsize: number;
  /** Metrics per second; 0 = unlimited. */
  mps: number;
  /** Largest write in bytes (a longer line is written alone). */
  batchBytes: number;
  /** Longest wait for one connection attempt. */
  connectTimeoutMs: number;
  /** No write progress while bytes wait, or no answer to a probe, for this long: the connection is dead. */
  stallTimeoutMs: number;
  /** How often to probe an OpenTSDB connection with `version` while lines were written; 0 = never. */
  heartbeatMs: number;
  /** TCP keepalive delay for the transport; 0 = off. */
  keepAliveMs: number;
  /** Move to another address at random this often (± 10 %); 0 = never. */
  rebalanceMs: number;
  /** How long pending lines keep the process alive without progress. */
  lingerMs: number;
  /** Reconnect backoff. */
  reconnect?: BackoffOptions;
  /** Time source (tests); default `performance.now` and real timers. */
  clock?: Clock;
  /** Where the writer reports what happens. */
  events: WriterEvents;
  /** Where lines wait on disk (the `spool` option); none by default. */
  spool?: Spool;
}

// Write buffers kept for reuse once their write is confirmed: a batch is copied into one
// instead of a new allocation per write.
const SPARE_BUFFERS = 4;

// Most bytes kept for replay until the server acknowledges them; older ones are let go and
// counted as unconfirmed.
export const RETAIN_BYTES = 8 * 1024 * 1024;

// What one pump round ended on. A plain object, not an enum: Node's type
// stripping runs these sources as they are.
const Pump = { Idle: 0, Empty: 1, Blocked: 2, RateLimited: 3 } as const;
type Pump = typeof Pump[keyof typeof Pump];

const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) => sleep(ms, signal),
};

/**
 * Drains a {@linkcode DropOldestQueue} into connections made by a
 * {@linkcode Transport}. Used by `Client`.
 *
 * @example
 * ```ts
 * import { MemoryTransport } from "./transport/memory.ts";
 * import { Writer } from "./writer.ts";
 *
 * const transport = new MemoryTransport();
 * const writer = new Writer({
 *   transport,
 *   addresses: [{ host: "memory", port: 4242 }],
 *   qsize: 1000,
 *   mps: 0,
 *   batchBytes: 65536,
 *   connectTimeoutMs: 1000,
 *   stallTimeoutMs: 15000,
 *   heartbeatMs: 5000,
 *   keepAliveMs: 10000,
 *   rebalanceMs: 0,
 *   lingerMs: 1000,
 *   events: { connect() {}, disconnect() {}, connectError() {}, serverLine() {}, progress() {} },
 * });
 * writer.enqueue("put a 1 1 t=v\n");
 * while (writer.sent < 1) await new Promise((r) => setTimeout(r, 1));
 * console.assert(transport.received() === "put a 1 1 t=v\n");
 * await writer.stop(1000);
 * ```
 */
export class Writer implements LineSink {
  /** Lines accepted into the queue, ever. */
  accepted = 0;
  /** Lines the transport confirmed written to the OS. */
  sent = 0;
  /** Lines given up on at stop (not written within the deadline). */
  droppedAtClose = 0;
  /** Lines an answer of the server confirmed (a probe's answer, or an HTTP answer). */
  confirmed = 0;
  /** Lines written again because their connection died before the server acknowledged them. */
  replayed = 0;
  /** Lines written with no confirmation possible: the server never answers probes, or they were let go. */
  unconfirmed = 0;
  /** Lines the server refused for good (reported by the transport; not retried). */
  rejected = 0;
  /** Successful connections after the first. */
  reconnects = 0;
  /** Failed connection attempts. */
  connectFailures = 0;
  /** The most recent problem: the client records its own here too, so that the latest wins. */
  lastError: PotsdbError | undefined;

  /** The lines waiting to be written. */
  readonly queue: DropOldestQueue;
  readonly #o: WriterOptions;
  readonly #limiter: TokenBucket | undefined;
  readonly #addresses: AddressBook;
  readonly #clock: Clock;
  readonly #realTimers: boolean;
  readonly #timers: Timers;
  readonly #owner: SessionOwner;
  readonly #stop = new AbortController();
  #stopped = false;
  #session: Session | undefined;
  #connects = 0;
  #pumping = false;
  /** A caller waits for an answer to what is written (`flush({ confirmed })`): probe without waiting for the heartbeat. */
  #confirmWanted = false;
  readonly #ledger = new InFlightLedger();
  readonly #buffers: BufferPool;
  #wake: (() => void) | undefined;
  #running: Promise<void> | undefined;
  readonly #hold: KeepAlive;
  #sleepTimer: ReturnType<typeof setTimeout> | undefined;
  /** The spool, if any: `spool/feed.ts` moves lines between it and the queue. */
  readonly #feed: SpoolFeed | undefined;

  /**
   * Makes an idle writer; it starts on the first `enqueue` or `connectNow`.
   *
   * @param options transport, addresses, limits and event callbacks
   */
  constructor(options: WriterOptions) {
    this.#o = options;
    this.queue = new DropOldestQueue(options.qsize);
    this.#clock = options.clock ?? realClock;
    this.#realTimers = options.clock === undefined;
    const now = elapsedOf(options.clock);
    this.#timers = { now, after: (ms, fn) => this.#after(ms, fn) };
    this.#limiter = options.mps > 0 ? new TokenBucket(options.mps, Math.max(1, options.mps), now) : undefined;
    this.#addresses = new AddressBook(options.addresses, options.reconnect, now);
    this.#owner = {
      serverLine: (line) => options.events.serverLine(line),
      answered: (s, covers) => this.#answered(s, covers),
      silent: () => {
        this.#releaseRetained();
        options.events.progress();
      },
      waiting: () => this.#ledger.unconfirmedLines > 0,
      unanswered: () => this.#ledger.unconfirmedLines + this.#ledger.retainedLines,
      fleetAnswers: () => this.#addresses.anyAnswers,
      mayMove: (address) => !this.#stopped && this.#addresses.moveFrom(address), // no move while stopping
      ended: (s, reason, error) => this.#ended(s, reason, error),
    };
    this.#hold = new KeepAlive(
      options.lingerMs,
      now,
      () => !this.#stopped && this.pending > 0,
      (held) => {
        if (held) this.#session?.conn.ref();
        else {
          this.#session?.conn.unref();
          if (this.#sleepTimer !== undefined) unrefTimer(this.#sleepTimer);
        }
      },
    );
    this.#buffers = new BufferPool(options.batchBytes, SPARE_BUFFERS);
    const spool = options.spool;
    if (spool !== undefined) {
      this.#feed = new SpoolFeed(spool, {
        queue: this.queue,
        buffers: this.#buffers,
        limiter: this.#limiter,
        host: {
          accepted: () => this.accepted,
          stopped: () => this.#stopped,
          pumpFull: () => {
            if (this.#wake === undefined && this.#session !== undefined) this.#pump(true);
          },
        },
      });
      // Lines an earlier process left are numbered first: 0 .. recovered - 1.
      this.accepted = spool.recovered;
      // The process ends (exit, or a signal the spool handles): the writer stops for good (no
      // loop turn, reconnect or timer after this), the connection ends as at stop, through #ended
      // (kept lines are written again only where the server is expected to answer), so that no
      // late callback finds the ledger emptied; then what is pending goes to disk.
      spool.onExit(() => {
        this.#stopped = true;
        this.#stop.abort();
        this.#session?.destroy("stop");
        this.#persist(false);
        this.#hold.stop();
      });
      if (spool.unread > 0) this.#running = this.#run();
    }
  }

  /** Lines accepted but neither written nor dropped (those waiting in the spool included). */
  get pending(): number {
    return this.queue.length + this.#ledger.lines + (this.#feed?.spool.unread ?? 0);
  }

  /**
   * Lines waiting on disk, not read yet: part of `pending` (a line read from the spool is
   * counted where it is, in flight or sent, until the spool lets it go) (#20.13).
   */
  get spooled(): number {
    return this.#feed?.spool.unread ?? 0;
  }

  /** Unread lines the spool dropped because it was full. */
  get droppedSpoolFull(): number {
    return this.#feed?.spool.droppedFull ?? 0;
  }

  /** Lines dropped because the queue was full. */
  get droppedQueueFull(): number {
    return this.queue.dropped;
  }

  /** Whether a connection is open. */
  get connected(): boolean {
    return this.#session !== undefined;
  }

  /**
   * Sequence number of the oldest line not yet written or dropped; a flush
   * taken at `accepted === n` is done once this reaches `n`.
   */
  get firstPending(): number {
    return this.#ledger.firstSeq ??
      (this.#feed?.ready ? this.#feed.nextSeq : this.accepted - this.queue.length);
  }

  /**
   * Sequence number of the oldest line neither confirmed by an answer nor
   * given up on (counted unconfirmed or dropped): a `flush({ confirmed })`
   * taken at `accepted === n` is done once this reaches `n`.
   */
  get firstUnconfirmed(): number {
    const kept = this.#ledger.retainedSeq;
    const pending = this.firstPending;
    return kept !== undefined && kept < pending ? kept : pending;
  }

  /**
   * Asks for an answer to every line written, as soon as they are written,
   * rather than at the next heartbeat (for `flush({ confirmed })`).
   */
  confirmSoon(): void {
    this.#confirmWanted = true;
    this.#probeIfWanted();
  }

  /**
   * Queues one encoded line and, when a full batch is ready and the
   * connection takes it without waiting, writes it at once — so a caller's
   * long synchronous loop does not starve the writer.
   *
   * @param line a complete line ending in `\n`
   * @returns 1 when the oldest line was dropped to make room, else 0
   */
  enqueue(line: string): number {
    return this.#queued(this.queue.push(line));
  }

  /**
   * Queues the line `head + value + tail`, as {@linkcode Writer.enqueue}
   * does: what `PutEncoder.encodeTo` calls.
   *
   * @param head the line's first bytes
   * @param value ASCII text
   * @param tail the line's last bytes, ending in `\n`
   * @returns 1 when the oldest line was dropped to make room, else 0
   */
  pushLine(head: Uint8Array, value: string, tail: Uint8Array): number {
    return this.#queued(this.queue.pushLine(head, value, tail));
  }

  /**
   * Queues one line whose value is a decimal, as the queue's `pushDecimalLine` does.
   *
   * @param head the line's first bytes
   * @param scaled the value times `10 ** point`: an integer, |scaled| < 2 ** 53
   * @param point digits after the decimal point
   * @param tail the line's last bytes, ending in `\n`
   * @returns 1 when the oldest line was dropped to make room, else 0
   */
  pushDecimalLine(head: Uint8Array, scaled: number, point: number, tail: Uint8Array): number {
    return this.#queued(this.queue.pushDecimalLine(head, scaled, point, tail));
  }

  #queued(dropped: number): number {
    this.accepted++;
    // The oldest line made room: a flush that waited for it may be done.
    if (dropped !== 0) this.#o.events.progress();
    if (this.#feed?.wal) this.#feed.queued(); // to disk now, or at the end of this task
    if (this.#wake !== undefined) {
      const wake = this.#wake;
      this.#wake = undefined;
      wake();
    } else if (this.queue.bytes >= this.#o.batchBytes && this.#session !== undefined) {
      this.#pump(true);
    }
    if (this.#running === undefined) this.#running = this.#run();
    return dropped;
  }

  /**
   * Connects now (the start-up host check) and keeps the connection. Tries
   * each address once, from the one the address book picks (clients spread
   * over them) in turn; each failure is counted and cools its address down.
   *
   * @param timeoutMs connect timeout of each attempt
   * @throws {ConnectError} the last failure, when no address accepts
   */
  async connectNow(timeoutMs: number): Promise<void> {
    let failure: unknown;
    for (let i = 0; i < this.#o.addresses.length && this.#session === undefined; i++) {
      const { address } = this.#addresses.next();
      try {
        const conn = await this.#open(address, timeoutMs, true);
        if (this.#session !== undefined) conn.destroy(); // the loop connected meanwhile
        else this.#adopt(conn, address);
        failure = undefined;
      } catch (e) {
        failure = e;
        if (this.#stopped) break;
        this.#connectFailed(address, e as ConnectError);
      }
    }
    if (failure !== undefined) throw failure;
    if (this.#running === undefined) this.#running = this.#run();
  }

  /**
   * Stops the writer: no more connects; on a connection whose server
   * answers probes, a last probe confirms what was written (within the
   * deadline); the connection is ended gracefully within `timeoutMs` (then
   * destroyed), and lines still pending are dropped and counted in
   * `droppedAtClose` — or, with a spool, written to it for the next process.
   * An aborted `signal` skips the graceful end: the connection is destroyed
   * at once.
   *
   * @param timeoutMs how long the graceful end may take
   * @param signal gives up on the graceful end when aborted
   */
  async stop(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stop.abort();
    this.#wake?.();
    await this.#running;
    const s = this.#session;
    if (s !== undefined) {
      if (signal?.aborted) s.destroy("stop");
      else {
        const timeout = new AbortController();
        const cancel = this.#after(timeoutMs, () => timeout.abort(), true);
        const deadline = signal ? AbortSignal.any([timeout.signal, signal]) : timeout.signal;
        await s.confirm(deadline);
        s.lastWord();
        s.end("stop");
        await raceSignal(s.done, deadline).catch(() => s.destroy("stop"));
        cancel();
      }
      await s.done;
    }
    if (this.#feed !== undefined) this.#persist(true); // what is left goes to disk
    this.droppedAtClose += this.queue.clear() + this.#ledger.clear();
    this.#hold.stop();
    clearTimeout(this.#sleepTimer);
    this.#o.events.progress();
  }

  async #run(): Promise<void> {
    const stopped = new Promise<void>((resolve) =>
      this.#stop.signal.addEventListener("abort", () => resolve(), { once: true })
    );
    while (!this.#stopped) {
      if (this.queue.length === 0 && !this.#ledger.hasRetry && !this.#feed?.ready) {
        if (this.#ledger.unconfirmedLines === 0) this.#hold.update();
        await new Promise<void>((resolve) => this.#wake = resolve);
        this.#wake = undefined;
        continue;
      }
      this.#hold.begin();
      const s = this.#session ?? await this.#connect();
      if (s === undefined) continue;
      if (s.draining) {
        await Promise.race([s.done, stopped]); // a rebalance confirms, then ends
        continue;
      }
      const result = this.#pump();
      if (result === Pump.Blocked) {
        const ready = await Promise.race([
          s.conn.ready().then(() => true, () => false), // rejected: the connection is gone, its end requeued
          s.done.then(() => false),
          stopped.then(() => false),
        ]);
        if (ready) {
          s.liveness?.peerRead(); // backed-up bytes moved: the peer reads
          s.blocked = false;
        }
      } else if (result === Pump.RateLimited) {
        await this.#sleep(this.#limiter!.msUntil(this.#wanted()));
      }
    }
  }

  /** Tokens the next write needs: a batch to write again whole, else a share of what waits. */
  #wanted(): number {
    const retry = this.#ledger.peekRetry();
    if (retry !== undefined) return retry.count;
    const ready = this.queue.length + (this.#feed?.ready ? this.#feed.spool.unread : 0);
    return Math.max(1, Math.min(ready, Math.ceil(this.#o.mps / 100)));
  }

  /**
   * Writes batches until the connection pushes back, tokens run out or
   * nothing is left; with `fullOnly`, only while a full batch is queued.
   */
  #pump(fullOnly = false): Pump {
    const s = this.#session;
    if (s === undefined || s.draining || this.#pumping) return Pump.Idle;
    if (s.blocked) return Pump.Blocked;
    this.#pumping = true;
    try {
      const done = (error?: Error, rejected?: readonly Rejection[]) => this.#confirm(s, error, rejected);
      const limiter = this.#limiter;
      for (;;) {
        let batch = this.#ledger.peekRetry();
        if (batch !== undefined) {
          // Written again, so counted against the rate again: the whole batch or nothing.
          if (limiter !== undefined) {
            const need = Math.min(batch.count, limiter.burst);
            const got = limiter.take(batch.count);
            if (got < need) {
              limiter.giveBack(got);
              return Pump.RateLimited;
            }
          }
          this.#ledger.nextRetry();
        } else if (this.#feed !== undefined) {
          // Lines on disk are older than those queued: they go first.
          const spooled = this.#feed.read();
          if (spooled === RATE_LIMITED) return Pump.RateLimited;
          batch = spooled;
        }
        if (batch === undefined) {
          const queue = this.queue;
          if (queue.length === 0 || (fullOnly && queue.bytes < this.#o.batchBytes)) return Pump.Empty;
          let max = queue.length;
          if (limiter !== undefined) {
            max = limiter.take(max);
            if (max === 0) return Pump.RateLimited;
          }
          const seq = this.accepted - queue.length;
          const into = this.#buffers.take();
          const taken = queue.take(max, this.#o.batchBytes, into)!;
          if (taken.data.buffer !== into.buffer) this.#buffers.give(into); // a line longer than a batch
          if (limiter !== undefined && taken.count < max) limiter.giveBack(max - taken.count);
          batch = { data: taken.data, count: taken.count, seq };
        }
        // Bytes start to wait now: the stall watchdog measures from here.
        if (this.#ledger.unconfirmedLines === 0) s.liveness?.progressed();
        this.#ledger.written(batch);
        if (!s.write(batch.data, batch.seq + batch.count, done)) {
          s.blocked = true;
          return Pump.Blocked;
        }
        if (s.draining) return Pump.Idle;
      }
    } finally {
      this.#pumping = false;
    }
  }

  #confirm(s: Session, error?: Error, rejected?: readonly Rejection[]): void {
    if (s.over) return; // that connection's batches were requeued already
    if (error !== undefined) {
      s.end("error", error);
      return;
    }
    const batch = this.#ledger.confirm();
    const refused = Math.min(rejected?.length ?? 0, batch.count);
    this.sent += batch.count - refused;
    if (refused > 0) {
      this.rejected += refused;
      this.#o.events.rejected?.(rejected!);
    }
    const live = s.liveness;
    if (live === undefined) {
      // The answer came with `done` where the transport acknowledges; without liveness nothing is confirmed.
      this.#release(
        batch,
        this.#o.transport.acknowledges ? "confirmed" : "unconfirmed",
        batch.count - refused,
      );
    } else {
      if (s.blocked) live.peerRead();
      else live.progressed();
      if (!live.retaining) this.#release(batch, "unconfirmed");
      else if (live.covered >= batch.seq + batch.count) this.#release(batch, "confirmed"); // answered first
      else {
        // Kept until a probe's answer confirms it, to be written again if the connection dies first.
        this.#ledger.retain(batch);
        while (this.#ledger.retainedBytes > RETAIN_BYTES) {
          this.#release(this.#ledger.release()!, "unconfirmed");
        }
      }
    }
    this.#hold.progress();
    this.#o.events.progress();
    if (this.pending === 0) this.#hold.update();
    if (this.#confirmWanted) this.#probeIfWanted();
    s.nudge();
  }

  /** An answer confirmed the lines before `covers`. */
  #answered(s: Session, covers: number): void {
    this.#addresses.answered(s.address);
    for (
      let seq = this.#ledger.retainedSeq;
      seq !== undefined && seq < covers;
      seq = this.#ledger.retainedSeq
    ) {
      this.#release(this.#ledger.release()!, "confirmed");
    }
    this.#o.events.progress();
    if (this.#confirmWanted) this.#probeIfWanted();
  }

  /** For `confirmSoon()`: once what waits is written, a probe (one at a time) asks for its answer. */
  #probeIfWanted(): void {
    const s = this.#session;
    const live = s?.liveness;
    if (this.#ledger.retainedLines === 0 && this.#ledger.unconfirmedLines === 0 && this.queue.length === 0) {
      this.#confirmWanted = false;
      return;
    }
    if (live === undefined || !live.expectsAnswers || live.probing || s!.draining) return;
    if (this.#ledger.unconfirmedLines === 0 && this.#ledger.retainedLines > 0) s!.probe();
  }

  /** A batch leaves the ledger for good: counted, and its buffer reused. */
  #release(batch: SeqBatch, as: "confirmed" | "unconfirmed", count = batch.count): void {
    this[as] += count;
    // Delivered (written, or acknowledged where the server answers): off the disk.
    this.#feed?.delivered(batch);
    // The transport is done with the bytes: the buffer can take another batch.
    const buffer = batch.data.buffer as ArrayBuffer;
    if (buffer.byteLength === this.#buffers.size) this.#buffers.give(new Uint8Array(buffer));
  }

  /** Lets go of every retained batch, as unconfirmed. */
  #releaseRetained(): void {
    for (let b = this.#ledger.release(); b !== undefined; b = this.#ledger.release()) {
      this.#release(b, "unconfirmed");
    }
  }

  /** Every end of a connection: what `planEnd` decides is done here, and nowhere else. */
  #ended(s: Session, reason: EndReason, error: ConnectionLostError | undefined): void {
    if (this.#session === s) this.#session = undefined;
    const plan = planEnd(reason, {
      // At stop, kept lines go to the spool where the server is expected to answer (see Session).
      replays: reason === "stop" ? s.expectsAnswers : s.liveness?.replays ?? false,
      spool: this.#feed?.spool.active ?? false,
      failed: error !== undefined,
      moving: s.moving,
    });
    if (!plan.replay) this.#releaseRetained();
    // Lines in flight, and kept ones to replay, go back in front of the queue; kept ones leave `sent`.
    // Where `done` is the server's answer (HTTP), a request in flight may have been stored with its
    // answer lost: written again, it counts as replayed too.
    const inFlight = this.#o.transport.acknowledges ? this.#ledger.unconfirmedLines : 0;
    const kept = this.#ledger.requeue();
    this.sent -= kept;
    this.replayed += kept + inFlight;
    if (plan.coolDown) {
      this.#addresses.ended(s.address, {
        reason,
        lifetimeMs: this.#timers.now() - s.openedAt,
        answered: s.answered,
      });
    }
    if (plan.report && error !== undefined) {
      this.lastError = error;
      this.#o.events.disconnect(error); // a problem while stopping too: lastError always has its event
    }
    this.#o.events.progress();
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async #connect(): Promise<Session | undefined> {
    const { address, waitMs } = this.#addresses.next();
    if (waitMs > 0) {
      await this.#sleep(waitMs); // every address cools down: wait for the first to be ready
      return undefined;
    }
    try {
      const conn = await this.#open(address, this.#o.connectTimeoutMs);
      if (this.#stopped || this.#session !== undefined) {
        conn.destroy();
        return this.#session;
      }
      return this.#adopt(conn, address);
    } catch (e) {
      if (!this.#stopped) this.#connectFailed(address, e as ConnectError);
      return undefined;
    }
  }

  #connectFailed(address: Address, error: ConnectError): void {
    this.connectFailures++;
    this.lastError = error;
    this.#addresses.failed(address);
    this.#o.events.connectError(error);
  }

  #open(address: Address, timeoutMs: number, awaited = false): Promise<Connection> {
    let conn: Connection | undefined;
    const opening = openConnection(this.#o.transport, address, {
      timeoutMs,
      awaited,
      signal: this.#stop.signal,
      keepAliveMs: this.#o.keepAliveMs,
      onLine: (line) => {
        const s = this.#session;
        if (s !== undefined && s.conn === conn ? s.serverLine(line) : isAnswerLine(line)) return;
        this.#o.events.serverLine(line);
      },
      onError: (error) => {
        this.connectFailures++;
        this.lastError = error;
        if (!this.#stopped) this.#o.events.connectError(error);
      },
    });
    return opening.then((c) => conn = c);
  }

  #adopt(conn: Connection, address: Address): Session {
    const o = this.#o;
    const s = new Session(conn, address, this.#owner, {
      heartbeatMs: o.heartbeatMs,
      stallTimeoutMs: o.stallTimeoutMs,
      rebalanceMs: o.addresses.length > 1 ? o.rebalanceMs : 0,
      acknowledges: o.transport.acknowledges === true,
      // Where other addresses answer, this one is taken to answer too (a fleet of one kind of server).
      expectAnswers: this.#addresses.answers(address) || this.#addresses.anyAnswers,
      timers: this.#timers,
    });
    this.#session = s;
    if (this.#connects++ > 0) this.reconnects++;
    this.#addresses.connected(address);
    this.#hold.progress();
    if (!this.#hold.held) conn.unref();
    o.events.connect(address);
    return s;
  }

  /** Calls `fn` after `ms` on the writer's clock; `hold` keeps the process alive meanwhile. */
  #after(ms: number, fn: () => void, hold = false): () => void {
    if (this.#realTimers) {
      const timer = setTimeout(fn, ms);
      if (!hold) unrefTimer(timer);
      return () => clearTimeout(timer);
    }
    const cancel = new AbortController();
    this.#clock.sleep(ms, cancel.signal).then(() => cancel.signal.aborted || fn());
    return () => cancel.abort();
  }

  /** Pending lines go to the spool (at stop, and synchronously at process exit); kept ones leave `sent`. */
  #persist(stopping: boolean): void {
    const { replayed, lost } = this.#feed!.persist(this.#ledger, stopping);
    this.sent -= replayed;
    this.replayed += replayed;
    this.droppedAtClose += lost;
  }

  async #sleep(ms: number): Promise<void> {
    if (ms <= 0) return;
    if (!this.#realTimers) return this.#clock.sleep(ms, this.#stop.signal);
    await sleep(ms, this.#stop.signal, (timer) => {
      this.#sleepTimer = timer;
      if (!this.#hold.held) unrefTimer(timer);
    });
    this.#sleepTimer = undefined;
  }
}

/** Whether a line is part of an answer to a probe (on a connection no longer current). */
function isAnswerLine(line: string): boolean {
  return isProbeAnswer(line) || isProbeAnswerTail(line);
}
