/**
 * The client: validates and encodes points on `send()`, hands them to the
 * writer, and reports what happened through `stats()` and events.
 *
 * @module
 */

import {
  ClientClosedError,
  type ConnectError,
  type ConnectionLostError,
  FlushTimeoutError,
  type PotsdbError,
  ServerError,
  type SpoolError,
} from "./errors.ts";
import { type ClientOptions, integer, resolveOptions } from "./options.ts";
import { PutEncoder, type Tags, type Timestamp, type Value } from "./put.ts";
import { sleep } from "./backoff.ts";
import { raceSignal, unrefTimer } from "./runtime.ts";
import type { Rejection } from "./transport/types.ts";
import { spoolFactory } from "./spool/default.ts";
import type { Spool } from "./spool/types.ts";
import { type Address, type Clock, Writer } from "./writer.ts";
import type { Counter, Gauge } from "./meters.ts";
import type { Histogram, HistogramOptions } from "./histogram.ts";
import { MeterRegistry, type MeterStats } from "./meter_registry.ts";

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
  /**
   * `flush()` only: wait also for the server's answer to a `version` probe
   * confirming the points (OpenTSDB, InfluxDB), not only for them to be
   * written. Where the server does not answer (VictoriaMetrics) it resolves
   * once that is known; check `stats().confirmed` and `unconfirmed`.
   */
  confirmed?: boolean;
}

/**
 * A point-in-time account of a client. `accepted = sent + dropped.total + queued`;
 * points in the spool are part of `queued`, and the client's own points
 * (`selfMetricsMs`) are counted like any other.
 */
export interface ClientStats {
  /**
   * Points `send()` accepted (duplicates and the client's own points included), plus those
   * found in the spool at start (left by an earlier process).
   */
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
    /** Dropped from the spool, the oldest segment at a time, because it reached `maxBytes`. */
    spoolFull: number;
    /** Duplicates of a point already taken (see the `dedup` option); never queued. */
    duplicate: number;
    /** Sum of the above. */
    total: number;
  };
  /**
   * Points an answer of the server confirmed: over telnet, an answer to a
   * `version` probe (OpenTSDB) covering them; over HTTP, the server's answer.
   */
  confirmed: number;
  /** Points written again because their connection died before the server acknowledged them (at-least-once). */
  replayed: number;
  /**
   * Points written with no confirmation possible: the server does not answer
   * probes (VictoriaMetrics), probing is off, or they were let go beyond the
   * 8 MiB kept for replay. A connection that dies may lose some of these.
   */
  unconfirmed: number;
  /** The client's own points (`selfMetricsMs`). */
  selfMetrics: {
    /** Points queued (included in `accepted`). */
    points: number;
    /** Rounds skipped because the queue had no room: they never displace the caller's points. */
    skippedRounds: number;
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
  /**
   * Points waiting on disk in the spool, not read yet (part of `queued`); 0 without a spool.
   * A point read from the spool counts as queued until it is written, then as sent.
   */
  spooled: number;
  /** The spool's state, when the `spool` option is set. */
  spool?: SpoolStats;
  /** The meters' account: see {@linkcode Client.counter}. */
  meters: MeterStats;
}

/** What {@linkcode ClientStats.spool} tells. */
export interface SpoolStats {
  /** Whether it works: false after an I/O error, when the client went on memory-only. */
  active: boolean;
  /** Points found on disk at start, left by an earlier process (counted in `accepted`). */
  recovered: number;
  /** Torn or corrupt segment tails cut off at start (never replayed). */
  corruptTails: number;
  /** Bytes cut off with them. */
  corruptBytes: number;
}

/** The `detail` of a `drop` event. */
export interface DropDetail {
  /** Points dropped since the previous `drop` event. */
  count: number;
  /** Why. */
  reason: "queueFull" | "closed" | "rejected" | "duplicate";
  /** For `rejected`: each refused point with the server's reason. */
  rejections?: readonly Rejection[];
}

