/**
 * What one `send()` costs, with nothing but the client in the loop: a transport
 * that discards its writes, 1,000,000 calls timed per 1,000 (the median), best of
 * several rounds, each piece of the default-timestamp path on its own.
 *
 * Usage: deno run -A bench/send_bench.ts | bun bench/send_bench.ts | node build/bench/send_bench.js
 *
 * @module
 */

import process from "node:process";
import { Client } from "../mod.ts";
import type { Connection, Transport } from "../src/transport/types.ts";
import { CPUS, METRICS } from "./sink_control.ts";

const POINTS = 1_000_000;
const SAMPLE = 1_000;
const ROUNDS = Number(process.env.ROUNDS ?? 8);

/** A transport whose connection takes every write at once and throws it away. */
const discard: Transport = {
  name: "discard",
  connect: () => {
    const conn: Connection = {
      // Confirmed at once, as the default transport does when the kernel took the write.
      write: (_data, done) => {
        done();
        return true;
      },
      ready: () => Promise.resolve(),
      closed: new Promise(() => {}),
      end() {},
      destroy() {},
      ref() {},
      unref() {},
    };
    return Promise.resolve(conn);
  },
};

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** ns per call of `body(i)`, the median of 1,000-call samples, best of ROUNDS rounds. */
function time(body: (i: number) => void): number {
  let best = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    const samples: number[] = [];
    for (let base = 0; base < POINTS; base += SAMPLE) {
      const t = performance.now();
      for (let i = base; i < base + SAMPLE; i++) body(i);
      samples.push(performance.now() - t);
    }
    best = Math.min(best, (median(samples) * 1e6) / SAMPLE);
  }
  return best;
}

const client = await Client.connect("127.0.0.1", {
  transport: discard,
  hostTag: false,
  dedup: false,
  qsize: 0,
});
const ts = Math.floor(Date.now() / 1000);
// Values of 16-17 significant digits (a ratio, a mean): no short decimal form.
const LONG = Array.from({ length: 1024 }, (_, i) => (i + 1) / 7 + Math.random());
let sink = 0;
const figures = {
  "send(), default timestamp, i * 0.5": time((i) =>
    client.send(METRICS[i & 3], i * 0.5, { host: "web01", dc: "eu-west-1", cpu: CPUS[i & 7] })
  ),
  "send(), timestamp passed, i * 0.5": time((i) =>
    client.send(METRICS[i & 3], i * 0.5, { host: "web01", dc: "eu-west-1", cpu: CPUS[i & 7] }, ts)
  ),
  "send(), default timestamp, integer i": time((i) =>
    client.send(METRICS[i & 3], i, { host: "web01", dc: "eu-west-1", cpu: CPUS[i & 7] })
  ),
  "send(), timestamp passed, integer i": time((i) =>
    client.send(METRICS[i & 3], i, { host: "web01", dc: "eu-west-1", cpu: CPUS[i & 7] }, ts)
  ),
  "send(), timestamp passed, ~17 digits": time((i) =>
    client.send(METRICS[i & 3], LONG[i & 1023], { host: "web01", dc: "eu-west-1", cpu: CPUS[i & 7] }, ts)
  ),
  "Date.now()": time(() => {
    sink += Date.now();
  }),
  "JSON.stringify(i * 0.5)": time((i) => {
    sink += JSON.stringify(i * 0.5).length;
  }),
  "String(i)": time((i) => {
    sink += String(i).length;
  }),
  "the caller's tags object alone": time((i) => {
    const t = { host: "web01", dc: "eu-west-1", cpu: CPUS[i & 7] };
    sink += t.cpu.length;
  }),
};
await client.close({ timeoutMs: 0 });
const runtime = (globalThis as { Deno?: unknown }).Deno
  ? "deno"
  : (globalThis as { Bun?: unknown }).Bun
  ? "bun"
  : "node";
for (const [name, ns] of Object.entries(figures)) {
  console.log(`${runtime} ${name.padEnd(40)} ${ns.toFixed(1)} ns`);
}
if (sink === 42) console.log("");
