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

import { BufferedConnection } from "./stream_connection.ts";
import { lineSplitter } from "./lines.ts";
import type { Connection, ConnectOptions, Transport } from "./types.ts";

interface DenoConn {
  write(p: Uint8Array): Promise<number>;
  read(p: Uint8Array): Promise<number | null>;
  close(): void;
  ref(): void;
  unref(): void;
  setNoDelay?(noDelay?: boolean): void;
}

interface DenoNamespace {
  connect(
    options: { hostname: string; port: number; transport?: "tcp"; signal?: AbortSignal },
  ): Promise<DenoConn>;
  hostname(): string;
  unrefTimer(id: number): void;
}

function deno(): DenoNamespace {
  const ns = (globalThis as { Deno?: DenoNamespace }).Deno;
  if (!ns) throw new Error("denoTransport needs the Deno runtime");
  return ns;
}

async function readLines(
  conn: DenoConn,
  connection: BufferedConnection,
  onLine: (l: string) => void,
  closedByUs: () => boolean,
) {
  const push = lineSplitter(onLine);
  const decoder = new TextDecoder();
  const buf = new Uint8Array(16 * 1024);
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      push(decoder.decode(buf.subarray(0, n), { stream: true }));
    }
    connection.finish();
  } catch (e) {
    // Once we closed the connection ourselves, the pending read fails with
    // BadResource or Interrupted: that is the end we asked for, not an error.
    connection.finish(e instanceof Error && e.name !== "BadResource" && !closedByUs() ? e : undefined);
  }
}

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
  async connect({ host, port, signal, onLine }: ConnectOptions): Promise<Connection> {
    signal.throwIfAborted();
    // The signal cancels the connect itself: an attempt left pending on an unanswered
    // SYN would hold the process until the kernel gives up (minutes).
    const attempt = deno().connect({ hostname: host, port, transport: "tcp", signal });
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => {
        // A connect that completes after the abort is closed at once.
        attempt.then((c) => c.close(), () => {});
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
    });
    let conn: DenoConn;
    try {
      conn = await Promise.race([attempt, aborted]);
    } finally {
      signal.removeEventListener("abort", onAbort!);
    }
    conn.setNoDelay?.(true);
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
    readLines(conn, connection, onLine, () => closed);
    return connection;
  },
  hostname: () => deno().hostname(),
  unrefTimer(timer) {
    // Deno's timers are numbers, or Node-style Timeout objects (Node compatibility mode).
    if (typeof timer === "number") deno().unrefTimer(timer);
    else (timer as { unref?: () => void }).unref?.();
  },
};
