/**
 * The `node:net` transport. Works on Node, and on Bun and Deno through their
 * Node compatibility. With the client's `tls` option it connects with
 * `node:tls` instead, and the handshake is part of the connect.
 *
 * `socket.write()` first tries to write to the kernel synchronously, which is
 * what lets the client deliver a synchronous burst of `send()` calls while
 * the caller still holds the event loop. Deno's `node:net` does so too for
 * bytes (not for strings), so this is the default on Deno as well.
 *
 * @module
 */

import * as net from "node:net";
import * as os from "node:os";
import * as tls from "node:tls";
import { connectionClosed, lineSplitter, raceSignal } from "../runtime.ts";
import type { Connection, ConnectOptions, TlsOptions, Transport } from "./types.ts";

interface Unsettled {
  done: (error?: Error) => void;
  settled: boolean;
}

class NodeConnection implements Connection {
  readonly closed: Promise<Error | undefined>;
  #unsettled: Unsettled[] = [];
  #socket: net.Socket;
  #error: Error | undefined;
  #ended = false;

  constructor(socket: net.Socket, onLine: (line: string) => void) {
    this.#socket = socket;
    const push = lineSplitter(onLine);
    socket.setEncoding("utf8");
    socket.on("data", push);
    socket.on("error", (e) => this.#error ??= e);
    // The server closing its side means it reads no more: stop writing into the void.
    socket.on("end", () => socket.destroy());
    this.closed = new Promise((resolve) => socket.once("close", () => resolve(this.#error)));
  }

  write(data: Uint8Array, done: (error?: Error) => void): boolean {
    if (this.#ended || this.#socket.destroyed) {
      queueMicrotask(() => done(connectionClosed(this.#error)));
      return false;
    }
    const entry: Unsettled = { done, settled: false };
    this.#unsettled.push(entry);
    const socket = this.#socket;
    const ok = socket.write(data, (e) => this.#settle(entry, e ?? undefined));
    // Nothing left in Node's buffers: the kernel took this write and all before it. Confirm them
    // now — Node's callbacks come on a later tick, which a caller's synchronous loop holds back
    // while the written batches would pile up, unconfirmed, in memory.
    if (socket.writableLength === 0) this.#settleAll();
    return ok;
  }

  #settle(entry: Unsettled, error: Error | undefined): void {
    if (entry.settled) return;
    // Node calls back in write order: the entry is at the front, found at once.
    this.#unsettled.splice(this.#unsettled.indexOf(entry), 1);
    entry.settled = true;
    entry.done(error);
  }

  #settleAll(): void {
    const all = this.#unsettled;
    this.#unsettled = [];
    for (const entry of all) {
      entry.settled = true;
      entry.done();
    }
  }

  ready(): Promise<void> {
    const socket = this.#socket;
    if (socket.destroyed) return Promise.reject(connectionClosed(this.#error));
    if (!socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onDrain = () => {
        socket.off("close", onClose);
        resolve();
      };
      const onClose = () => {
        socket.off("drain", onDrain);
        reject(connectionClosed(this.#error));
      };
      socket.once("drain", onDrain);
      socket.once("close", onClose);
    });
  }

  end(): void {
    this.#ended = true;
    this.#socket.end();
  }

  destroy(): void {
    this.#ended = true;
    this.#socket.destroy();
  }

  ref(): void {
    this.#socket.ref();
  }

  unref(): void {
    this.#socket.unref();
  }
}

/**
 * Connects with `node:net`, or with `node:tls` when the client has the
 * `tls` option (every setting of it is honoured).
 *
 * @example
 * ```ts
 * import { Client } from "@x/potsdb";
 * import { nodeTransport } from "@x/potsdb/node";
 *
 * const client = new Client("localhost", { transport: nodeTransport });
 * await client.close();
 * ```
 */
export const nodeTransport: Transport = {
  name: "node:net",
  async connect(
    { host, port, signal, onLine, tls: secure, keepAliveMs }: ConnectOptions,
  ): Promise<Connection> {
    signal.throwIfAborted();
    const socket = secure ? tlsConnect(host, port, secure) : net.connect({ host, port, noDelay: true });
    // Probes an idle connection, so a peer that vanished is found without traffic.
    if (keepAliveMs) socket.setKeepAlive(true, keepAliveMs);
    const opened = new Promise<void>((resolve, reject) => {
      // With TLS, "secureConnect" comes after the handshake and the certificate check.
      socket.once(secure ? "secureConnect" : "connect", resolve);
      socket.once("error", reject);
    });
    try {
      // Destroying the socket on abort cancels the connect (and the handshake) itself.
      await raceSignal(opened, signal);
    } catch (e) {
      socket.destroy();
      throw e;
    }
    return new NodeConnection(socket, onLine);
  },
  hostname: () => os.hostname(),
  checkTls() {},
};

function tlsConnect(host: string, port: number, options: TlsOptions): tls.TLSSocket {
  const socket = tls.connect({
    host,
    port,
    // SNI takes a name, not an address; the certificate is checked against the host either way.
    servername: options.servername ?? (net.isIP(host) ? undefined : host),
    ca: typeof options.ca === "string" ? options.ca : options.ca && [...options.ca],
    cert: options.cert,
    key: options.key,
    rejectUnauthorized: options.rejectUnauthorized ?? true,
  });
  socket.setNoDelay(true);
  return socket;
}
