/**
 * The client: validates and encodes points on `send()`, hands them to the
 * writer, and reports what happened through `stats()` and events.
 *
 * @module
 */

import type { BackoffOptions } from "./backoff.ts";
import {
  ClientClosedError,
  type ConnectError,
  type ConnectionLostError,
  FlushTimeoutError,
  OptionsError,
  type PotsdbError,
  ServerError,
} from "./errors.ts";
import { DEFAULT_MAX_TAGS, PutEncoder, sanitizeName, type Tags, type Timestamp, type Value } from "./put.ts";
import { autoTransport } from "./transport/auto.ts";
import type { Rejection, Transport } from "./transport/types.ts";
import { type Address, type Clock, Writer } from "./writer.ts";

/** Options of {@linkcode Client}; every one has a default. */
export interface ClientOptions {
  /** TCP port, for hosts given without one. Default 4242. */
  port?: number;
  /** Most points waiting to be written; when full the oldest is dropped. 0 = unbounded. Default 100000. */
  qsize?: number;
  /**
   * The `host` tag added to every point that has none: `true` = this
   * machine's hostname, a string = that name, `false`/`null` = none. Default true.
   */
  hostTag?: boolean | string | null;
  /** Most metrics written per second (token bucket, bursts up to one second's worth). 0 = unlimited. Default 0. */
  mps?: number;
  /** Most tags per point, host tag included (OpenTSDB's `tsd.storage.max_tags`). Default 8. */
  maxTags?: number;
  /** Replace invalid characters with `_` and drop empty tags instead of throwing. Default false. */
  sanitize?: boolean;
  /** Default timestamps (and Dates) in milliseconds instead of seconds. Default false. */
  milliseconds?: boolean;
  /** How to reach the server. Default: `autoTransport` (Deno, Bun or Node sockets). */
  transport?: Transport;
  /** Longest wait for one connection attempt, in ms. Default 5000. */
  connectTimeoutMs?: number;
  /** How long `close()` may take to deliver what is queued, in ms. Default 10000. */
  closeTimeoutMs?: number;
  /**
   * How long, in ms, pending points may keep the process alive without any
   * progress (a script that ends without `close()` against a dead server
   * exits after this). Default 2000.
   */
  lingerMs?: number;
  /** Largest single write in bytes (lines are coalesced up to it). Default 65536. */
  batchBytes?: number;
  /** Reconnect backoff: `initialMs` (100), `maxMs` (30000), `factor` (2); jittered. */
  reconnect?: BackoffOptions;
  /** Closes the client (as `close()`) when aborted. */
  signal?: AbortSignal;
  /** Time source for timestamps, the rate limit and its sleeps (tests). */
  clock?: Clock;
}

/** Options of {@linkcode Client.connect}. */
export interface ConnectOptions extends ClientOptions {
  /** Connect timeout of the start-up check, in ms. Default 3000 (potsdb's). */
  timeoutMs?: number;
  /** Set to false to skip the start-up check. Default true. */
  checkHost?: boolean;
}

/** Options of one `send()`. */
export interface SendOptions {
  /** Seconds or milliseconds since the epoch, or a Date. Default: now. */
  timestamp?: Timestamp;
}

/** Options of `flush()` and `close()`. */
export interface FlushOptions {
  /** Deadline in ms. Default: the client's `closeTimeoutMs`. */
  timeoutMs?: number;
  /** Gives up early when aborted. */
  signal?: AbortSignal;
}

/** A point-in-time account of a client. `accepted = sent + dropped.total + queued`. */
export interface ClientStats {
  /** Points `send()` accepted. */
  accepted: number;
  /** Points written to the OS (and so on their way to the server). */
  sent: number;
  /** Points waiting: queued, being written, or to be retried. */
  queued: number;
  /** Points given up on, by reason. */
  dropped: {
    /** The queue was full and these were the oldest. */
    queueFull: number;
    /** Still waiting when `close()`'s deadline passed. */
    closed: number;
    /** Refused by the server for good (HTTP `/api/put` errors); not retried. */
    rejected: number;
    /** Sum of the above. */
    total: number;
  };
  /** Successful connections after the first. */
  reconnects: number;
  /** Failed connection attempts. */
  connectFailures: number;
  /** Lines the server sent back (OpenTSDB's `put: …` errors). */
  serverErrors: number;
  /** Event listeners that threw (their errors are caught so the writer goes on). */
  listenerErrors: number;
  /** Whether a connection is open now. */
  connected: boolean;
  /** The most recent problem, if any. */
  lastError: PotsdbError | undefined;
}

