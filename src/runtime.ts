/**
 * The glue every transport and the writer need, once: letting a timer go,
 * racing a promise with an `AbortSignal`, splitting a server's bytes into
 * lines, and the error of a connection that has ended. It names no runtime
 * module, so it loads everywhere.
 *
 * @module
 */

import { ConnectionLostError, OptionsError } from "./errors.ts";
import { INFLUXDB_ANSWER } from "./liveness.ts";

/**
 * Stops a timer from keeping the process alive. Node's and Bun's timers
 * have `unref()`; Deno's global timers are numbers, let go through
 * `Deno.unrefTimer`; elsewhere (Workers, browsers) nothing holds a process.
 *
 * @param timer what `setTimeout` returned
 *
 * @example
 * ```ts
 * import { unrefTimer } from "./runtime.ts";
 *
 * const timer = setTimeout(() => {}, 60_000);
 * unrefTimer(timer); // the process may exit before it fires
 * clearTimeout(timer);
 * ```
 */
export function unrefTimer(timer: ReturnType<typeof setTimeout>): void {
  if (typeof timer === "number") {
    (globalThis as { Deno?: { unrefTimer?(id: number): void } }).Deno?.unrefTimer?.(timer);
  } else (timer as { unref?: () => void } | undefined)?.unref?.();
}

/** The longest delay a timer takes as given: runtimes fire a longer one at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Settles as `promise` does, or rejects with `signal.reason` as soon as
 * `signal` aborts. A value that arrives after the abort goes to `discard`,
 * so that a connection opened too late is closed, not leaked.
 *
 * @param promise the operation
 * @param signal aborts the wait
 * @param discard receives a value that arrived after the abort
 * @returns the operation's value
 *
 * @example
 * ```ts
 * import { raceSignal } from "./runtime.ts";
 *
 * const late = new Promise<string>((r) => setTimeout(() => r("late"), 10));
 * const error = await raceSignal(late, AbortSignal.abort(new Error("gave up"))).catch((e) => e);
 * console.assert(error.message === "gave up");
 * await late;
 * ```
 */
