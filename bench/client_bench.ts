/**
 * One benchmark run on the runtime that executes it (Deno, Bun, or Node on the
 * tsc build). Started by `bench/run.mjs` with the sink's ports; prints one line
 * `RESULT <json>` with every figure of this run.
 *
 * Usage: <runtime> bench/client_bench.ts main|memory|baseline|cardinality|ratio <dataPort> <controlPort>
 *
 * `ratio` runs only the figures of "client ÷ raw" (the two default-timestamp loops and the
 * raw limit), for `node bench/run.mjs --only ratio` while working on `send()`.
 *
 * @module
 */

import * as net from "node:net";
import process from "node:process";
import { setImmediate } from "node:timers";
import { Client, PutEncoder } from "../mod.ts";
import type { Transport } from "../src/transport/types.ts";
import { closedPort, CPUS, HOST, METRICS, openSinkControl, sendPoint, sendPointAt } from "./sink_control.ts";

const POINTS = 1_000_000;
const CHUNK = 1_000;
const SAMPLE = 1_000;
const MEMORY_SENDS = 5_000_000;
const MEMORY_QSIZE = 100_000;
const RATE_MPS = 50_000;
const RATE_POINTS = 250_000;
const RAW_CHUNK_BYTES = 64 * 1024;
const CARDINALITY_SENDS = 1_000_000;

const runtime = detectRuntime();
const [dataPort, controlPort] = process.argv.slice(-2).map(Number);
if (!(dataPort > 0 && controlPort > 0)) throw new Error("usage: client_bench <dataPort> <controlPort>");

const control = await openSinkControl(controlPort);
const sinkLines = () => control.lines();
const resetSink = () => control.reset();
const waitForLines = (n: number, timeoutMs?: number) => control.waitForLines(n, timeoutMs);

// --- helpers --------------------------------------------------------------------------------

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// setImmediate, not setTimeout(0): Node clamps the latter to 1 ms, which alone would cap
// 1,000 chunks at 1 s. node:timers has it on all three runtimes; pending I/O runs first.
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

function gc(): void {
  const g = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (g.Bun) g.Bun.gc(true);
  else if (g.gc) g.gc();
  else throw new Error("no gc(): run Node and Deno with --expose-gc");
}

function detectRuntime(): "deno" | "bun" | "node" {
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  return g.Deno ? "deno" : g.Bun ? "bun" : "node";
}

function connect(options: ConstructorParameters<typeof Client>[1]): Promise<Client> {
  // The points repeat 32 (metric, tags) pairs within each second: the duplicate check would
  // drop all but those. These figures are the writer's; dedup has its own below.
  return Client.connect(HOST, { port: dataPort, hostTag: false, dedup: false, ...options });
}

// --- 1 + 2: end-to-end throughput and send() cost ---------------------------------------------

interface Throughput {
  metricsPerSecond: number;
  sendNsMedian: number;
  dropped: number;
}

async function endToEnd(mode: "sync" | "chunked" | "syncTimestamp"): Promise<Throughput> {
  // qsize 0 (unbounded): nothing may drop for this figure.
  const client = await connect({ qsize: 0 });
  await resetSink();
  const samples: number[] = [];
  const start = performance.now();
  if (mode === "syncTimestamp") {
    const ts = Math.floor(Date.now() / 1000);
    for (let base = 0; base < POINTS; base += SAMPLE) {
      const t = performance.now();
      for (let i = base; i < base + SAMPLE; i++) sendPointAt(client, i, ts);
      samples.push(performance.now() - t);
    }
  } else if (mode === "sync") {
    for (let base = 0; base < POINTS; base += SAMPLE) {
      const t = performance.now();
      for (let i = base; i < base + SAMPLE; i++) sendPoint(client, i);
      samples.push(performance.now() - t);
    }
  } else {
    for (let base = 0; base < POINTS; base += CHUNK) {
      const t = performance.now();
      for (let i = base; i < base + CHUNK; i++) sendPoint(client, i);
      samples.push(performance.now() - t);
      await yieldToLoop();
    }
  }
  await waitForLines(POINTS);
  const seconds = (performance.now() - start) / 1000;
  const stats = await client.close();
  return {
    metricsPerSecond: POINTS / seconds,
    sendNsMedian: (median(samples) * 1e6) / SAMPLE,
    dropped: stats.dropped.total,
  };
}

// --- 3: the raw limit -----------------------------------------------------------------------

/**
 * The lines the client sends, pre-formatted, joined into chunks of at most 64 KiB
 * and encoded once: the raw figure is the socket's, not string building's.
 */
function rawChunks(): Uint8Array[] {
  const encoder = new PutEncoder();
  const utf8 = new TextEncoder();
  const chunks: Uint8Array[] = [];
  let chunk = "";
  for (let i = 0; i < POINTS; i++) {
    const line = encoder.encode(METRICS[i & 3], i * 0.5, {
      host: "web01",
      dc: "eu-west-1",
      cpu: CPUS[i & 7],
    });
    if (chunk.length + line.length > RAW_CHUNK_BYTES) {
      chunks.push(utf8.encode(chunk));
      chunk = "";
    }
    chunk += line;
  }
  chunks.push(utf8.encode(chunk));
  return chunks;
}