/** The `detail` of a `drop` event. */
export interface DropDetail {
  /** Points dropped since the previous `drop` event. */
  count: number;
  /** Why. */
  reason: "queueFull" | "closed" | "rejected";
  /** For `rejected`: each refused point with the server's reason. */
  rejections?: readonly Rejection[];
}

/**
 * Events: `connect` (detail: the {@linkcode Address}), `disconnect`
 * (detail: {@linkcode ConnectionLostError}), `error` (detail: a
 * {@linkcode ConnectError}, one per failed attempt or failed request),
 * `server-error` (detail: {@linkcode ServerError}), `drop` (detail:
 * {@linkcode DropDetail}; for a full queue at most one per second while
 * dropping, for points the server refused one per answer that refused any).
 */
export type ClientEventType = "connect" | "disconnect" | "error" | "server-error" | "drop";

const DROP_EVENT_INTERVAL_MS = 1000;

/**
 * A fire-and-forget OpenTSDB client. `send()` validates and queues a point
 * and returns at once; a background writer delivers the queue over one TCP
 * connection, reconnecting forever. Nothing is lost without being counted in
 * {@linkcode Client.stats}.
 *
 * @example
 * ```ts
 * import { Client } from "@x/potsdb";
 *
 * const metrics = new Client("localhost", { port: 4242 });
 * metrics.send("sys.cpu.user", 42.5, { cpu: "0" });
 * metrics.send("app.requests", 1, { route: "home", host: "web1" }); // this host tag wins
 * metrics.send("app.latency", 12, { route: "home" }, { timestamp: new Date() });
 * const stats = await metrics.close(); // delivers what is queued, within closeTimeoutMs
 * console.log(stats.sent, stats.dropped.total);
 * ```
 */
export class Client extends EventTarget {
  readonly #writer: Writer;
  readonly #encoder: PutEncoder;
  readonly #now: () => number;
  readonly #transport: Transport;
  readonly #closeTimeoutMs: number;
  #closing: Promise<ClientStats> | undefined;
  #serverErrors = 0;
  #listenerErrors = 0;
  #lastError: PotsdbError | undefined;
  #waiters: { target: number; resolve: () => void }[] = [];
  #dropPending = 0;
  #dropTimer: ReturnType<typeof setTimeout> | undefined;
  #listeners = new WeakMap<object, EventListener>();

