// Soak: sends steadily for a long time (default 10 minutes) to a loopback
// server that is restarted every 30 s, and prints memory, open handles and
// the client's accounting every 30 s. Not part of the test suite.
//
//   npm run soak                                  # Deno, 10 minutes
//   POTSDB_SOAK_MS=120000 npm run soak            # 2 minutes
//   bun bench/soak.ts  |  node build/bench/soak.js
//
// Settings (env): POTSDB_SOAK_MS (600000), POTSDB_SOAK_RESTART_MS (30000),
// POTSDB_SOAK_DOWN_MS (server down time per restart, 1000),
// POTSDB_SOAK_RATE (points per second, 20000), POTSDB_SOAK_QSIZE (100000).

import * as net from "node:net";
import process from "node:process";
import { Client, type ClientStats } from "../mod.ts";

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const DURATION_MS = env("POTSDB_SOAK_MS", 600_000);
const RESTART_MS = env("POTSDB_SOAK_RESTART_MS", 30_000);
const DOWN_MS = env("POTSDB_SOAK_DOWN_MS", 1000);
const RATE = env("POTSDB_SOAK_RATE", 20_000);
const QSIZE = env("POTSDB_SOAK_QSIZE", 100_000);
const REPORT_MS = 30_000;
const TICK_MS = 10;

const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : `node ${process.version}`;

// ---- a line-counting server that can be stopped and started on the same port ----

let received = 0;
let partial = 0; // bytes of an unfinished line at the end of a connection
let serverConnections = 0;
const sockets = new Set<net.Socket>();
let server: net.Server | undefined;
let port = 0;

function startServer(): Promise<void> {
  const s = net.createServer((socket) => {
    serverConnections++;
    sockets.add(socket);
    socket.on("data", (chunk: Uint8Array) => {
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) received++;
      const last = chunk.lastIndexOf(10);
      partial = last === -1 ? partial + chunk.length : chunk.length - last - 1;
    });
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  server = s;
  return new Promise((resolve, reject) => {
    s.once("error", reject);
    s.listen(port, "127.0.0.1", () => {
      port = (s.address() as net.AddressInfo).port;
      resolve();
    });
  });
}

function stopServer(): Promise<void> {
  const s = server;
  server = undefined;
  for (const socket of sockets) socket.destroy();
  return new Promise((resolve) => s ? s.close(() => resolve()) : resolve());
}

// ---- reporting ----

function handles(): string {
  const p = process as unknown as { getActiveResourcesInfo?: () => string[] };
  if (typeof p.getActiveResourcesInfo !== "function") return "n/a";
  const counts = new Map<string, number>();
  for (const r of p.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
  return [...counts].map(([k, v]) => `${k}:${v}`).join(",") || "none";
}

const mb = (n: number) => (n / 1048576).toFixed(1);

function report(label: string, s: ClientStats): void {
  const m = process.memoryUsage();
  const balanced = s.accepted === s.sent + s.queued + s.dropped.total;
  console.log(
    `${label.padStart(6)} rss ${mb(m.rss)} MB heap ${mb(m.heapUsed)} MB | handles ${handles()} | ` +
      `accepted ${s.accepted} sent ${s.sent} queued ${s.queued} dropped ${s.dropped.total} ` +
      `(full ${s.dropped.queueFull}, closed ${s.dropped.closed}) ${
        balanced ? "balanced" : "NOT BALANCED"
      } | ` +
      `received ${received} (unreceived ${s.sent - received}) | reconnects ${s.reconnects} ` +
      `connect failures ${s.connectFailures} | server connections ${serverConnections}`,
  );
}

// ---- the run ----

await startServer();
console.log(
  `soak on ${runtime}: ${DURATION_MS / 1000} s, ${RATE} points/s, server restarted every ` +
    `${RESTART_MS / 1000} s (down ${DOWN_MS} ms), qsize ${QSIZE}, port ${port}`,
);
const client = new Client("127.0.0.1", {
  port,
  hostTag: "soak",
  qsize: QSIZE,
  reconnect: { initialMs: 50, maxMs: 1000 },
  connectTimeoutMs: 2000,
});
let escaped = 0;
process.on("unhandledRejection", () => escaped++);

const t0 = Date.now();
let sentPoints = 0;
let nextRestart = t0 + RESTART_MS;
let nextReport = t0 + REPORT_MS;
let restarts = 0;
let restarting = false;

while (Date.now() - t0 < DURATION_MS) {
  const now = Date.now();
  // Keep the rate by catching up with the clock (a stalled loop sends a burst).
  const due = Math.floor(((now - t0) / 1000) * RATE);
  for (; sentPoints < due; sentPoints++) {
    client.send("soak.metric", sentPoints, { shard: String(sentPoints % 16) }, { timestamp: 1700000000 });
  }
  if (now >= nextRestart && !restarting) {
    nextRestart += RESTART_MS;
    restarting = true;
    restarts++;
    stopServer()
      .then(() => new Promise((r) => setTimeout(r, DOWN_MS)))
      .then(startServer)
      .then(() => restarting = false, (e) => {
        console.error("restart failed:", e);
        restarting = false;
      });
  }
  if (now >= nextReport) {
    nextReport += REPORT_MS;
    report(`${Math.round((now - t0) / 1000)}s`, client.stats());
  }
  await new Promise((r) => setTimeout(r, TICK_MS));
}

while (restarting) await new Promise((r) => setTimeout(r, 50));
const t1 = Date.now();
const final = await client.close({ timeoutMs: 10_000 });
const closeMs = Date.now() - t1;
await new Promise((r) => setTimeout(r, 500)); // let the server read the tail
report("final", final);
console.log(
  `summary: ${restarts} restarts, close() took ${closeMs} ms, ${escaped} unhandled rejections, ` +
    `${final.sent - received} lines written but not received (lost in kernel buffers at restarts; ` +
    `telnet is at-most-once for them), ${partial} bytes of a cut line`,
);
await stopServer();
