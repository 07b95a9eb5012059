// What one call costs on the caller's thread, in ns: a bound counter's inc(), a
// histogram's record(), a look-up by name and tags, and send() as a per-request
// handler calls it (the same series in one second: dropped as duplicates) and
// with dedup off (each point queued). A discarding transport; the process's CPU time
// over each loop, per call. Usage: deno run -A bench/app/meters_micro.ts | bun … | node (24) …

import process from "node:process";
import { Client } from "../../mod.ts";
import type { Transport } from "../../src/transport/types.ts";

/** Connects at once and throws every write away. */
const discard: Transport = {
  name: "discard",
  connect: () =>
    Promise.resolve({
      write: (_data: Uint8Array, done: (error?: Error) => void) => {
        queueMicrotask(() => done());
        return true;
      },
      ready: () => Promise.resolve(),
      closed: new Promise<Error | undefined>(() => {}),
      end() {},
      destroy() {},
      ref() {},
      unref() {},
    }),
  hostname: () => "bench",
};

/** Median ns per call of `fn` over `rounds` rounds of `n` calls. */
async function measure(n: number, rounds: number, fn: (i: number) => void): Promise<number> {
  const results: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // CPU time, not the wall clock: on a shared machine the process waits for a core at times.
    const start = process.cpuUsage();
    for (let i = 0; i < n; i++) fn(i);
    const used = process.cpuUsage(start);
    results.push(((used.user + used.system) * 1e3) / n);
    await new Promise((resolve) => setTimeout(resolve, 0)); // let the writer drain
  }
  results.sort((a, b) => a - b);
  return results[results.length >> 1];
}

const client = new Client("bench", { transport: discard, heartbeatMs: 0 });
const plain = new Client("bench", { transport: discard, heartbeatMs: 0, dedup: false });
const counter = client.counter("http.requests", { route: "/", status: 200 });
const histogram = client.histogram("http.latency", { route: "/" });
const statuses = [200, 200, 200, 404];

const figures: Record<string, number> = {
  "counter.inc()": await measure(10_000_000, 7, () => counter.inc()),
  "histogram.record(v)": await measure(5_000_000, 7, (i) => histogram.record(i & 1023)),
  "counter(name, { route, status }).inc()": await measure(
    1_000_000,
    7,
    (i) => client.counter("http.requests", { route: "/", status: statuses[i & 3] }).inc(),
  ),
  "send(), duplicates (dedup on)": await measure(
    1_000_000,
    7,
    (i) => client.send("http.requests", 1, { route: "/", status: statuses[i & 3] }),
  ),
  "send(), queued (dedup off)": await measure(
    200_000,
    7,
    (i) => plain.send("http.requests", 1, { route: "/", status: statuses[i & 3] }),
  ),
};
await client.close();
await plain.close();
const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
console.log(JSON.stringify({ runtime, ns: figures }));
