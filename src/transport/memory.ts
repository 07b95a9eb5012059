/**
 * An in-memory transport for tests of code that uses a client: it records
 * what would have been written, and can refuse, drop or talk back.
 *
 * @module
 */

import { connectionClosed } from "../runtime.ts";
import type { Connection, ConnectOptions, Transport } from "./types.ts";

const utf8 = new TextDecoder();

class MemoryConnection implements Connection {
  readonly closed: Promise<Error | undefined>;
  #transport: MemoryTransport;
  #open = true;
  #resolveClosed!: (error: Error | undefined) => void;
  readonly onLine: (line: string) => void;

  constructor(transport: MemoryTransport, onLine: (line: string) => void) {
    this.#transport = transport;
    this.onLine = onLine;
    this.closed = new Promise((resolve) => this.#resolveClosed = resolve);
  }

  write(data: Uint8Array, done: (error?: Error) => void): boolean {
    if (!this.#open) {
      queueMicrotask(() => done(connectionClosed()));
      return false;
    }
    this.#transport.chunks.push(utf8.decode(data));
    queueMicrotask(() => done());
    return true;
  }

  ready(): Promise<void> {
    return this.#open ? Promise.resolve() : Promise.reject(connectionClosed());
  }

  end(): void {
    this.close();
  }

  destroy(): void {
    this.close();
  }

  close(error?: Error): void {
    if (!this.#open) return;
    this.#open = false;
    this.#resolveClosed(error);
  }

  ref(): void {}
  unref(): void {}
}

/**
 * Records every write in memory.
 *
 * @example
 * ```ts
 * import { Client, MemoryTransport } from "@x/potsdb";
 *
 * const transport = new MemoryTransport();
 * const client = new Client("memory", { transport, hostTag: false });
 * client.send("test.metric", 1, { a: "b" }, 1700000000);
 * await client.close();
 * console.assert(transport.lines()[0] === "put test.metric 1700000000 1 a=b");
 * ```
 */
export class MemoryTransport implements Transport {
  readonly name = "memory";
  /** Its `done` is delivery itself: no probes, no stall watchdog. */
  readonly acknowledges = true;
  /** Each write's data, in order. */
  readonly chunks: string[] = [];
  /** Connections made so far. */
  connects = 0;
  /** When set, `connect` rejects with it. */
  refuse: Error | undefined;
  #current: MemoryConnection | undefined;

  /** The hostname this transport reports for `hostTag: true`. */
  readonly host: string;

  /**
   * Makes an empty transport.
   *
   * @param host the hostname it reports for `hostTag: true`
   */
  constructor(host: string = "memory-host") {
    this.host = host;
  }

  connect(options: ConnectOptions): Promise<Connection> {
    if (options.signal.aborted) return Promise.reject(options.signal.reason);
    if (this.refuse) return Promise.reject(this.refuse);
    this.connects++;
    this.#current = new MemoryConnection(this, options.onLine);
    return Promise.resolve(this.#current);
  }

  hostname(): string {
    return this.host;
  }

  /** Everything written, as one string. */
  received(): string {
    return this.chunks.join("");
  }

  /** Every line written, without newlines. */
  lines(): string[] {
    const text = this.received();
    return text === "" ? [] : text.slice(0, -1).split("\n");
  }

  /** Ends the current connection as a server would (with `error`: a reset). */
  disconnect(error?: Error): void {
    this.#current?.close(error);
    this.#current = undefined;
  }

  /** Makes the current connection receive `line` from the "server". */
  reply(line: string): void {
    this.#current?.onLine(line);
  }
}