interface DenoConn {
  write(p: Uint8Array): Promise<number>;
  close(): void;
}
interface BunRawSocket {
  write(data: Uint8Array): number;
  end(): void;
}

/** Writes every chunk with the runtime's own socket API; resolves when all are handed to the OS. */
async function writeRaw(chunks: Uint8Array[]): Promise<void> {
  const g = globalThis as {
    Deno?: { connect(o: { hostname: string; port: number }): Promise<DenoConn> };
    Bun?: {
      connect(o: {
        hostname: string;
        port: number;
        socket: { drain(s: BunRawSocket): void; data(): void; close(): void };
      }): Promise<BunRawSocket>;
    };
  };
  if (runtime === "deno") {
    const conn = await g.Deno!.connect({ hostname: HOST, port: dataPort });
    for (const chunk of chunks) {
      let bytes = chunk;
      while (bytes.length > 0) bytes = bytes.subarray(await conn.write(bytes));
    }
    conn.close();
    return;
  }
  if (runtime === "bun") {
    let resume: (() => void) | undefined;
    const socket = await g.Bun!.connect({
      hostname: HOST,
      port: dataPort,
      socket: { drain: () => resume?.(), data() {}, close() {} },
    });
    for (const chunk of chunks) {
      let bytes = chunk;
      for (;;) {
        const n = socket.write(bytes);
        if (n < 0) throw new Error("raw socket closed");
        if (n === bytes.length) break;
        bytes = bytes.subarray(n);
        await new Promise<void>((r) => resume = r);
      }
    }
    socket.end();
    return;
  }
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: HOST, port: dataPort, noDelay: true }, () => resolve(s));
    s.once("error", reject);
  });
  for (const chunk of chunks) {
    if (!socket.write(chunk)) await new Promise((r) => socket.once("drain", r));
  }
  socket.end();
}

async function rawLimit(): Promise<number> {
  const chunks = rawChunks();
  await resetSink();
  const start = performance.now();
  await writeRaw(chunks);
  await waitForLines(POINTS);
  return POINTS / ((performance.now() - start) / 1000);
}

// --- 4: burst delivery ----------------------------------------------------------------------

async function burst(): Promise<{ delivered: number; dropped: number }> {
  const client = await connect({}); // default qsize (100,000)
  await resetSink();
  for (let i = 0; i < POINTS; i++) sendPoint(client, i);
  const stats = await client.close();
  await waitForLines(stats.sent, 10_000);
  return { delivered: (await sinkLines()) / POINTS, dropped: stats.dropped.queueFull };
}

// --- 5: memory bound with the server down -----------------------------------------------------

async function memoryBound() {
  const port = await closedPort();
  // dedup off: the points repeat within a second, and the figure is the queue's.
  const client = new Client(HOST, { port, qsize: MEMORY_QSIZE, hostTag: false, dedup: false });
  gc();
  const before = process.memoryUsage();
  let peakHeap = before.heapUsed;
  for (let i = 0; i < MEMORY_SENDS; i++) {
    sendPoint(client, i);
    if (i % 250_000 === 0) peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  }
  const after = process.memoryUsage();
  peakHeap = Math.max(peakHeap, after.heapUsed);
  gc();
  const retained = process.memoryUsage().heapUsed;
  const stats = client.stats();
  await client.close({ timeoutMs: 0 });
  const MiB = 1024 * 1024;
  return {
    heapPeakGrowthMiB: (peakHeap - before.heapUsed) / MiB,
    heapRetainedGrowthMiB: (retained - before.heapUsed) / MiB,
    rssGrowthMiB: (Math.max(after.rss, process.memoryUsage().rss) - before.rss) / MiB,
    dropped: stats.dropped.queueFull,
    queued: stats.queued,
  };
}

/**
 * The memory figure's loop with no client: the same 5,000,000 fresh tags objects and
 * values, kept reachable just long enough to be allocated. What the runtime's heap and
 * RSS grow by for the caller's own garbage, so the client's share can be told apart.
 */
function callerLoopBaseline() {
  const keep: unknown[] = [undefined];
  gc();
  const before = process.memoryUsage();
  let peakHeap = before.heapUsed;
  for (let i = 0; i < MEMORY_SENDS; i++) {
    keep[0] = { host: "web01", dc: "eu-west-1", cpu: CPUS[i & 7], value: i * 0.5, metric: METRICS[i & 3] };
    if (i % 250_000 === 0) peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  }
  const after = process.memoryUsage();
  peakHeap = Math.max(peakHeap, after.heapUsed);
  const MiB = 1024 * 1024;
  return {
    heapPeakGrowthMiB: (peakHeap - before.heapUsed) / MiB,
    rssGrowthMiB: (after.rss - before.rss) / MiB,
  };
}

// --- 6: rate limit accuracy -----------------------------------------------------------------

