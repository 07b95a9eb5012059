/**
 * The `Deno.connect` transport.
 *
 * `conn.write()` is asynchronous and may write part of a buffer; the
 * connection loops until each batch is written. Being asynchronous, it
 * writes nothing while a caller's synchronous loop runs, which is why the
 * default on Deno is `node:net` (Deno's writes bytes synchronously).
 *
 * @module
 */

import { raceSignal, readLines, runtimeNamespace } from "../runtime.ts";
import { BufferedConnection } from "./stream_connection.ts";
import type { Connection, ConnectOptions, Transport } from "./types.ts";

interface DenoConn {
  write(p: Uint8Array): Promise<number>;
  readonly readable: ReadableStream<Uint8Array>;
  close(): void;
  ref(): void;
  unref(): void;
  setNoDelay?(noDelay?: boolean): void;
  setKeepAlive?(keepAlive?: boolean): void;
}

interface DenoNamespace {
  connect(
    options: { hostname: string; port: number; transport?: "tcp"; signal?: AbortSignal },
  ): Promise<DenoConn>;
  hostname(): string;
}

const deno = () => runtimeNamespace<DenoNamespace>("Deno", "denoTransport");

/**
 * Connects with `Deno.connect`.
 *
 * @example
 * ```ts
 * import { Client } from "@x/potsdb";
 * import { denoTransport } from "@x/potsdb/deno";
 *
 * const client = new Client("localhost", { transport: denoTransport });
 * await client.close();
 * ```
 */
export const denoTransport: Transport = {
  name: "Deno.connect",
  async connect({ host, port, signal, onLine, keepAliveMs }: ConnectOptions): Promise<Connection> {
    signal.throwIfAborted();
    // The signal cancels the connect itself: an attempt left pending on an unanswered
    // SYN would hold the process until the kernel gives up (minutes).
    const attempt = deno().connect({ hostname: host, port, transport: "tcp", signal });
    // A connect that completes after the abort is closed at once.
    const conn = await raceSignal(attempt, signal, (c) => c.close());
    conn.setNoDelay?.(true);
    // Deno takes no delay: the system's keepalive timing applies.
    if (keepAliveMs) conn.setKeepAlive?.(true);
    let closed = false;
    const connection = new BufferedConnection({
      send: (bytes) => conn.write(bytes),
      close: () => {
        if (closed) return;
        closed = true;
        conn.close();
      },
      ref: () => conn.ref(),
      unref: () => conn.unref(),
    });
    // Once we closed the connection ourselves, the pending read fails (BadResource,
    // Interrupted): that is the end we asked for, not an error.
    readLines(conn.readable, onLine, () => closed).then((error) => connection.finish(error));
    return connection;
  },
  hostname: () => deno().hostname(),
};
