/**
 * One connection's life: open, write, probe, confirm, and end. A
 * {@linkcode Session} owns the connection's liveness (probes and answers,
 * see `liveness.ts`), its watchdog and its rebalance timer; every end of it
 * (an error, a clean close by the server, a stall, a rebalance, the writer's
 * stop) goes through {@linkcode Session.end} and reaches the writer once, as
 * {@linkcode SessionOwner.ended}; {@linkcode planEnd} then says what is
 * written again, what is let go and what is reported.
 *
 * @module
 */

import type { Address, EndReason } from "./addresses.ts";
import { ConnectError, ConnectionLostError } from "./errors.ts";
import { isProbeAnswer, isProbeAnswerTail, Liveness, PROBE } from "./liveness.ts";
import { unrefTimer } from "./runtime.ts";
import type { Connection, Transport } from "./transport/types.ts";

export type { EndReason };

/** Timers on the writer's clock. */
export interface Timers {
  /** The clock, in ms. */
  now(): number;
  /**
   * Calls `fn` once after `ms` (a timer that does not hold the process).
   *
   * @returns a function that cancels it
   */
  after(ms: number, fn: () => void): () => void;
}

/** What a {@linkcode Session} asks of, and tells, the writer that owns it. */
export interface SessionOwner {
  /** A line of the server's that is no answer to a probe (a `put` error). */
  serverLine(line: string): void;
  /** An answer confirmed every line before sequence number `covers`. */
  answered(session: Session, covers: number): void;
  /** The server does not answer probes: what is kept for replay cannot be confirmed. */
  silent(): void;
  /** Whether written bytes wait for the connection to take them. */
  waiting(): boolean;
  /** Lines written on this connection that no answer confirmed yet (in flight or kept). */
  unanswered(): number;
  /** Whether servers at other addresses answered probes: one not heard from yet likely will too. */
  fleetAnswers(): boolean;
  /** Whether a rebalance may move away from this address (another one is ready). */
  mayMove(address: Address): boolean;
  /** The connection ended: called once, after which the session is over. */
  ended(session: Session, reason: EndReason, error: ConnectionLostError | undefined): void;
}

/** Settings of a {@linkcode Session}. */
export interface SessionOptions {
  /** How often to probe while lines were written since the last answer; 0 = never. */
  heartbeatMs: number;
  /** No progress or no answer for this long: stalled. 0 = no liveness at all. */
  stallTimeoutMs: number;
  /** Move to another address after about this long (± 10 %); 0 = never. */
  rebalanceMs: number;
  /** The transport's `done` is the server's answer: no probes, no watchdog. */
  acknowledges: boolean;
  /** The server at this address answered probes before. */
  expectAnswers: boolean;
  /** The clock and its timers. */
  timers: Timers;
}

/** Settings of {@linkcode openConnection}. */
export interface OpenOptions {
  /** Longest wait for the connection. */
  timeoutMs: number;
  /** A caller awaits this attempt (the host check): its timer holds the process. */
  awaited: boolean;
  /** Aborts the attempt (the writer stops). */
  signal: AbortSignal;
  /** TCP keepalive for the transport; 0 = off. */
  keepAliveMs: number;
  /** Each line the server sends. */
  onLine(line: string): void;
  /** A failure the connection recovers from by itself (an HTTP request it retries). */
  onError(error: ConnectError): void;
}

/**
 * Opens a connection to `address` within `timeoutMs`.
 *
 * @param transport opens it
 * @param address where
 * @param options timeout, abort signal, keepalive and the callbacks for server lines and transient failures
 * @returns the open connection
 * @throws {ConnectError} `CONNECT_TIMEOUT` when the time is up, else `CONNECT_FAILED`
 *
 * @example
 * ```ts
 * import { openConnection } from "./connection.ts";
 * import { MemoryTransport } from "./transport/memory.ts";
 *
 * const conn = await openConnection(new MemoryTransport(), { host: "m", port: 1 }, {
 *   timeoutMs: 1000, awaited: true, signal: new AbortController().signal, keepAliveMs: 0,
 *   onLine() {}, onError() {},
 * });
 * conn.end();
 * ```
 */