async function rateLimit() {
  const client = await connect({ qsize: 0, mps: RATE_MPS });
  await resetSink();
  const start = performance.now();
  for (let i = 0; i < RATE_POINTS; i++) sendPoint(client, i);
  // Sample the sink's count to measure the rate after the first second's burst.
  const samples: { t: number; lines: number }[] = [];
  for (;;) {
    const lines = await sinkLines();
    samples.push({ t: performance.now() - start, lines });
    if (lines >= RATE_POINTS) break;
    if (performance.now() - start > 30_000) throw new Error("rate limit run took more than 30 s");
    await new Promise((r) => setTimeout(r, 50));
  }
  const totalSeconds = samples[samples.length - 1].t / 1000;
  await client.close();
  // Steady state: from the first sample past the burst (one second's worth) plus 10 %, to the end.
  const from = samples.find((s) => s.lines >= RATE_MPS * 1.1)!;
  const last = samples[samples.length - 1];
  return {
    steadyRate: (last.lines - from.lines) / ((last.t - from.t) / 1000),
    totalSeconds,
    // What a perfect bucket gives: the burst at once, the rest at mps.
    idealSeconds: (RATE_POINTS - RATE_MPS) / RATE_MPS,
  };
}

// --- 7: high-cardinality tags ------------------------------------------------------------------

/** A transport whose connect never completes: send() alone is measured, into a dropping queue. */
const nowhere: Transport = { name: "nowhere", connect: () => new Promise(() => {}) };

/**
 * send() with a tag set seen before against one with a `request_id` never seen before,
 * 1,000,000 each, the timestamp passed (one second), to a client that never connects
 * (qsize 10,000: the queue drops its oldest). The ids are made alike for both, outside the
 * timed loops. Then the
 * heap after 1,000,000 distinct tag sets.
 */
function cardinality() {
  const ts = Math.floor(Date.now() / 1000);
  const time = (unique: boolean, dedup: boolean) => {
    const client = new Client(HOST, { transport: nowhere, hostTag: "web01", qsize: 10_000, dedup });
    const samples: number[] = [];
    const ids: string[] = new Array(SAMPLE);
    for (let base = 0; base < CARDINALITY_SENDS; base += SAMPLE) {
      // The ids are made before the clock starts: making a string of a new number is the
      // caller's cost (and on Deno about as much as the send).
      for (let j = 0; j < SAMPLE; j++) ids[j] = "r" + (unique ? base + j : 7);
      const t = performance.now();
      for (let j = 0; j < SAMPLE; j++) {
        client.send("http.requests", base + j, { route: "home", request_id: ids[j], dc: "eu" }, ts);
      }
      samples.push(performance.now() - t);
    }
    client.close({ timeoutMs: 0 });
    return (median(samples) * 1e6) / SAMPLE;
  };
  const repeatedNs = time(false, false);
  const neverSeenNs = time(true, false);
  const neverSeenDedupNs = time(true, true);
  // Memory: a fresh client (dedup on), 1,000,000 distinct tag sets.
  gc();
  const before = process.memoryUsage().heapUsed;
  let peak = before;
  const client = new Client(HOST, { transport: nowhere, hostTag: "web01", qsize: 10_000 });
  for (let i = 0; i < CARDINALITY_SENDS; i++) {
    client.send("http.requests", i, { route: "home", request_id: "r" + i, dc: "eu" }, ts);
    if (i % 100_000 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed);
  }
  peak = Math.max(peak, process.memoryUsage().heapUsed);
  gc();
  const retained = process.memoryUsage().heapUsed;
  client.close({ timeoutMs: 0 });
  const MiB = 1024 * 1024;
  return {
    repeatedNs,
    neverSeenNs,
    neverSeenDedupNs,
    heapPeakGrowthMiB: (peak - before) / MiB,
    heapRetainedGrowthMiB: (retained - before) / MiB,
  };
}

// --- 8: client ÷ raw alone ----------------------------------------------------------------------

/** The figures "client ÷ raw" is made of, in the order the main scenario takes them. */
async function ratio() {
  const sync = await endToEnd("sync");
  const chunked = await endToEnd("chunked");
  const raw = await rawLimit();
  return {
    syncPct: (100 * sync.metricsPerSecond) / raw,
    chunkedPct: (100 * chunked.metricsPerSecond) / raw,
    syncSendNs: sync.sendNsMedian,
    chunkedSendNs: chunked.sendNsMedian,
    rawMetricsPerSecond: raw,
  };
}

// --- the run --------------------------------------------------------------------------------

// The memory figure and its baseline run in processes of their own, so that nothing else has
// grown their heap or RSS.
const scenario = process.argv[process.argv.length - 3];
const result = scenario === "memory"
  ? { runtime, memory: await memoryBound() }
  : scenario === "baseline"
  ? { runtime, baseline: callerLoopBaseline() }
  : scenario === "cardinality"
  ? { runtime, cardinality: cardinality() }
  : scenario === "ratio"
  ? { runtime, ratio: await ratio() }
  : {
    runtime,
    sync: await endToEnd("sync"),
    chunked: await endToEnd("chunked"),
    syncTimestamp: await endToEnd("syncTimestamp"),
    rawMetricsPerSecond: await rawLimit(),
    burst: await burst(),
    rate: await rateLimit(),
  };
control.close();
console.log("RESULT " + JSON.stringify(result));
