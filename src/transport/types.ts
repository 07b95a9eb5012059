/**
 * The seam between the runtime-agnostic client and a runtime's sockets.
 *
 * A transport only moves bytes: queueing, batching, rate limiting and
 * reconnecting live in the client. Implement {@linkcode Transport} to send
 * through anything that carries a byte stream.
 *
 * @module
 */

/**
 * TLS settings of a connection (the client's `tls` option, with `true` given
 * as `{}`). Certificates and keys are PEM text, not file names.
 */
export interface TlsOptions {
  /**
   * Certificate authorities to trust, PEM; by default the runtime's own
   * list. Several may be given as an array or concatenated in one string.
   */
  ca?: string | readonly string[];
  /** The client's certificate chain, PEM, for servers that ask for one (needs `key`). */
  cert?: string;
  /** The private key of `cert`, PEM. */
  key?: string;
  /** The name to ask for (SNI) and to check the certificate against. Default: the host. */
  servername?: string;
  /** Set to false to accept any certificate (testing only). Default true. */
  rejectUnauthorized?: boolean;
}

/** What the client asks of {@linkcode Transport.connect}. */
export interface ConnectOptions {
  /** Host name or address. */
  host: string;
  /** TCP port. */
  port: number;
  /** Aborts the attempt (connect timeout, or the client closing). */
  signal: AbortSignal;
  /** TCP keepalive: probe an idle connection after this many ms; 0 or absent = off. */
  keepAliveMs?: number;
  /** Called with each line the server sends, without its line ending. */
  onLine(line: string): void;
  /**
   * Reports a failure the connection recovers from by itself, such as an
   * HTTP request it will retry; the client counts it in `connectFailures`
   * and emits an `error` event. TCP transports have no use for it.
   */
  onError?(error: Error): void;
  /**
   * Connect with TLS, with these settings; absent for plain TCP. Only passed
   * to a transport that has {@linkcode Transport.checkTls}.
   */
  tls?: TlsOptions;
}

/** A point the server refused for good: it is dropped, not retried. */
export interface Rejection {
  /** The point's `put` line, without its newline. */
  line: string;
  /** Why, in the server's words. */
  reason: string;
}

/**
 * One open connection.
 *
 * The client writes whole batches of lines, as UTF-8 bytes. The data is the
 * connection's until it calls `done` for it; after that the client reuses the
 * memory for a later batch, so a connection that keeps the bytes longer must
 * copy them. `write` reports through `done` whether the data reached the operating
 * system (or, for a transport that gets an answer, the server). `done` is
 * called once per write, in the order of the writes. It may be called from
 * inside `write` when the data went to the OS at once: a caller's long
 * synchronous loop then sees its writes confirmed as it goes, instead of
 * holding every batch until the loop ends.
 */
export interface Connection {
  /**
   * Hands `data` to the connection.
   *
   * @param data one or more complete lines, UTF-8; the caller changes none of
   * its bytes before `done` is called, so a transport may keep a view of it
   * until then (the writer's buffers are reused only after)
   * @param done called once the data is in the OS's buffers (no argument), or
   * with the error when it can no longer be written; a transport that learns
   * the server's verdict on each point passes the refused ones as `rejected`
   * (they are counted as dropped, the rest as sent)
   * @returns false when the caller should wait for {@linkcode Connection.ready}
   * before writing more (backpressure)
   */
  write(data: Uint8Array, done: (error?: Error, rejected?: readonly Rejection[]) => void): boolean;
  /** Resolves when more can be written; rejects if the connection ends first. */
  ready(): Promise<void>;
  /** Resolves once the connection has ended, with the error that ended it, if any. */
  readonly closed: Promise<Error | undefined>;
  /** Writes what is buffered, then closes; `closed` resolves after. */
  end(): void;
  /** Closes at once; buffered data is lost (and its `done` gets an error). */
  destroy(): void;
  /** Lets this connection keep the process alive (the default). */
  ref(): void;
  /** Stops this connection from keeping the process alive. */
  unref(): void;
}

/**
 * Opens connections for a client. Adapters: `nodeTransport`, `denoTransport`,
 * `bunTransport`, `socketsTransport(connect)`, `autoTransport` (the default).
 *
 * @example A transport that wraps another and counts connections
 * ```ts
 * import { autoTransport, Client } from "@x/potsdb";
 * import type { Transport } from "@x/potsdb/transport";
 *
 * let connects = 0;
 * const counting: Transport = {
 *   name: "counting",
 *   connect(options) {
 *     connects++;
 *     return autoTransport.connect(options);
 *   },
 * };
 * const client = new Client("localhost", { transport: counting, hostTag: false });
 * await client.close();
 * ```
 */
export interface Transport {
  /** A short name for messages and stats, e.g. `node:net`. */
  readonly name: string;
  /**
   * Opens a connection.
   *
   * @param options address, abort signal and the server-line callback
   * @returns the open connection
   * @throws whatever the runtime throws when the connection fails; the client
   * wraps it in a `ConnectError`
   */
  connect(options: ConnectOptions): Promise<Connection>;
  /** This machine's hostname, for `hostTag: true`. */
  hostname?(): string | undefined;
  /**
   * Present on a transport that honours {@linkcode ConnectOptions.tls}. A
   * client with the `tls` option calls it once, when it is made, and refuses
   * a transport without it.
   *
   * @param tls the client's TLS settings
   * @throws Error saying why, for settings this transport cannot honour (the
   * client reports it as an `OptionsError`)
   */
  checkTls?(tls: TlsOptions): void;
  /**
   * Whether a write's `done` is the server's own answer (HTTP, an in-memory
   * sink): the client then sends no probes and runs no stall watchdog on its
   * connections, and counts what they confirm as `confirmed`.
   */
  readonly acknowledges?: boolean;
}
