/**
 * Every error potsdb throws or reports is a {@linkcode PotsdbError} with a
 * stable `code` to switch on; the subclasses narrow it further.
 *
 * @module
 */

/** The stable codes carried by {@linkcode PotsdbError.code}. */
export type ErrorCode =
  | "INVALID_METRIC"
  | "INVALID_TAG"
  | "INVALID_VALUE"
  | "INVALID_TIMESTAMP"
  | "LINE_TOO_LONG"
  | "INVALID_OPTION"
  | "CLIENT_CLOSED"
  | "CONNECT_TIMEOUT"
  | "CONNECT_FAILED"
  | "CONNECTION_LOST"
  | "CONNECTION_STALLED"
  | "FLUSH_TIMEOUT"
  | "SERVER_ERROR"
  | "HTTP_ERROR"
  | "SPOOL_FAILED";

// Marks potsdb's errors across copies of the package (a JSR copy and an npm copy in one
// process): each error carries the names of its class and of the classes above it.
const BRAND = Symbol.for("@x/potsdb/error");

/**
 * Base class of all potsdb errors.
 *
 * @example Switch on the code
 * ```ts
 * import { Client, PotsdbError } from "@x/potsdb";
 *
 * const client = new Client("localhost", { hostTag: false });
 * try {
 *   client.send("bad metric", 1, { a: "b" });
 * } catch (e) {
 *   if (e instanceof PotsdbError && e.code === "INVALID_METRIC") {
 *     // the name has a space: nothing was queued
 *   }
 * }
 * await client.close();
 * ```
 */
export class PotsdbError extends Error {
  /** A stable identifier of the kind of failure. */
  readonly code: ErrorCode;

  /**
   * Makes an error with a code.
   *
   * @param code the stable code
   * @param message a human readable description
   * @param options `cause`: the underlying error, if any
   */
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
    const kinds: string[] = [];
    for (let c: unknown = new.target; typeof c === "function" && c !== Error; c = Object.getPrototypeOf(c)) {
      kinds.push((c as { name: string }).name);
    }
    Object.defineProperty(this, BRAND, { value: kinds });
  }

  /**
   * `instanceof` that also holds for an error made by another copy of potsdb
   * loaded in the same process (say a JSR copy and an npm copy): such an error
   * is an instance of every potsdb error class of the same name as its own
   * class or one above it.
   *
   * @param value anything
   * @returns whether `value` is an error of this class
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    const kinds = (value as { [BRAND]?: unknown } | null | undefined)?.[BRAND];
    return Array.isArray(kinds) && kinds.includes(this.name);
  }
}

/**
 * Thrown by `send()` for input that is not a valid OpenTSDB `put`.
 * Nothing was queued.
 *
 * @example
 * ```ts
 * import { Client, ValidationError } from "@x/potsdb";
 *
 * const client = new Client("localhost", { hostTag: false });
 * try {
 *   client.send("cpu", NaN, { a: "b" });
 * } catch (e) {
 *   console.assert(e instanceof ValidationError && e.code === "INVALID_VALUE");
 * }
 * await client.close();
 * ```
 */
export class ValidationError extends PotsdbError {
  /** Which part of the point was rejected, e.g. `metric`, `tag key`, `value`. */
  readonly field: string;

  /**
   * Makes a validation error.
   *
   * @param code one of the `INVALID_*` codes or `LINE_TOO_LONG`
   * @param field the part of the point that was rejected
   * @param message what is wrong with it
   */
  constructor(
    code:
      | "INVALID_METRIC"
      | "INVALID_TAG"
      | "INVALID_VALUE"
      | "INVALID_TIMESTAMP"
      | "LINE_TOO_LONG",
    field: string,
    message: string,
  ) {
    super(code, message);
    this.field = field;
  }
}

/**
 * Thrown for an option that cannot work (a negative `qsize`, a port out of range…).
 *
 * @example
 * ```ts
 * import { Client, OptionsError } from "@x/potsdb";
 *
 * try {
 *   new Client("localhost", { qsize: -1 });
 * } catch (e) {
 *   console.assert(e instanceof OptionsError);
 * }
 * ```
 */