export async function openConnection(
  transport: Transport,
  address: Address,
  options: OpenOptions,
): Promise<Connection> {
  const where = `${address.host}:${address.port}`;
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), options.timeoutMs);
  // A caller awaiting the host check holds the process; background reconnects do not.
  if (!options.awaited) unrefTimer(timer);
  try {
    return await transport.connect({
      host: address.host,
      port: address.port,
      signal: AbortSignal.any([options.signal, timeout.signal]),
      keepAliveMs: options.keepAliveMs,
      onLine: options.onLine,
      onError: (e) =>
        options.onError(
          new ConnectError("CONNECT_FAILED", where, `sending to ${where} failed: ${e.message}`, e),
        ),
    });
  } catch (e) {
    if (timeout.signal.aborted) {
      throw new ConnectError(
        "CONNECT_TIMEOUT",
        where,
        `connecting to ${where} took longer than ${options.timeoutMs} ms`,
        e,
      );
    }
    const reason = e instanceof Error ? e.message : String(e);
    throw new ConnectError("CONNECT_FAILED", where, `cannot connect to ${where}: ${reason}`, e);
  } finally {
    clearTimeout(timer);
  }
}

/** Longest a rebalance waits for answers where `stallTimeoutMs` is 0. */
const MOVE_WAIT_MS = 15_000;

/** What {@linkcode planEnd} decides for one end of a connection. */
export interface EndPlan {
  /** Kept lines (written, not yet acknowledged) are written again; else they are let go as unconfirmed. */
  replay: boolean;
  /** The end is a problem to report (`lastError`, and a `disconnect` event unless stopping). */
  report: boolean;
  /** The address cools down before the next attempt (see `AddressBook.ended`). */
  coolDown: boolean;
}

/**
 * The one decision taken at every end of a connection. Lines in flight (not
 * yet taken by the OS) always go back to the queue's front: they were never
 * counted as sent. Kept lines are written again only where the server is
 * known to answer (so a server that never does gets no duplicates), never
 * after a rebalance (the move waits for an answer, and what none confirmed
 * is let go), and at stop only into a spool, for the next process.
 *
 * @param reason why the connection ended
 * @param facts whether kept lines may be replayed on this connection, whether a spool takes them at stop,
 * whether the end had an error of its own, and whether a rebalance had begun to move away (then whatever
 * ends the connection, nothing kept is written again)
 * @returns what to do
 *
 * @example
 * ```ts
 * import { planEnd } from "./connection.ts";
 *
 * const plan = planEnd("rebalance", { replays: true, spool: false, failed: false, moving: true });
 * console.assert(!plan.replay && !plan.report && plan.coolDown);
 * ```
 */
export function planEnd(
  reason: EndReason,
  facts: { replays: boolean; spool: boolean; failed: boolean; moving: boolean },
): EndPlan {
  switch (reason) {
    case "rebalance":
      return { replay: false, report: false, coolDown: true };
    case "stop":
      return { replay: facts.replays && facts.spool, report: facts.failed, coolDown: false };
    default:
      return { replay: facts.replays && !facts.moving, report: true, coolDown: true };
  }
}

/**
 * One open connection and the state of its life.
 *
 * @example
 * ```ts
 * import { Session } from "./connection.ts";
 * import { MemoryTransport } from "./transport/memory.ts";
 *
 * const conn = await new MemoryTransport().connect({
 *   host: "m", port: 1, signal: new AbortController().signal, onLine() {},
 * });
 * const session = new Session(conn, { host: "m", port: 1 }, {
 *   serverLine() {}, answered() {}, silent() {}, waiting: () => false, unanswered: () => 0, fleetAnswers: () => false,
 *   mayMove: () => false, ended() {},
 * }, {
 *   heartbeatMs: 0, stallTimeoutMs: 0, rebalanceMs: 0, acknowledges: true, expectAnswers: false,
 *   timers: { now: () => 0, after: () => () => {} },
 * });
 * session.end("stop");
 * await session.done;
 * ```
 */
export class Session {
  /** The transport's connection. */
  readonly conn: Connection;
  /** Where it goes. */
  readonly address: Address;
  /** When it opened (clock ms). */
  readonly openedAt: number;
  /** Probes and answers; none where the transport acknowledges or `stallTimeoutMs` is 0. */
  readonly liveness: Liveness | undefined;
  /** Resolves once the session is over (the owner heard `ended`). */
  readonly done: Promise<void>;
  /** A write returned false: the writer waits for `ready()`. */
  blocked = false;
  /** Ending, or being moved away from: nothing more is written to it. */
  draining = false;
  /** The server answered a probe on this connection. */
  answered = false;
  /** A rebalance began to move away: nothing kept is written again, whatever ends it. */
  moving = false;
  /** Over: the owner heard `ended`; late callbacks are ignored. */
  over = false;
  readonly #owner: SessionOwner;
  readonly #o: SessionOptions;
  readonly #cancels: (() => void)[] = [];
  #resolveDone!: () => void;
  #ending: { reason: EndReason; cause: Error | undefined } | undefined;
  #answerTail = false;
  #answerWaiters: (() => void)[] = [];

