/**
 * The `Bun.connect` transport.
 *
 * `socket.write()` is a synchronous attempt that returns the bytes the
 * kernel took; the rest is written from the `drain` handler. Not the
 * default on Bun: `Bun.connect` cannot cancel a connect under way, so an
 * unanswered one holds the process until the kernel gives up; Bun's
 * `node:net` (the default) is as fast and can.
 *
 * @module
 */

import * as os from "node:os";
import { BufferedConnection } from "./stream_connection.ts";
import { lineSplitter, raceSignal, runtimeNamespace } from "../runtime.ts";
import type { Connection, ConnectOptions, Transport } from "./types.ts";

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
}

interface BunNamespace {
  connect(options: { hostname: string; port: number; socket: BunHandlers }): Promise<BunSocket>;
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
  async connect({ host, port, signal, onLine, keepAliveMs }: ConnectOptions): Promise<Connection> {
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
    const attempt = bun().connect({
      hostname: host,
      port,
      socket: {
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
          connection.finish(error ?? lastError);
        },
        connectError(_s, error) {
          lastError = error;
        },
      },
    });
    // A connect that completes after the abort is closed at once.
    socket = await raceSignal(attempt, signal, (s) => s.terminate());
    return connection;
  },
  hostname: () => os.hostname(),
};