/**
 * The events a {@linkcode Client} dispatches, each a `CustomEvent` with a
 * typed `detail`.
 *
 * @example
 * ```ts
 * import { Client } from "@x/potsdb";
 *
 * const metrics = new Client("localhost");
 * metrics.addEventListener("drop", (e) => console.warn(`${e.detail.count} dropped: ${e.detail.reason}`));
 * metrics.addEventListener("error", (e) => console.warn(e.detail.code, e.detail.message));
 * await metrics.close();
 * ```
 */
export interface ClientEventMap {
  /** A connection was opened, to this address. */
  connect: CustomEvent<Address>;
  /** The open connection ended; its unconfirmed points are written again on the next one. */
  disconnect: CustomEvent<ConnectionLostError>;
  /**
   * A connection attempt (or an HTTP request) failed, one event per failure;
   * or the spool failed (a {@linkcode SpoolError}: the client goes on memory-only).
   */
  error: CustomEvent<ConnectError | SpoolError>;
  /** The server sent a line (OpenTSDB's `put: …` errors). */
  "server-error": CustomEvent<ServerError>;
  /**
   * Points were dropped: for a full queue and for duplicates at most one event
   * a second (each) while dropping, for points the server refused one per
   * answer that refused any.
   */
  drop: CustomEvent<DropDetail>;
}

/** The name of a {@linkcode Client} event. */
export type ClientEventType = keyof ClientEventMap;

const DROP_EVENT_INTERVAL_MS = 1000;

/**
 * Tells the developer, once per client, that `dedup` dropped a point: the first thing a new
 * user writes (a `send()` per request) loses all but one point per series and second, and
 * counters alone would tell nobody. Through `process.emitWarning` where there is one (Node,
 * Deno, Bun: `--no-warnings` silences it), reached through `globalThis` so that the core
 * names no runtime; `console.warn` elsewhere.
 */
function warnFirstDuplicate(metric: string): void {
  const message =
    `potsdb dropped a point of ${JSON.stringify(metric)} as a duplicate: with the dedup option ` +
    "(on by default, as potsdb) only the first point per metric, tags and second is sent. To count or time " +
    "events (a send() per request), use the meters: client.counter(), client.gauge() and client.histogram() " +
    "aggregate in memory and report on an interval. Each duplicate is counted in " +
    'stats().dropped.duplicate and reported by the "drop" event (reason "duplicate"); this warning is shown ' +
    "once per client.";
  try {
    const host = (globalThis as { process?: { emitWarning?: unknown } }).process;
    if (typeof host?.emitWarning === "function") {
      host.emitWarning(message, { type: "PotsdbWarning", code: "POTSDB_DUPLICATE" });
    } else console.warn(`PotsdbWarning: ${message}`);
  } catch {
    // A warning must never make send() throw.
  }
}

