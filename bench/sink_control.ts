/**
 * What the client benchmarks share: the point they send, and the control
 * channel of `bench/sink.mjs` (count, reset and wait for the lines it got).
 *
 * @module
 */

import * as net from "node:net";
import type { Client } from "../mod.ts";

export const HOST = "127.0.0.1";

export const METRICS = ["sys.cpu.user", "sys.cpu.system", "app.requests", "app.latency"];
export const CPUS = ["0", "1", "2", "3", "4", "5", "6", "7"];

/** The point every figure sends: three tags, a fresh tags object per call, as callers write it. */
export function sendPoint(client: Client, i: number): void {
  client.send(METRICS[i & 3], i * 0.5, { host: "web01", dc: "eu-west-1", cpu: CPUS[i & 7] });
}

/** The same point with a timestamp the caller read once (README's advice for hot loops). */
export function sendPointAt(client: Client, i: number, ts: number): void {
  client.send(METRICS[i & 3], i * 0.5, { host: "web01", dc: "eu-west-1", cpu: CPUS[i & 7] }, ts);
}

/** The sink's control channel. */
export interface SinkControl {
  /** Lines the sink counted since the last reset. */
  lines(): Promise<number>;
  /** Sets the count to 0. */
  reset(): Promise<void>;
  /** Resolves when the sink has counted `n` lines, or rejects after `timeoutMs`. */
  waitForLines(n: number, timeoutMs?: number): Promise<void>;
  close(): void;
}

/** Connects to the sink's control port. */
export function openSinkControl(port: number): Promise<SinkControl> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port, noDelay: true });
    socket.setEncoding("utf8");
    let buffered = "";
    const waiters: ((line: string) => void)[] = [];
    socket.on("data", (d: string) => {
      buffered += d;
      for (let i = buffered.indexOf("\n"); i !== -1; i = buffered.indexOf("\n")) {
        const line = buffered.slice(0, i);
        buffered = buffered.slice(i + 1);
        waiters.shift()?.(line);
      }
    });
    const ask = (cmd: string) => {
      const reply = new Promise<string>((r) => waiters.push(r));
      socket.write(cmd + "\n");
      return reply;
    };
    socket.once("error", reject);
    socket.once("connect", () =>
      resolve({
        lines: async () => Number((await ask("count")).split(" ")[1]),
        reset: async () => void await ask("reset"),
        async waitForLines(n, timeoutMs = 60_000) {
          let timer: ReturnType<typeof setTimeout> | undefined;
          try {
            await Promise.race([
              ask(`wait ${n}`),
              new Promise((_, reject) =>
                timer = setTimeout(() => reject(new Error(`sink saw fewer than ${n} lines`)), timeoutMs)
              ),
            ]);
          } finally {
            clearTimeout(timer);
          }
        },
        close: () => socket.destroy(),
      }));
  });
}

/** A loopback port nothing listens on (a server down). */
export function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, HOST, () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}