  /**
   * Makes a client; no connection is made until there is something to send.
   *
   * @param host `host`, `host:port`, `[v6]:port`, or several of them for failover
   * @param options see {@linkcode ClientOptions}
   * @throws {OptionsError} for an option that cannot work
   */
  constructor(host: string | readonly string[], options: ClientOptions = {}) {
    super();
    const port = options.port ?? 4242;
    checkInteger("port", port, 1, 65535);
    const qsize = options.qsize ?? 100_000;
    checkInteger("qsize", qsize, 0);
    const mps = options.mps ?? 0;
    if (!(mps >= 0) || !Number.isFinite(mps)) throw new OptionsError(`mps must be >= 0, got ${mps}`);
    const maxTags = options.maxTags ?? DEFAULT_MAX_TAGS;
    checkInteger("maxTags", maxTags, 1);
    const batchBytes = options.batchBytes ?? 65536;
    checkInteger("batchBytes", batchBytes, 1024);
    const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    checkInteger("connectTimeoutMs", connectTimeoutMs, 1);
    this.#closeTimeoutMs = options.closeTimeoutMs ?? 10_000;
    checkInteger("closeTimeoutMs", this.#closeTimeoutMs, 0);
    const lingerMs = options.lingerMs ?? 2000;
    checkInteger("lingerMs", lingerMs, 0);
    const transport = options.transport ?? autoTransport;
    const addresses = parseAddresses(host, port);
    this.#transport = transport;

    const hostTag = options.hostTag === undefined ? true : options.hostTag;
    let tagHost: string | undefined;
    if (typeof hostTag === "string") tagHost = hostTag;
    else if (hostTag === true) {
      const name = transport.hostname?.();
      if (!name) {
        throw new OptionsError(
          `hostTag: true needs this machine's hostname, which the ${transport.name} transport ` +
            "cannot tell: pass hostTag as a string, or false",
        );
      }
      tagHost = sanitizeName(name);
    } else if (hostTag !== false && hostTag !== null) {
      throw new OptionsError("hostTag must be true, false, null or a string");
    }
    try {
      this.#encoder = new PutEncoder({
        maxTags,
        sanitize: options.sanitize,
        host: tagHost,
        milliseconds: options.milliseconds,
      });
    } catch (e) {
      throw new OptionsError(`hostTag: ${(e as Error).message}`);
    }
    const clock = options.clock;
    this.#now = clock ? () => clock.now() : Date.now;
    this.#writer = new Writer({
      transport,
      addresses,
      qsize,
      mps,
      batchBytes,
      connectTimeoutMs,
      lingerMs,
      reconnect: options.reconnect,
      clock,
      events: {
        connect: (address) => this.#emit("connect", address),
        disconnect: (error) => this.#emit("disconnect", error),
        connectError: (error) => {
          this.#lastError = error;
          this.#emit("error", error);
        },
        serverLine: (line) => {
          this.#serverErrors++;
          const error = new ServerError(line);
          this.#lastError = error;
          this.#emit("server-error", error);
        },
        progress: () => this.#settleWaiters(),
        rejected: (rejections) =>
          this.#emit(
            "drop",
            { count: rejections.length, reason: "rejected", rejections } satisfies DropDetail,
          ),
      },
    });
    const signal = options.signal;
    if (signal) {
      if (signal.aborted) this.close();
      else signal.addEventListener("abort", () => this.close(), { once: true });
    }
  }

  /**
   * Makes a client and checks at once that the server accepts connections,
   * like potsdb's `check_host`. The connection is kept for sending.
   *
   * @param host as for the constructor
   * @param options client options, plus `timeoutMs` (3000) and `checkHost` (true)
   * @returns the connected client
   * @throws {ConnectError} `CONNECT_TIMEOUT` or `CONNECT_FAILED`
   *
   * @example
   * ```ts
   * import { Client, ConnectError } from "@x/potsdb";
   *
   * try {
   *   const metrics = await Client.connect("127.0.0.1", { port: 1, timeoutMs: 1000 });
   *   await metrics.close();
   * } catch (e) {
   *   if (e instanceof ConnectError) console.log(e.code, e.address);
   * }
   * ```
   */
  static async connect(host: string | readonly string[], options: ConnectOptions = {}): Promise<Client> {
    const client = new Client(host, options);
    if (options.checkHost === false) return client;
    const timeoutMs = options.timeoutMs ?? 3000;
    checkInteger("timeoutMs", timeoutMs, 1);
    try {
      await client.#writer.connectNow(timeoutMs);
    } catch (e) {
      await client.close({ timeoutMs: 0 });
      throw e;
    }
    return client;
  }

  /**
   * Queues one point and returns at once; never waits and never fails for
   * network trouble. When the queue is full the oldest point is dropped (and
   * counted, and reported by a `drop` event).
   *
   * @param metric metric name
   * @param value a finite number, or a bigint within int64
   * @param tags tags of this point (1 to `maxTags`, host tag included); a `host` tag here wins
   * @param options the timestamp (seconds, milliseconds or a Date; default now), or the timestamp itself
   * @throws {ValidationError} for input OpenTSDB would reject; nothing is queued
   * @throws {ClientClosedError} after `close()`
   *
   * @example
   * ```ts
   * import { Client } from "@x/potsdb";
   *
   * const metrics = new Client("localhost", { hostTag: "web1" });
   * metrics.send("http.requests", 1, { route: "home", status: 200 });
   * metrics.send("http.latency", 12.5, { route: "home" }, 1700000000);
   * await metrics.close();
   * ```
   */
  send(metric: string, value: Value, tags?: Tags, options?: SendOptions | Timestamp): void {
    if (this.#closing !== undefined) throw new ClientClosedError();
    // Only a plain object is `{ timestamp }`; anything else is the timestamp itself, so a
    // wrong type (a string, null) reaches the encoder and gets its typed error.
    const timestamp = typeof options === "object" && options !== null && !(options instanceof Date)
      ? options.timestamp
      : options;
    // The clock is read only when the point has no timestamp of its own.
    const dropped = this.#encoder.encodeTo(
      this.#writer,
      metric,
      value,
      tags,
      timestamp,
      timestamp === undefined ? this.#now() : undefined,
    );
    if (dropped !== 0) this.#dropped(1);
  }

  /**
   * Resolves once every point queued before the call has been written to
   * the OS (or dropped and counted).
   *
   * @param options deadline (default `closeTimeoutMs`) and abort signal
   * @throws {FlushTimeoutError} when the deadline passes first; the points stay queued
   * @throws {ClientClosedError} after `close()`
   *
   * @example
   * ```ts
   * import { Client } from "@x/potsdb";
   *
   * const metrics = new Client("localhost");
   * metrics.send("job.done", 1, { job: "nightly" });
   * await metrics.flush({ timeoutMs: 5000 }).catch(() => {});
   * await metrics.close();
   * ```
   */
  flush(options: FlushOptions = {}): Promise<void> {
    if (this.#closing !== undefined) return Promise.reject(new ClientClosedError());
    return this.#flush(options.timeoutMs ?? this.#closeTimeoutMs, options.signal);
  }

  #flush(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const target = this.#writer.accepted;
    if (this.#writer.firstPending >= target) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = { target, resolve: () => finish() };
      const timer = setTimeout(
        () => finish(new FlushTimeoutError(this.#writer.pending, timeoutMs)),
        timeoutMs,
      );
      const onAbort = () => finish(signal!.reason);
      const finish = (error?: unknown) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        if (error === undefined) resolve();
        else reject(error);
      };
      this.#waiters.push(waiter);
      if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  #settleWaiters(): void {
    if (this.#waiters.length === 0) return;
    const first = this.#writer.firstPending;
    for (const w of this.#waiters.slice()) if (first >= w.target) w.resolve();
  }

  /**
   * Stops accepting points, delivers what is queued within the deadline,
   * closes the connection and resolves with the final stats. Points still
   * waiting at the deadline are dropped and counted as `dropped.closed`.
   * Never hangs on a dead server. Calling it again returns the same promise.
   *
   * @param options deadline in ms (default `closeTimeoutMs`)
   * @returns the final stats
   *
   * @example
   * ```ts
   * import { Client } from "@x/potsdb";
   *
   * const metrics = new Client("localhost");
   * metrics.send("job.done", 1, { job: "nightly" });
   * const stats = await metrics.close({ timeoutMs: 2000 });
   * console.log(`${stats.sent} sent, ${stats.dropped.total} dropped`);
   * ```
   */
  close(options: FlushOptions = {}): Promise<ClientStats> {
    this.#closing ??= this.#close(options.timeoutMs ?? this.#closeTimeoutMs, options.signal);
    return this.#closing;
  }

  async #close(timeoutMs: number, signal?: AbortSignal): Promise<ClientStats> {
    const start = Date.now();
    await this.#flush(timeoutMs, signal).catch(() => {});
    const before = this.#writer.droppedAtClose;
    await this.#writer.stop(Math.max(0, timeoutMs - (Date.now() - start)));
    const lost = this.#writer.droppedAtClose - before;
    if (lost > 0) this.#emit("drop", { count: lost, reason: "closed" } satisfies DropDetail);
    clearTimeout(this.#dropTimer);
    this.#flushDropEvent();
    for (const w of this.#waiters.slice()) w.resolve();
    return this.stats();
  }

  /**
   * potsdb's `wait()`: delivers what is queued and ends the writer. Unlike
   * potsdb's it has a deadline, so it never hangs on a dead server.
   *
   * @param options deadline in ms (default `closeTimeoutMs`)
   * @returns the final stats
   */
  wait(options?: FlushOptions): Promise<ClientStats> {
    return this.close(options);
  }

  /** `await using client = new Client(…)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close().then(() => {});
  }

  /**
   * What happened so far.
   *
   * @returns a fresh snapshot
   *
   * @example
   * ```ts
   * import { Client } from "@x/potsdb";
   *
   * const metrics = new Client("localhost");
   * const { accepted, sent, queued, dropped } = metrics.stats();
   * console.assert(accepted === sent + queued + dropped.total);
   * await metrics.close();
   * ```
   */
  stats(): ClientStats {
    const w = this.#writer;
    const queueFull = w.droppedQueueFull;
    const closed = w.droppedAtClose;
    const rejected = w.rejected;
    return {
      accepted: w.accepted,
      sent: w.sent,
      queued: w.pending,
      dropped: { queueFull, closed, rejected, total: queueFull + closed + rejected },
      reconnects: w.reconnects,
      connectFailures: w.connectFailures,
      serverErrors: this.#serverErrors,
      listenerErrors: this.#listenerErrors,
      connected: w.connected,
      lastError: this.#lastError ?? w.lastError,
    };
  }

  /** Whether `close()` has been called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Like `EventTarget.addEventListener`, except that a listener that throws
   * (or rejects) is counted in `stats().listenerErrors` instead of reaching
   * the runtime's uncaught-error handler: a metrics client must not crash
   * its host.
   */
  override addEventListener(
    type: ClientEventType | (string & Record<never, never>),
    listener: EventListenerOrEventListenerObject | null,
    options?: AddEventListenerOptions | boolean,
  ): void {
    if (listener === null) return;
    let wrapped = this.#listeners.get(listener);
    if (wrapped === undefined) {
      wrapped = (event: Event) => {
        try {
          const result: unknown = typeof listener === "function"
            ? listener.call(this, event)
            : listener.handleEvent(event);
          if (result instanceof Promise) result.catch(() => this.#listenerErrors++);
        } catch {
          this.#listenerErrors++;
        }
      };
      this.#listeners.set(listener, wrapped);
    }
    super.addEventListener(type, wrapped, options);
  }

  /** Removes a listener added with {@linkcode Client.addEventListener}. */
  override removeEventListener(
    type: ClientEventType | (string & Record<never, never>),
    listener: EventListenerOrEventListenerObject | null,
    options?: EventListenerOptions | boolean,
  ): void {
    if (listener === null) return;
    super.removeEventListener(type, this.#listeners.get(listener) ?? listener, options);
  }

  #emit(type: ClientEventType, detail: unknown): void {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  #dropped(n: number): void {
    this.#dropPending += n;
    if (this.#dropTimer !== undefined) return;
    // One event now-ish with the storm's first count, then at most one per interval.
    this.#dropTimer = setTimeout(() => {
      this.#dropTimer = undefined;
      this.#flushDropEvent();
    }, 0);
    this.#unrefTimer(this.#dropTimer);
  }

  #unrefTimer(timer: ReturnType<typeof setTimeout>): void {
    if (this.#transport.unrefTimer) this.#transport.unrefTimer(timer);
    else (timer as { unref?: () => void }).unref?.();
  }

  #flushDropEvent(): void {
    const count = this.#dropPending;
    if (count === 0) return;
    this.#dropPending = 0;
    this.#emit("drop", { count, reason: "queueFull" } satisfies DropDetail);
    // Hold back the next event for the interval.
    this.#dropTimer = setTimeout(() => {
      this.#dropTimer = undefined;
      this.#flushDropEvent();
    }, DROP_EVENT_INTERVAL_MS);
    this.#unrefTimer(this.#dropTimer);
  }
}

function checkInteger(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new OptionsError(`${name} must be an integer in ${min}..${max}, got ${value}`);
  }
}

function parseAddresses(host: string | readonly string[], port: number): Address[] {
  const hosts = typeof host === "string" ? [host] : host;
  if (hosts.length === 0) throw new OptionsError("at least one host is needed");
  return hosts.map((h) => {
    if (typeof h !== "string" || h === "") throw new OptionsError(`host must be a non-empty string`);
    const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(h);
    if (v6) return { host: v6[1], port: v6[2] ? toPort(v6[2], h) : port };
    const hp = /^([^:]+):(\d+)$/.exec(h);
    if (hp) return { host: hp[1], port: toPort(hp[2], h) };
    return { host: h, port };
  });
}

function toPort(s: string, where: string): number {
  const port = Number(s);
  if (!(port >= 1 && port <= 65535)) throw new OptionsError(`bad port in ${JSON.stringify(where)}`);
  return port;
}

export type { Address, Clock, ConnectError, ConnectionLostError };
