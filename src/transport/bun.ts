/**
 * The `Bun.connect` transport.
 *
 * `socket.write()` is a synchronous attempt that returns the bytes the
 * kernel took; the rest is written from the `drain` handler. Not the
 * default on Bun: `Bun.connect` cannot cancel a connect under way, so an
 * unanswered one holds the process until the kernel gives up; Bun's
 * `node:net` (the default) is as fast and can.
 *
 * With the client's `tls` option it connects with `Bun.connect({ tls })`
 * and waits for the handshake: a certificate refused fails the connect.
 *
 * @module
 */

import * as os from "node:os";
import { BufferedConnection } from "./stream_connection.ts";
import { connectionClosed, lineSplitter, raceSignal, runtimeNamespace } from "../runtime.ts";
import type { Connection, ConnectOptions, TlsOptions, Transport } from "./types.ts";

interface BunSocket {
  write(data: Uint8Array): number;
  end(): void;
  terminate(): void;
  ref(): void;
  unref(): void;
  setNoDelay?(noDelay?: boolean): boolean;
  setKeepAlive?(enable?: boolean, initialDelay?: number): boolean;
}

interface BunHandlers {
  open?(socket: BunSocket): void;
  data?(socket: BunSocket, data: Uint8Array): void;
  drain?(socket: BunSocket): void;
  close?(socket: BunSocket, error?: Error): void;
  end?(socket: BunSocket): void;
  error?(socket: BunSocket, error: Error): void;
  connectError?(socket: BunSocket, error: Error): void;
  handshake?(socket: BunSocket, success: boolean, authorizationError: Error | null): void;
}

interface BunTlsOptions {
  ca?: string | string[];
  cert?: string;
  key?: string;
  serverName?: string;
  rejectUnauthorized?: boolean;
}

interface BunNamespace {
  connect(
    options: { hostname: string; port: number; tls?: BunTlsOptions; socket: BunHandlers },
  ): Promise<BunSocket>;
}

const bun = () => runtimeNamespace<BunNamespace>("Bun", "bunTransport");

/**
 * Connects with `Bun.connect`.
 *
 * @example
 * ```ts
 * import { Client } from "@x/potsdb";
 * import { bunTransport } from "@x/potsdb/bun";
 *
 * const client = new Client("localhost", { transport: bunTransport });
 * await client.close();
 * ```
 */
export const bunTransport: Transport = {
  name: "Bun.connect",
  async connect({ host, port, signal, onLine, tls, keepAliveMs }: ConnectOptions): Promise<Connection> {
    signal.throwIfAborted();
    let socket: BunSocket | undefined;
    let closing = false;
    let lastError: Error | undefined;
    const connection = new BufferedConnection({
      send: (bytes) => socket!.write(bytes),
      close: () => {
        if (closing) return;
        closing = true;
        socket?.end();
      },
      ref: () => socket?.ref(),
      unref: () => socket?.unref(),
    });
    const push = lineSplitter(onLine);
    const decoder = new TextDecoder();
    // Bun.connect resolves once TCP is open; with TLS, the handshake handler says how it went.
    let handshook!: (error?: Error) => void;
    const secured = new Promise<void>((resolve, reject) => {
      handshook = (error) => error ? reject(error) : resolve();
    });
    secured.catch(() => {});
    const attempt = bun().connect({
      hostname: host,
      port,
      tls: tls && bunTls(tls),
      socket: {
        handshake(_s, success, authorizationError) {
          handshook(success ? undefined : authorizationError ?? new Error("TLS handshake failed"));
        },
        open(s) {
          socket = s;
          s.setNoDelay?.(true);
          if (keepAliveMs) s.setKeepAlive?.(true, keepAliveMs);
        },
        data(_s, data) {
          push(decoder.decode(data, { stream: true }));
        },
        drain() {
          connection.drain();
        },
        error(_s, error) {
          lastError ??= error;
        },
        end(s) {
          // The server closed its side: it reads no more.
          s.end();
        },
        close(_s, error) {
          handshook(connectionClosed(error ?? lastError));
          connection.finish(error ?? lastError);
        },
        connectError(_s, error) {
          lastError = error;
        },
      },
    });
    // A connect that completes after the abort is closed at once.
    socket = await raceSignal(attempt, signal, (s) => s.terminate());
    if (tls) {
      try {
        await raceSignal(secured, signal);
      } catch (e) {
        socket.terminate();
        throw e;
      }
    }
    return connection;
  },
  hostname: () => os.hostname(),
  checkTls() {},
};

function bunTls(tls: TlsOptions): BunTlsOptions {
  return {
    ca: typeof tls.ca === "string" ? tls.ca : tls.ca && [...tls.ca],
    cert: tls.cert,
    key: tls.key,
    serverName: tls.servername,
    rejectUnauthorized: tls.rejectUnauthorized ?? true,
  };
}
