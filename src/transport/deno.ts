/**
 * The `Deno.connect` transport.
 *
 * `conn.write()` is asynchronous and may write part of a buffer; the
 * connection loops until each batch is written. Being asynchronous, it
 * writes nothing while a caller's synchronous loop runs, which is why the
 * default on Deno is `node:net` (Deno's writes bytes synchronously).
 *
 * With the client's `tls` option it connects with `Deno.connect` and then
 * `Deno.startTls` (or `Deno.connectTls`, for a client certificate) and waits
 * for the handshake. Deno always checks the server's certificate:
 * `rejectUnauthorized: false` is refused (use `nodeTransport`), and so is a
 * `servername` together with a client certificate.
 *
 * @module
 */

import { raceSignal, readLines, runtimeNamespace } from "../runtime.ts";
import { BufferedConnection } from "./stream_connection.ts";
import type { Connection, ConnectOptions, TlsOptions, Transport } from "./types.ts";

interface DenoConn {
  write(p: Uint8Array): Promise<number>;
  readonly readable: ReadableStream<Uint8Array>;
  close(): void;
  ref(): void;
  unref(): void;
  setNoDelay?(noDelay?: boolean): void;
  setKeepAlive?(keepAlive?: boolean): void;
}

interface DenoTlsConn extends DenoConn {
  handshake(): Promise<unknown>;
}

interface DenoNamespace {
  connect(
    options: { hostname: string; port: number; transport?: "tcp"; signal?: AbortSignal },
  ): Promise<DenoConn>;
  startTls(conn: DenoConn, options: { hostname: string; caCerts?: string[] }): Promise<DenoTlsConn>;
  connectTls(
    options: { hostname: string; port: number; caCerts?: string[]; cert?: string; key?: string },
  ): Promise<DenoTlsConn>;
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
  async connect({ host, port, signal, onLine, tls, keepAliveMs }: ConnectOptions): Promise<Connection> {
    signal.throwIfAborted();
    let conn: DenoConn;
    if (tls?.cert !== undefined) {
      // Only connectTls takes a client certificate; it takes no signal, so an unanswered
      // connect is left to the kernel, and one that completes after the abort is closed.
      const attempt = deno().connectTls({
        hostname: host,
        port,
        caCerts: caCerts(tls),
        cert: tls.cert,
        key: tls.key,
      });
      conn = await handshake(await raceSignal(attempt, signal, (c) => c.close()), signal);
    } else {
      // The signal cancels the connect itself: an attempt left pending on an unanswered
      // SYN would hold the process until the kernel gives up (minutes).
      const attempt = deno().connect({ hostname: host, port, transport: "tcp", signal });
      // A connect that completes after the abort is closed at once.
      conn = await raceSignal(attempt, signal, (c) => c.close());
      if (tls) {
        conn.setNoDelay?.(true);
        const secured = deno().startTls(conn, { hostname: tls.servername ?? host, caCerts: caCerts(tls) });
        // A TLS connection that completes after the abort may have closed already (BadResource).
        conn = await handshake(await raceSignal(secured, signal, closeQuietly), signal);
      }
    }
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
  checkTls(tls: TlsOptions) {
    if (tls.rejectUnauthorized === false) {
      throw new Error(
        "Deno.connectTls always checks the certificate: use nodeTransport for rejectUnauthorized: false",
      );
    }
    if (tls.servername !== undefined && tls.cert !== undefined) {
      throw new Error("Deno.connectTls takes no servername with a client certificate: use nodeTransport");
    }
  },
};

function caCerts(tls: TlsOptions): string[] | undefined {
  return typeof tls.ca === "string" ? [tls.ca] : tls.ca && [...tls.ca];
}

/** Completes the handshake (certificate errors surface here), or closes the connection on abort. */
async function handshake(conn: DenoTlsConn, signal: AbortSignal): Promise<DenoTlsConn> {
  try {
    await raceSignal(conn.handshake(), signal);
    return conn;
  } catch (e) {
    try {
      conn.close();
    } catch {
      // already closed
    }
    throw e;
  }
}

/** Closes `c`, which may be closed already. */
function closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch {
    // closed already
  }
}
