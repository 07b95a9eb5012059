/**
 * The `node:net` transport. Works on Node, and on Bun and Deno through their
 * Node compatibility.
 *
 * `socket.write()` first tries to write to the kernel synchronously, which is
 * what lets the client deliver a synchronous burst of `send()` calls while
 * the caller still holds the event loop.
 *
 * @module
 */

import * as net from "node:net";
import * as os from "node:os";
import { lineSplitter } from "./lines.ts";
import type { Connection, ConnectOptions, Transport } from "./types.ts";

class NodeConnection implements Connection {
  readonly closed: Promise<Error | undefined>;
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

  write(data: string, done: (error?: Error) => void): boolean {
    if (this.#ended || this.#socket.destroyed) {
      queueMicrotask(() => done(this.#error ?? new Error("connection closed")));
      return false;
    }
    return this.#socket.write(data, (e) => done(e ?? undefined));
  }

  ready(): Promise<void> {
    const socket = this.#socket;
    if (socket.destroyed) return Promise.reject(this.#error ?? new Error("connection closed"));
    if (!socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onDrain = () => {
        socket.off("close", onClose);
        resolve();
      };
      const onClose = () => {
        socket.off("drain", onDrain);
        reject(this.#error ?? new Error("connection closed"));
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
 * Connects with `node:net`.
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
  connect({ host, port, signal, onLine }: ConnectOptions): Promise<Connection> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const socket = net.connect({ host, port, noDelay: true });
      const onAbort = () => {
        socket.destroy();
        reject(signal.reason);
      };
      const onError = (e: Error) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      socket.once("error", onError);
      socket.once("connect", () => {
        signal.removeEventListener("abort", onAbort);
        socket.off("error", onError);
        resolve(new NodeConnection(socket, onLine));
      });
    });
  },
  hostname: () => os.hostname(),
  unrefTimer(timer) {
    (timer as { unref?: () => void }).unref?.();
  },
};