export class OptionsError extends PotsdbError {
  /**
   * Makes an options error.
   *
   * @param message which option is wrong, and why
   */
  constructor(message: string) {
    super("INVALID_OPTION", message);
  }
}

/**
 * Thrown by `send()` and `flush()` once `close()` has been called.
 *
 * @example
 * ```ts
 * import { Client, ClientClosedError } from "@x/potsdb";
 *
 * const client = new Client("localhost");
 * await client.close();
 * try {
 *   client.send("cpu", 1);
 * } catch (e) {
 *   console.assert(e instanceof ClientClosedError);
 * }
 * ```
 */
export class ClientClosedError extends PotsdbError {
  /** Makes the error `send()` and `flush()` throw after `close()`. */
  constructor() {
    super("CLIENT_CLOSED", "the client is closed");
  }
}

/**
 * A connection could not be made: `CONNECT_TIMEOUT` when it took longer than
 * the connect timeout, `CONNECT_FAILED` otherwise (refused, DNS failure…),
 * with the runtime's error as `cause`.
 *
 * @example The start-up host check
 * ```ts
 * import { Client, ConnectError } from "@x/potsdb";
 *
 * try {
 *   const client = await Client.connect("127.0.0.1", { port: 1, timeoutMs: 500 });
 *   await client.close();
 * } catch (e) {
 *   console.assert(e instanceof ConnectError);
 * }
 * ```
 */
export class ConnectError extends PotsdbError {
  /** The address that was tried, `host:port`. */
  readonly address: string;

  /**
   * Makes a connect error.
   *
   * @param code `CONNECT_TIMEOUT` or `CONNECT_FAILED`
   * @param address `host:port` that was tried
   * @param message what happened
   * @param cause the runtime's error
   */
  constructor(
    code: "CONNECT_TIMEOUT" | "CONNECT_FAILED",
    address: string,
    message: string,
    cause?: unknown,
  ) {
    super(code, message, { cause });
    this.address = address;
  }
}

/**
 * `flush()` did not finish before its deadline (its `timeoutMs`, by default
 * the client's `closeTimeoutMs`): what was queued is still queued and the
 * writer keeps trying; `close()` later delivers it or, at its own deadline,
 * drops and counts it. Expect it wherever the server may be down: an
 * unhandled rejection would end the program before `close()`.
 *
 * @example
 * ```ts
 * import { Client, FlushTimeoutError } from "@x/potsdb";
 *
 * const client = new Client("127.0.0.1", { port: 1, hostTag: false });
 * client.send("cpu", 1, { a: "b" });
 * try {
 *   await client.flush({ timeoutMs: 50 });
 * } catch (e) {
 *   console.assert(e instanceof FlushTimeoutError);
 * }
 * await client.close({ timeoutMs: 0 });
 * ```
 */
export class FlushTimeoutError extends PotsdbError {
  /** Points still waiting when the deadline passed. */
  readonly pending: number;
  /** The deadline that passed, in ms. */
  readonly timeoutMs: number;