  /**
   * Starts the life of an open connection: its watchdog and rebalance timer run from here.
   *
   * @param conn the open connection
   * @param address where it goes
   * @param owner the writer
   * @param options heartbeat, stall timeout, rebalance, the transport's kind, the clock
   */
  constructor(conn: Connection, address: Address, owner: SessionOwner, options: SessionOptions) {
    this.conn = conn;
    this.address = address;
    this.#owner = owner;
    this.#o = options;
    const timers = options.timers;
    this.openedAt = timers.now();
    this.done = new Promise((resolve) => this.#resolveDone = resolve);
    if (!options.acknowledges && options.stallTimeoutMs > 0) {
      this.liveness = new Liveness({
        heartbeatMs: options.heartbeatMs,
        stallTimeoutMs: options.stallTimeoutMs,
        expectAnswers: options.expectAnswers,
        now: timers.now,
      });
      const period = Math.max(10, Math.min(options.stallTimeoutMs, options.heartbeatMs || Infinity) / 4);
      const watch = () => {
        if (this.over) return;
        this.#tick();
        if (!this.over) this.#cancels[0] = timers.after(period, watch); // a stall ended it: no timer left
      };
      this.#cancels[0] = timers.after(period, watch);
    }
    if (options.rebalanceMs > 0) {
      this.#cancels.push(
        timers.after(options.rebalanceMs * (0.9 + Math.random() * 0.2), () => this.#rebalance()),
      );
    }
    conn.closed.then((error) => {
      const ending = this.#ending;
      if (ending !== undefined) this.#finish(ending.reason, ending.cause ?? error);
      else this.#finish(error === undefined ? "closed" : "error", error);
    });
  }

  /**
   * Writes a batch, then the connection's first probe when it is due.
   *
   * @param data the lines
   * @param end the sequence number just past them
   * @param done the transport's callback
   * @returns false when the writer must wait for `ready()`
   */
  write(data: Uint8Array, end: number, done: (error?: Error) => void): boolean {
    const live = this.liveness;
    live?.written(end);
    const more = this.conn.write(data, done);
    // Not behind a write that filled the buffers: it would wait there, and the next write sends it.
    if (more && live?.firstProbeDue && !this.over) this.probe();
    return more;
  }

  /** Sends a probe now, covering every line handed to the connection so far. */
  probe(): void {
    this.liveness?.probeSent();
    this.conn.write(PROBE, (error) => error && this.end("error", error));
  }

  /**
   * Takes the lines that answer a probe.
   *
   * @param line a line the server sent
   * @returns whether `line` was such a line (not a server error)
   */
  serverLine(line: string): boolean {
    if (this.#answerTail && isProbeAnswerTail(line)) {
      this.#answerTail = false;
      return true;
    }
    if (!isProbeAnswer(line)) return false;
    // OpenTSDB's answer has a second line; InfluxDB's has none.
    this.#answerTail = line.startsWith("net.opentsdb");
    const covers = this.liveness?.answered();
    if (covers === undefined || this.over) return true;
    this.answered = true;
    this.#owner.answered(this, covers);
    this.#wakeAnswerWaiters();
    return true;
  }

  /**
   * Whether this connection's server is expected to answer probes: it did,
   * or it did before at this address, or, not heard from yet, servers at the
   * other addresses do.
   */
  get expectsAnswers(): boolean {
    const live = this.liveness;
    if (live === undefined) return false;
    return live.expectsAnswers || (live.state === "unproven" && live.retaining && this.#owner.fleetAnswers());
  }

  /**
   * Waits until an answer confirms every line written, where the server is
   * expected to answer; at once where it is not (it may never: nothing
   * waits on a server that does not answer).
   *
   * @param signal gives up when aborted (a deadline)
   */
  async confirm(signal: AbortSignal): Promise<void> {
    const live = this.liveness;
    for (;;) {
      if (this.over || signal.aborted) return;
      if (live === undefined) {
        // Where `done` is the answer (HTTP), the requests in flight are what waits for one.
        if (!this.#o.acknowledges || !this.#owner.waiting()) return;
      } else {
        if (!this.expectsAnswers || this.#owner.unanswered() === 0) return;
        if (live.uncovered) this.probe();
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          signal.removeEventListener("abort", wake);
          resolve();
        };
        this.#answerWaiters.push(wake);
        signal.addEventListener("abort", wake, { once: true });
      });
    }
  }

  /**
   * Before a graceful end of a connection whose server is not known yet to
   * answer or not: a probe after the last lines (unless they back up: the end
   * would not get past them before its deadline). Nothing waits for it; a
   * server that answers does so before it closes its side after ours, which
   * the graceful end waits for anyway, so its answer still confirms them.
   */
  lastWord(): void {
    const live = this.liveness;
    if (live?.state === "unproven" && live.retaining && live.uncovered && !this.blocked && !this.over) {
      this.probe();
    }
  }

  /** A write completed: a `confirm()` waiting on lines in flight looks again. */
  nudge(): void {
    if (this.#answerWaiters.length > 0) this.#wakeAnswerWaiters();
  }

  /**
   * Ends the connection for `reason`: gracefully (what is buffered is
   * written first) for a rebalance or the writer's stop, else at once. The
   * first reason given is the one reported.
   *
   * @param reason why
   * @param cause the error behind it, if any
   */
  end(reason: EndReason, cause?: Error): void {
    if (this.over || this.#ending !== undefined) return;
    this.#ending = { reason, cause };
    this.draining = true;
    if (reason === "rebalance" || reason === "stop") {
      this.conn.end();
      return;
    }
    this.conn.destroy();
    this.#finish(reason, cause);
  }

  /** Ends at once, for `reason` (a deadline passed, or the caller gave up). */
  destroy(reason: EndReason): void {
    this.#ending ??= { reason, cause: undefined };
    this.draining = true;
    this.conn.destroy();
    this.#finish(this.#ending.reason, this.#ending.cause);
  }

  #finish(reason: EndReason, cause: Error | undefined): void {
    if (this.over) return;
    this.over = true;
    this.draining = true;
    for (const cancel of this.#cancels) cancel();
    this.#wakeAnswerWaiters();
    this.#owner.ended(this, reason, lostError(this.address, reason, cause, this.#o.stallTimeoutMs));
    this.#resolveDone();
  }

  #wakeAnswerWaiters(): void {
    const waiters = this.#answerWaiters;
    this.#answerWaiters = [];
    for (const wake of waiters) wake();
  }

  /** The watchdog: a stall ends the connection; a due probe is sent. */
  #tick(): void {
    const live = this.liveness!;
    if (this.#ending !== undefined && this.#ending.reason === "stop") return; // the stop's deadline rules
    const action = live.tick(this.#owner.waiting());
    if (action === "stalled") this.end("stalled");
    else if (action === "silent") {
      this.#owner.silent();
      this.#wakeAnswerWaiters();
    } else if (action === "probe" && !this.draining) this.probe();
  }

  /**
   * Time to move: nothing more is written here; once an answer confirmed
   * what was (or after `stallTimeoutMs`, letting the rest go), a graceful end.
   */
  async #rebalance(): Promise<void> {
    if (this.draining || !this.#owner.mayMove(this.address)) return;
    this.draining = this.moving = true;
    const deadline = new AbortController();
    this.#cancels.push(this.#o.timers.after(this.#o.stallTimeoutMs || MOVE_WAIT_MS, () => deadline.abort()));
    await this.confirm(deadline.signal);
    if (this.over || this.#ending !== undefined) return; // ended meanwhile (a stop, a reset)
    this.end("rebalance");
    // A server that does not close its side in time is left.
    this.#cancels.push(this.#o.timers.after(this.#o.stallTimeoutMs || 1000, () => this.destroy("rebalance")));
  }
}

/** The error that reports an end, if it is one. */
function lostError(
  address: Address,
  reason: EndReason,
  cause: Error | undefined,
  stallTimeoutMs: number,
): ConnectionLostError | undefined {
  switch (reason) {
    case "stalled":
      return new ConnectionLostError(
        `no progress on ${address.host}:${address.port} for ${stallTimeoutMs} ms: the connection is taken for dead`,
        undefined,
        "CONNECTION_STALLED",
      );
    case "closed":
      return new ConnectionLostError("the server closed the connection");
    case "rebalance":
      return new ConnectionLostError("moved to another address (rebalanceMs)");
    default:
      return cause === undefined
        ? undefined
        : new ConnectionLostError(`connection lost: ${cause.message}`, cause);
  }
}