/** A listener, typed for one event or not. */
type AnyListener = ((event: never) => unknown) | EventListenerObject | null;

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
  readonly #spool: Spool | undefined;
  readonly #encoder: PutEncoder;
  readonly #now: () => number;
  readonly #closeTimeoutMs: number;
  readonly #meters: MeterRegistry;
  readonly #tagBudget: Client["tagBudget"];
  #closing: Promise<ClientStats> | undefined;
  #serverErrors = 0;
  #listenerErrors = 0;
  /** Pending flushes: each one's resolve, the sequence number it waits for, and whether for answers. */
  readonly #waiters = new Map<() => void, { target: number; confirmed: boolean }>();
  #dropPending = 0;
  #duplicates = 0;
  #duplicatePending = 0;
  #dropTimer: ReturnType<typeof setTimeout> | undefined;
  #selfPoints = 0;
  #selfSkipped = 0;
  readonly #selfStop = new AbortController();
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
    const o = resolveOptions(host, options);
    this.#closeTimeoutMs = o.closeTimeoutMs;
    this.#encoder = new PutEncoder(o.encoder); // checked by resolveOptions
    this.#tagBudget = Object.freeze({
      maxTags: o.encoder.maxTags!,
      hostTag: o.encoder.host !== undefined,
      defaultTagKeys: Object.freeze(this.#encoder.defaultTagKeys),
    });
    const clock = o.clock;
    this.#now = clock ? () => clock.now() : Date.now;
    // The spool's failures reach listeners added after the constructor: reported a task later.
    this.#spool = o.spool && spoolFactory()!(o.spool, (error) =>
      queueMicrotask(() => {
        this.#writer.lastError = error;
        this.#emit("error", error);
      }));
    this.#writer = new Writer({
      ...o,
      spool: this.#spool,
      events: {
        connect: (address) => this.#emit("connect", address),
        disconnect: (error) => this.#emit("disconnect", error),
        connectError: (error) => this.#emit("error", error),
        serverLine: (line) => {
          this.#serverErrors++;
          const error = new ServerError(line);
          this.#writer.lastError = error;
          this.#emit("server-error", error);
        },
        progress: () => this.#settleWaiters(),
        rejected: (rejections) =>
          this.#emit("drop", { count: rejections.length, reason: "rejected", rejections }),
      },
    });
    if (o.selfMetricsMs > 0) this.#selfMetricsLoop(o.selfMetricsMs, clock);
    this.#meters = new MeterRegistry({
      reportMs: options.reportMs, // checked by the registry, as maxMeters
      maxMeters: options.maxMeters,
      encoder: o.encoder,
      sink: this.#writer,
      now: this.#now,
      clock,
      dropped: (count) => {
        this.#dropPending += count;
        this.#dropped();
      },
    });
    const signal = options.signal;
    if (signal) {
      if (signal.aborted) this.close();
      // Taken off the signal when the client is closed: an app-wide signal must not hold every
      // client ever closed (and Node warns past 10 listeners).
      else {
        signal.addEventListener("abort", () => this.close(), { once: true, signal: this.#selfStop.signal });
      }
    }
  }

  /**
   * Makes a client and checks at once that the server accepts connections,
   * like potsdb's `check_host`. The connection is kept for sending.
   *
   * With several addresses any one that accepts will do: each is tried once,
   * `timeoutMs` each, from this client's starting address (clients made in
   * one process take successive addresses of the list, from a random start,
   * so that a fleet spreads) on through the list as given, wrapping around;
   * an address that refuses cools down as it would in the writer.
   *
   * @param host as for the constructor
   * @param options client options, plus `timeoutMs` (3000, per address) and `checkHost` (true)
   * @returns the connected client
   * @throws {ConnectError} `CONNECT_TIMEOUT` or `CONNECT_FAILED`, of the last address tried, when none accepted
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
    const timeoutMs = integer("timeoutMs", options.timeoutMs ?? 3000, 1);
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
   * @param tags tags of this point (1 to `maxTags`, host tag included), as an object (own keys only), a
   * `Map` or `[key, value]` pairs; a `host` tag here wins
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
    if (dropped !== 0) {
      if (dropped === 1) this.#dropPending++;
      else {
        if (this.#duplicates++ === 0) warnFirstDuplicate(metric);
        this.#duplicatePending++;
      }
      this.#dropped();
    }
  }

  // ---- Meters (src/meter_registry.ts) ----

  /**
   * The counter of this name and tags, made on first use (later calls return
   * the same one). `inc()` costs a few nanoseconds; each report (every
   * `reportMs`, on `flush()` and `close()`) writes its total since it was
   * made: cumulative, for OpenTSDB's `rate`. Keep the handle where you can;
   * looking it up again costs about what a `send()` does.
   *
   * @param name metric name
   * @param tags its tags, as for `send()`
   * @returns the counter; past `maxMeters` meters, one that is never reported (counted in `stats().meters.overflow`)
   * @throws {ValidationError} for a name or tags OpenTSDB would reject, or a series that is another kind of meter
   * @throws {ClientClosedError} after `close()`
   *
   * @example
   * ```ts
   * import { Client } from "@x/potsdb";
   *
   * const metrics = new Client("localhost");
   * const ok = metrics.counter("http.requests", { route: "home", status: 200 });
   * ok.inc(); // per request
   * await metrics.close(); // reports it once more
   * ```
   */
  counter(name: string, tags?: Tags): Counter {
    if (this.#closing !== undefined) throw new ClientClosedError();
    return this.#meters.counter(name, tags);
  }

  /**
   * The gauge of this name and tags, made on first use: each report writes
   * the last value set.
   *
   * @param name metric name
   * @param tags its tags, as for `send()`
   * @returns the gauge (as for `counter()` past `maxMeters`)
   * @throws {ValidationError} as for `counter()`
   * @throws {ClientClosedError} after `close()`
   *
   * @example
   * ```ts
   * import { Client } from "@x/potsdb";
   *
   * const metrics = new Client("localhost");
   * metrics.gauge("jobs.queued", { queue: "mail" }).set(12);
   * await metrics.close();
   * ```
   */
  gauge(name: string, tags?: Tags): Gauge {
    if (this.#closing !== undefined) throw new ClientClosedError();
    return this.#meters.gauge(name, tags);
  }

  /**
   * The histogram of this name and tags, made on first use: each report
   * writes `<name>.count`, `.sum`, `.min`, `.max` and one `.bucket` per bound
   * with an `le` tag, as the OpenTelemetry exporter does.
   *
   * @param name metric name
   * @param tags its tags, as for `send()` (one fewer: `le` is added)
   * @param options `buckets`: increasing upper bounds, fixed when it is made (default OpenTelemetry's, in ms)
   * @returns the histogram (as for `counter()` past `maxMeters`)
   * @throws {ValidationError} as for `counter()`
   * @throws {OptionsError} for buckets that are not increasing finite numbers, or not those it was made with
   * @throws {ClientClosedError} after `close()`
   *
   * @example
   * ```ts
   * import { Client } from "@x/potsdb";
   *
   * const metrics = new Client("localhost");
   * const latency = metrics.histogram("http.latency", { route: "home" });
   * const stop = latency.startTimer();
   * stop(); // records the milliseconds since startTimer()
   * await metrics.close();
   * ```
   */
  histogram(name: string, tags?: Tags, options?: HistogramOptions): Histogram {
    if (this.#closing !== undefined) throw new ClientClosedError();
    return this.#meters.histogram(name, tags, options);
  }

  // ---- end of meters ----

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
    // The meters' report, unless it waits for the next second (its own timestamp): then after it.
    const report = this.#meters.report();
    if (report !== undefined) {
      return report.then(() => this.#flush(options.timeoutMs ?? this.#closeTimeoutMs, options.signal));
    }
    return this.#flush(options.timeoutMs ?? this.#closeTimeoutMs, options.signal, options.confirmed === true);
  }

  #flush(timeoutMs: number, signal?: AbortSignal, confirmed = false): Promise<void> {
    const target = this.#writer.accepted;
    if (confirmed) this.#writer.confirmSoon();
    if ((confirmed ? this.#writer.firstUnconfirmed : this.#writer.firstPending) >= target) {
      return Promise.resolve();
    }
    let waiter!: () => void;
    const settled = new Promise<void>((resolve) => waiter = resolve);
    this.#waiters.set(waiter, { target, confirmed });
    const timeout = new AbortController();
    const timer = setTimeout(
      // The points this flush covers, not those queued after it.
      () => timeout.abort(new FlushTimeoutError(target - this.#writer.firstPending, timeoutMs)),
      timeoutMs,
    );
    return raceSignal(settled, signal ? AbortSignal.any([timeout.signal, signal]) : timeout.signal)
      .finally(() => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
      });
  }

  #settleWaiters(): void {
    if (this.#waiters.size === 0) return;
    const w = this.#writer;
    for (const [resolve, { target, confirmed }] of this.#waiters) {
      if ((confirmed ? w.firstUnconfirmed : w.firstPending) >= target) resolve();
    }
  }

  /**
   * Stops accepting points, delivers what is queued within the deadline,
   * closes the connection and resolves with the final stats. Points still
   * waiting at the deadline are dropped and counted as `dropped.closed`.
   * Never hangs on a dead server. Calling it again returns the same promise.
   *
   * @param options deadline in ms (default `closeTimeoutMs`); an aborted
   * `signal` gives up at once: what is left is dropped and counted, and the
   * connection is destroyed
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
    this.#meters.close(); // their last report
    await this.#flush(timeoutMs, signal).catch(() => {});
    const before = this.#writer.droppedAtClose;
    await this.#writer.stop(Math.max(0, timeoutMs - (Date.now() - start)), signal);
    const lost = this.#writer.droppedAtClose - before;
    if (lost > 0) this.#emit("drop", { count: lost, reason: "closed" });
    this.#selfStop.abort();
    clearTimeout(this.#dropTimer);
    this.#flushDropEvent();
    // The last drop event went out now: no timer for a next one outlives the client.
    clearTimeout(this.#dropTimer);
    this.#dropTimer = undefined;
    for (const resolve of this.#waiters.keys()) resolve();
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
    const spoolFull = w.droppedSpoolFull;
    const spool = this.#spool;
    const duplicate = this.#duplicates;
    return {
      accepted: w.accepted + duplicate,
      sent: w.sent,
      queued: w.pending,
      dropped: {
        queueFull,
        closed,
        rejected,
        spoolFull,
        duplicate,
        total: queueFull + closed + rejected + spoolFull + duplicate,
      },
      confirmed: w.confirmed,
      replayed: w.replayed,
      unconfirmed: w.unconfirmed,
      selfMetrics: { points: this.#selfPoints, skippedRounds: this.#selfSkipped },
      reconnects: w.reconnects,
      connectFailures: w.connectFailures,
      serverErrors: this.#serverErrors,
      listenerErrors: this.#listenerErrors,
      meters: this.#meters.stats(),
      connected: w.connected,
      lastError: w.lastError,
      spooled: w.spooled,
      ...(spool && {
        spool: {
          active: spool.active,
          recovered: spool.recovered,
          corruptTails: spool.corruptTails,
          corruptBytes: spool.corruptBytes,
        },
      }),
    };
  }

  /** Whether `close()` has been called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * What `send()` adds to a point's own tags, and the most tags a point may
   * carry: for code that builds tag sets for this client (the OpenTelemetry
   * exporter) and must leave room for them. A point's own tag of the same key
   * takes the place of a default tag (or of the host tag) and costs nothing.
   *
   * @example
   * ```ts
   * import { Client } from "@x/potsdb";
   *
   * const metrics = new Client("localhost", { hostTag: "web1", tags: { dc: "eu" } });
   * const { maxTags, hostTag, defaultTagKeys } = metrics.tagBudget;
   * console.assert(maxTags === 8 && hostTag && defaultTagKeys[0] === "dc"); // 6 left for a point's own
   * await metrics.close();
   * ```
   */
  get tagBudget(): {
    /** Most tags per point, host tag and default tags included (the `maxTags` option). */
    readonly maxTags: number;
    /** Whether a `host` tag is added to points that have none. */
    readonly hostTag: boolean;
    /** The keys of the default tags (the `tags` option, as written on the wire). */
    readonly defaultTagKeys: readonly string[];
  } {
    return this.#tagBudget;
  }

  /**
   * Like `EventTarget.addEventListener`, with the event's `detail` typed
   * (see {@linkcode ClientEventMap}), except that a listener that throws (or
   * rejects) is counted in `stats().listenerErrors` instead of reaching the
   * runtime's uncaught-error handler: a metrics client must not crash its host.
   *
   * @param type the event's name
   * @param listener called with each event
   * @param options as for `EventTarget.addEventListener`
   *
   * @example
   * ```ts
   * import { Client } from "@x/potsdb";
   *
   * const metrics = new Client("localhost");
   * metrics.addEventListener("drop", (e) => console.warn(e.detail.count, e.detail.reason));
   * await metrics.close();
   * ```
   */
  override addEventListener<K extends keyof ClientEventMap>(
    type: K,
    listener: ((this: Client, event: ClientEventMap[K]) => unknown) | null,
    options?: AddEventListenerOptions | boolean,
  ): void;
  /**
   * Adds a listener for any event type, as `EventTarget` does.
   *
   * @param type the event's name
   * @param listener called with each event
   * @param options as for `EventTarget.addEventListener`
   */
  override addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: AddEventListenerOptions | boolean,
  ): void;
  override addEventListener(
    type: string,
    listener: AnyListener,
    options?: AddEventListenerOptions | boolean,
  ): void {
    if (listener === null) return;
    let wrapped = this.#listeners.get(listener);
    if (wrapped === undefined) {
      wrapped = (event: Event) => {
        try {
          const result: unknown = typeof listener === "function"
            ? (listener as (event: Event) => unknown).call(this, event)
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

  /**
   * Removes a listener added with {@linkcode Client.addEventListener}.
   *
   * @param type the event's name
   * @param listener the listener as it was added (typed or not)
   * @param options as for `EventTarget.removeEventListener`
   */
  override removeEventListener(
    type: string,
    listener: ((event: never) => unknown) | EventListenerObject | null,
    options?: EventListenerOptions | boolean,
  ): void {
    if (listener === null) return;
    super.removeEventListener(type, this.#listeners.get(listener) ?? (listener as EventListener), options);
  }

  #emit<K extends keyof ClientEventMap>(type: K, detail: ClientEventMap[K]["detail"]): void {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Schedules the `drop` events for what `send()` dropped (counted in `#dropPending`, `#duplicatePending`). */
  #dropped(): void {
    if (this.#dropTimer !== undefined) return;
    // One event now-ish with the storm's first count, then at most one per interval.
    this.#dropTimer = setTimeout(() => {
      this.#dropTimer = undefined;
      this.#flushDropEvent();
    }, 0);
    unrefTimer(this.#dropTimer);
  }

  #flushDropEvent(): void {
    const count = this.#dropPending;
    const duplicates = this.#duplicatePending;
    if (count === 0 && duplicates === 0) return;
    this.#dropPending = 0;
    this.#duplicatePending = 0;
    if (count !== 0) this.#emit("drop", { count, reason: "queueFull" });
    if (duplicates !== 0) this.#emit("drop", { count: duplicates, reason: "duplicate" });
    // Hold back the next event for the interval.
    this.#dropTimer = setTimeout(() => {
      this.#dropTimer = undefined;
      this.#flushDropEvent();
    }, DROP_EVENT_INTERVAL_MS);
    unrefTimer(this.#dropTimer);
  }

  /** Sends the client's own counters every `ms` until `close()`. */
  async #selfMetricsLoop(ms: number, clock: Clock | undefined): Promise<void> {
    const signal = this.#selfStop.signal;
    while (!signal.aborted) {
      if (clock) await clock.sleep(ms, signal);
      else await sleep(ms, signal, unrefTimer);
      if (signal.aborted || this.#closing !== undefined) return;
      this.#sendSelfMetrics();
    }
  }

  /**
   * One round of the client's own points, skipped whole when the queue has no
   * room for it: they never push out the caller's points. Not checked for
   * duplicates, so they never count themselves as dropped.
   */
  #sendSelfMetrics(): void {
    const s = this.stats();
    const points: [string, number, Record<string, string> | undefined][] = [
      ["potsdb.client.sent", s.sent, undefined],
      ["potsdb.client.queued", s.queued, undefined],
      ["potsdb.client.reconnects", s.reconnects, undefined],
      ["potsdb.client.server_errors", s.serverErrors, undefined],
      ["potsdb.client.dropped", s.dropped.queueFull, { reason: "queueFull" }],
      ["potsdb.client.dropped", s.dropped.closed, { reason: "closed" }],
      ["potsdb.client.dropped", s.dropped.rejected, { reason: "rejected" }],
      ["potsdb.client.dropped", s.dropped.duplicate, { reason: "duplicate" }],
      ["potsdb.client.dropped", s.dropped.spoolFull, { reason: "spoolFull" }],
    ];
    const queue = this.#writer.queue;
    if (queue.capacity !== 0 && queue.length + points.length > queue.capacity) {
      this.#selfSkipped++;
      return;
    }
    const now = this.#now();
    try {
      for (const [metric, value, tags] of points) {
        this.#encoder.encodeTo(this.#writer, metric, value, tags, undefined, now, false);
        this.#selfPoints++;
      }
    } catch (e) {
      // Only a prefix long enough to make these lines too long gets here.
      this.#writer.lastError = e as PotsdbError;
      this.#selfSkipped++;
    }
  }
}

export type { Address, ClientOptions, Clock, ConnectError, ConnectionLostError };