export function raceSignal<T>(
  promise: Promise<T>,
  signal: AbortSignal,
  discard?: (value: T) => void,
): Promise<T> {
  if (signal.aborted) {
    promise.then(discard, () => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      promise.then(discard, () => {});
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) discard?.(value);
        else resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/**
 * The error of a write or a wait on a connection that has ended: what ended
 * it, when known, else a `ConnectionLostError` saying it is closed.
 *
 * @param cause what ended the connection, if known
 * @returns the error to hand to `done` callbacks and `ready()` waiters
 *
 * @example
 * ```ts
 * import { connectionClosed } from "./runtime.ts";
 * import { ConnectionLostError } from "./errors.ts";
 *
 * console.assert(connectionClosed() instanceof ConnectionLostError);
 * ```
 */
export function connectionClosed(cause?: Error): Error {
  return cause ?? new ConnectionLostError("connection closed");
}

/** Longest server line kept; the rest of an overlong line is cut off. */
const MAX_LINE = 4096;

/**
 * Returns a function that takes decoded text chunks and calls `onLine` for
 * each complete line (without `\n` or `\r\n`), and for each of InfluxDB's
 * answers to `version`, which end without one. Memory stays bounded when a
 * peer sends endless bytes without a newline.
 *
 * @param onLine receives each line
 * @returns the chunk sink
 *
 * @example
 * ```ts
 * import { lineSplitter } from "./runtime.ts";
 *
 * const lines: string[] = [];
 * const push = lineSplitter((l) => lines.push(l));
 * push("put: illegal");
 * push(" argument\r\nnext\n");
 * console.assert(lines.join("|") === "put: illegal argument|next");
 * ```
 */
export function lineSplitter(onLine: (line: string) => void): (chunk: string) => void {
  let partial = "";
  return (chunk: string) => {
    let start = 0;
    let nl = chunk.indexOf("\n");
    while (nl !== -1) {
      let line = partial + chunk.slice(start, nl);
      partial = "";
      if (line.endsWith("\r")) line = line.slice(0, -1);
      onLine(line.length > MAX_LINE ? line.slice(0, MAX_LINE) : line);
      start = nl + 1;
      nl = chunk.indexOf("\n", start);
    }
    if (start < chunk.length && partial.length < MAX_LINE) {
      partial = (partial + chunk.slice(start)).slice(0, MAX_LINE);
    }
    // InfluxDB answers `version` with no line ending: each answer is a line of its own.
    while (partial.startsWith(INFLUXDB_ANSWER)) {
      partial = partial.slice(INFLUXDB_ANSWER.length);
      onLine(INFLUXDB_ANSWER);
    }
  };
}

/**
 * Reads a byte stream to its end, passing each line to `onLine`.
 *
 * @param readable the socket's readable side
 * @param onLine receives each line
 * @param closedByUs whether we closed the socket ourselves: a read that
 * fails after that is the end we asked for, not an error
 * @returns the error that ended the stream, or `undefined` for a clean end
 *
 * @example
 * ```ts
 * import { readLines } from "./runtime.ts";
 *
 * const lines: string[] = [];
 * const body = new Response("a\nb\n").body!;
 * const error = await readLines(body, (l) => lines.push(l), () => false);
 * console.assert(error === undefined && lines.join() === "a,b");
 * ```
 */
export async function readLines(
  readable: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
  closedByUs: () => boolean,
): Promise<Error | undefined> {
  const push = lineSplitter(onLine);
  const decoder = new TextDecoder();
  const reader = readable.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return undefined;
      push(decoder.decode(value, { stream: true }));
    }
  } catch (e) {
    return closedByUs() ? undefined : e instanceof Error ? e : new Error(String(e));
  } finally {
    try {
      reader.releaseLock();
    } catch {
      // a reader with a read still pending on some runtimes
    }
  }
}

/**
 * Callers waiting for a connection to take more bytes (`ready()`): each
 * gets a promise, released together when there is room, or rejected
 * together when the connection ends.
 *
 * @example
 * ```ts
 * import { ReadyWaiters } from "./runtime.ts";
 *
 * const waiters = new ReadyWaiters();
 * const ready = waiters.wait();
 * waiters.resolveAll();
 * await ready;
 * ```
 */
export class ReadyWaiters {
  #list: { resolve: () => void; reject: (e: Error) => void }[] = [];

  /**
   * Waits for the next release.
   *
   * @returns a promise that settles with the next `resolveAll` or `rejectAll`
   */
  wait(): Promise<void> {
    return new Promise((resolve, reject) => this.#list.push({ resolve, reject }));
  }

  /** Releases every waiter. */
  resolveAll(): void {
    const list = this.#list;
    this.#list = [];
    for (const w of list) w.resolve();
  }

  /**
   * Fails every waiter.
   *
   * @param error what they get
   */
  rejectAll(error: Error): void {
    const list = this.#list;
    this.#list = [];
    for (const w of list) w.reject(error);
  }
}

/**
 * A runtime's global namespace (`Deno`, `Bun`), for the transport made for
 * that runtime.
 *
 * @param name the global's name
 * @param transport the transport that needs it, for the message
 * @returns the namespace
 * @throws {OptionsError} on another runtime
 *
 * @example
 * ```ts
 * import { runtimeNamespace } from "./runtime.ts";
 *
 * if ("Deno" in globalThis) console.log(runtimeNamespace<{ pid: number }>("Deno", "denoTransport").pid);
 * ```
 */
export function runtimeNamespace<T>(name: "Deno" | "Bun", transport: string): T {
  const ns = (globalThis as Record<string, unknown>)[name] as T | undefined;
  if (!ns) throw new OptionsError(`${transport} needs the ${name} runtime`);
  return ns;
}
