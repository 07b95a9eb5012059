// The instrumentation's own cost per request, without HTTP: a variant's observe() called
// as a handler would, in batches of 1,000 with a macrotask turn between them (so that
// what a library defers, a datagram, a socket write, an export, runs and is counted
// too), against the same loop with "none", alternated. Less at the mercy of a busy
// machine than the HTTP figures. Run one variant per process (`none <variant>`): what one
// library leaves queued (hot-shots' datagrams) must not land on the next one's rounds.
// Usage: <runtime> bench/app/observe.ts <tcpPort> <udpPort> <otlpPort> [variants…]
// Prints one JSON line: CPU ns per request by variant (median of 7 rounds, "none" subtracted).

import process from "node:process";
import { instrument } from "./instrument.ts";

const argv = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);
const [tcpPort, udpPort, otlpPort, ...wanted] = argv;
const variants = wanted.length ? wanted : ["none", "meters", "send", "otel", "otlp", "prom", "statsd"];
const BATCH = 1000;
/** A round runs whole batches for at least this long (hot-shots takes ~50 µs a request here). */
const ROUND_MS = 400;
const ROUNDS = 7;
const statuses = [200, 200, 200, 404];

// A macrotask turn without a timer's clamping (Node's setTimeout(0) is 1 ms): I/O runs in it.
const immediate = (globalThis as { setImmediate?: (f: () => void) => void }).setImmediate;
const channel = new MessageChannel();
const turn = () =>
  new Promise<void>((resolve) => {
    if (immediate) return immediate(resolve);
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(0);
  });

/**
 * CPU ns per request of one round: batches of BATCH observe() calls, each followed by a turn.
 * The process's CPU time (all its threads), not the wall clock: on a shared machine a process
 * waits for a core for long stretches, and that is not what the library costs.
 */
async function round(observe: (route: string, status: number, ms: number, bytes: number) => void) {
  const start = performance.now();
  const cpu = process.cpuUsage();
  let calls = 0;
  while (calls < 5 * BATCH || performance.now() - start < ROUND_MS) {
    for (let i = 0; i < BATCH; i++) observe("/", statuses[i & 3], (i & 63) * 0.173, 3);
    calls += BATCH;
    await turn();
  }
  const used = process.cpuUsage(cpu);
  return ((used.user + used.system) * 1e3) / calls;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const set = await Promise.all(variants.map((v) => instrument(v, tcpPort, udpPort, otlpPort)));
const samples: number[][] = variants.map(() => []);
await round(set[0].observe); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  // Alternated, so that a slow moment of the machine does not land on one variant.
  for (let v = 0; v < variants.length; v++) {
    const k = (v + r) % variants.length;
    samples[k].push(await round(set[k].observe));
  }
}
const none = variants.indexOf("none");
const out: Record<string, number> = {};
variants.forEach((v, k) => {
  out[v] = Math.round(median(samples[k]) - (none >= 0 ? median(samples[none]) : 0));
});
await Promise.all(set.map((s) => Promise.race([s.close(), new Promise((r) => setTimeout(r, 2000))])));
console.log(JSON.stringify(out));
channel.port1.close();
(globalThis as { Deno?: { exit(code: number): never } }).Deno?.exit(0) ??
  (globalThis as unknown as { process: { exit(code: number): never } }).process.exit(0);