  /**
   * Makes a flush timeout error.
   *
   * @param pending how many points were still waiting
   * @param timeoutMs the deadline that passed
   */
  constructor(pending: number, timeoutMs: number) {
    const them = pending === 1 ? "it" : "them";
    super(
      "FLUSH_TIMEOUT",
      `flush() did not finish within ${timeoutMs} ms (its timeoutMs option, by default the client's ` +
        `closeTimeoutMs): ${pending === 1 ? "1 point is" : `${pending} points are`} still queued and the ` +
        `client keeps trying; close() delivers ${them} or, at its deadline, drops and counts ${them} ` +
        "(stats().dropped.closed). Is the server down? See stats().lastError",
    );
    this.pending = pending;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * A line the server sent back, such as OpenTSDB's `put: illegal argument: …`.
 * Carried by `server-error` events; never thrown.
 *
 * @example
 * ```ts
 * import { Client, type ServerError } from "@x/potsdb";
 *
 * const client = new Client("localhost");
 * client.addEventListener("server-error", (event) => {
 *   const error: ServerError = event.detail;
 *   console.log(error.line);
 * });
 * await client.close();
 * ```
 */
export class ServerError extends PotsdbError {
  /** The line as the server sent it, without the newline. */
  readonly line: string;

  /**
   * Makes a server error from the line the server sent.
   *
   * @param line the line the server sent
   */
  constructor(line: string) {
    super("SERVER_ERROR", `server replied: ${line}`);
    this.line = line;
  }
}

/**
 * The connection ended: the server closed it or reset it, or a write failed.
 * Carried by `disconnect` events.
 *
 * @example
 * ```ts
 * import { Client, ConnectionLostError } from "@x/potsdb";
 *
 * const client = new Client("localhost");
 * client.addEventListener("disconnect", (event) => {
 *   const error: ConnectionLostError = event.detail;
 *   console.log(error.message);
 * });
 * await client.close();
 * ```
 */
export class ConnectionLostError extends PotsdbError {
  /**
   * Makes a connection-lost error.
   *
   * @param message what happened
   * @param cause the runtime's error, if there was one
   * @param code `CONNECTION_STALLED` when the client gave up on a connection that made no
   * progress (a dead peer, a partition), else `CONNECTION_LOST`
   */
  constructor(
    message: string,
    cause?: unknown,
    code: "CONNECTION_LOST" | "CONNECTION_STALLED" = "CONNECTION_LOST",
  ) {
    super(code, message, { cause });
  }
}

/**
 * An HTTP answer the HTTP transport retries (a 5xx, a 401, a 429, …). It
 * reaches users as the `cause` of the `ConnectError` of an `error` event.
 *
 * @example
 * ```ts
 * import { Client, HttpError } from "@x/potsdb";
 * import { httpTransport } from "@x/potsdb/http";
 *
 * const metrics = new Client("localhost", { transport: httpTransport(), hostTag: false });
 * metrics.addEventListener("error", (event) => {
 *   const cause = event.detail.cause;
 *   if (cause instanceof HttpError && cause.status === 401) console.log("check the credentials");
 * });
 * await metrics.close();
 * ```
 */
export class HttpError extends PotsdbError {
  /** The HTTP status. */
  readonly status: number;
  /** The start of the response body. */
  readonly body: string;

  /**
   * Describes one HTTP answer that is retried.
   *
   * @param url the request's URL
   * @param status the HTTP status
   * @param body the response body (kept to 500 characters)
   */
  constructor(url: string, status: number, body: string) {
    const text = body.length > 500 ? body.slice(0, 500) + "…" : body;
    super("HTTP_ERROR", `POST ${url}: HTTP ${status}${text ? `: ${text}` : ""}`);
    this.status = status;
    this.body = text;
  }
}

/**
 * The disk spool failed (an unwritable directory, a full disk, a read
 * error): reported as an `error` event, after which the client runs
 * memory-only; what was on disk stays there for the next process.
 *
 * @example
 * ```ts
 * import { Client, SpoolError } from "@x/potsdb";
 *
 * const metrics = new Client("localhost", { hostTag: false });
 * metrics.addEventListener("error", (event) => {
 *   if (event.detail instanceof SpoolError) console.warn(`spool ${event.detail.dir}: ${event.detail.message}`);
 * });
 * await metrics.close();
 * ```
 */
export class SpoolError extends PotsdbError {
  /** The spool's directory. */
  readonly dir: string;

  /**
   * Describes a spool failure.
   *
   * @param dir the spool's directory
   * @param message what failed
   * @param cause the file system's error
   */
  constructor(dir: string, message: string, cause?: unknown) {
    super("SPOOL_FAILED", message, { cause });
    this.dir = dir;
  }
}
