/**
 * A transport over a web-standard `connect()` (the WinterTC sockets API, as
 * in Cloudflare Workers' `cloudflare:sockets`), which the caller passes in:
 * this module imports no runtime's module, so it loads everywhere.
 *
 * On Cloudflare Workers a socket belongs to the request that opened it: it
 * cannot outlive that request or be shared with another one. Make one client
 * per request (or per batch of work) and close it before the request ends,
 * e.g. with `ctx.waitUntil(client.close())`. Workers have no hostname to
 * tag points with: pass `hostTag` as a string, or `false`.
 *
 * Bundling: a Worker's bundler resolves `@x/potsdb` through the package's
 * `workerd` (or `worker`, `browser`) export condition to an entry with no
 * TCP default, so the bundle names no `node:` module and needs no
 * `nodejs_compat` flag (tested on workerd with compatibility date 2026-07-01).
 *
 * @example A Cloudflare Worker
 * ```ts ignore
 * import { connect } from "cloudflare:sockets";
 * import { Client } from "@x/potsdb";
 * import { socketsTransport } from "@x/potsdb/sockets";
 *
 * export default {
 *   fetch(request: Request, env: unknown, ctx: { waitUntil(p: Promise<unknown>): void }) {
 *     const metrics = new Client("tsd.example.com", {
 *       transport: socketsTransport(connect),
 *       hostTag: "edge",
 *     });
 *     metrics.send("edge.requests", 1, { path: new URL(request.url).pathname });
 *     ctx.waitUntil(metrics.close());
 *     return new Response("ok");
 *   },
 * };
 * ```
 *
 * @module
 */

import { OptionsError } from "../errors.ts";
import { raceSignal, readLines } from "../runtime.ts";
import { BufferedConnection } from "./stream_connection.ts";
import type { Connection, ConnectOptions, TlsOptions, Transport } from "./types.ts";

/** Where a socket connects to: `{ hostname, port }`. */
export interface SocketAddress {
  /** Host name or address. */
  hostname: string;
  /** TCP port. */
  port: number;
}

/** Options of a `connect()` call, as in `cloudflare:sockets`. */
export interface SocketOptions {
  /** `"off"` (plain TCP, the default), `"on"` (TLS) or `"starttls"`. */
  secureTransport?: "off" | "on" | "starttls";
  /** Whether the writable side stays open after the readable side ends. */
  allowHalfOpen?: boolean;
}

/** The socket a {@linkcode ConnectFunction} returns (the parts used here). */
export interface WebSocketLike {
  /** Bytes from the server. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to the server. */
  readonly writable: WritableStream<Uint8Array>;
  /** Resolves once connected; rejects when the connection fails. */
  readonly opened: Promise<unknown>;
  /** Resolves once the socket is closed (after its readable side was read or cancelled). */
  readonly closed: Promise<unknown>;
  /** Closes both sides. */
  close(): Promise<unknown>;
}

/** A `connect()` function such as the one `cloudflare:sockets` exports. */
export type ConnectFunction = (address: SocketAddress, options?: SocketOptions) => WebSocketLike;

/** Options of {@linkcode socketsTransport}. */
export interface SocketsTransportOptions {
  /**
   * Passed to `connect()`: `"on"` for TLS. Default `"off"`; a client with
   * `tls: true` asks for `"on"` too. The runtime checks the certificate
   * against its own CAs: `connect()` takes no `ca`, `cert`, `key` or
   * `servername`, so a client's `tls` object with any of them is refused.
   */
  secureTransport?: "off" | "on";
  /** The transport's name in messages. Default `"sockets"`. */
  name?: string;
}

/**
 * Makes a transport that opens connections with the given `connect()`.
 *
 * Writes go through the socket's writer one chunk at a time: each batch
 * waits for `writer.ready` (the stream's backpressure) and is confirmed when
 * the write promise resolves. The readable side is read to the end, so
 * server error lines reach the client's `server-error` event and the
 * socket's `closed` promise settles.
 *
 * @param connect the runtime's `connect()`, e.g. from `cloudflare:sockets`
 * @param options TLS and the transport's name
 * @returns the transport, to pass as the client's `transport` option
 *
 * @example
 * ```ts ignore
 * import { connect } from "cloudflare:sockets";
 * import { Client } from "@x/potsdb";
 * import { socketsTransport } from "@x/potsdb/sockets";
 *
 * const metrics = new Client("tsd.example.com:4242", {
 *   transport: socketsTransport(connect),
 *   hostTag: false,
 * });
 * metrics.send("edge.hits", 1, { colo: "AMS" });
 * await metrics.close();
 * ```
 */
export function socketsTransport(connect: ConnectFunction, options: SocketsTransportOptions = {}): Transport {
  if (typeof connect !== "function") {
    throw new OptionsError(
      'socketsTransport needs a connect() function, e.g. import { connect } from "cloudflare:sockets"',
    );
  }
  const secureTransport = options.secureTransport ?? "off";
  return {
    name: options.name ?? "sockets",
    async connect({ host, port, signal, onLine, tls }: ConnectOptions): Promise<Connection> {
      signal.throwIfAborted();
      // An IPv6 literal comes without brackets from the client; connect() wants them.
      const hostname = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
      const socket = connect({ hostname, port }, {
        secureTransport: tls ? "on" : secureTransport,
        allowHalfOpen: false,
      });
      let closing = false;
      const closeSocket = () => {
        if (closing) return;
        closing = true;
        socket.close().catch(() => {});
      };
      // `closed` rejects on a reset; the reader reports that, so nothing is left unhandled.
      socket.closed.catch(() => {});
      try {
        await raceSignal(socket.opened, signal);
      } catch (e) {
        closeSocket();
        throw e;
      }
      const writer = socket.writable.getWriter();
      const connection = new BufferedConnection({
        async send(bytes) {
          if (closing) return -1;
          await writer.ready;
          await writer.write(bytes);
          return bytes.length;
        },
        close: closeSocket,
        ref() {},
        unref() {},
      });
      // Reading fails once we closed the socket ourselves: that is a clean end.
      readLines(socket.readable, onLine, () => closing).then((error) => connection.finish(error));
      return connection;
    },
    checkTls(tls: TlsOptions) {
      const unsupported: string[] = (["ca", "cert", "key", "servername"] as const).filter((k) =>
        tls[k] !== undefined
      );
      if (tls.rejectUnauthorized === false) unsupported.push("rejectUnauthorized: false");
      if (unsupported.length > 0) {
        throw new Error(
          `connect() takes no ${
            unsupported.join(", ")
          }: use tls: true (the runtime's own CAs check the certificate)`,
        );
      }
    },
  };
}
