// Meters end to end: a counter, a gauge and a histogram reported through the
// runtime's default transport (telnet) to a real VictoriaMetrics over four reports
// (three flushes and the close), read back through /api/v1/export: names, tags,
// timestamps and values, exactly.
//
// The client runs on a virtual clock set near the real time (VictoriaMetrics keeps
// recent samples only) and moved on one second per step, so each report's timestamp
// is known; the sockets and the server are real.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Client, type Clock } from "../../mod.ts";
import {
  expectedHostTag,
  exportWhenComplete,
  leaseTsdb,
  nameMatch,
  runtime,
  sampleCount,
  sampleKey,
  type TsdbLease,
  uniquePrefix,
} from "../helpers/tsdb_env.ts";

const STEPS = 4;
const BOUNDS = [10, 100];
/** Lines per report: counter, gauge, histogram count/sum/min/max and one bucket per bound plus inf. */
const LINES = 2 + 4 + BOUNDS.length + 1;

/** Virtual time: sleeps end only when the test moves the time past them. */
class StepClock implements Clock {
  time: number;
  #sleeps: { until: number; resolve: () => void }[] = [];
  constructor(start: number) {
    this.time = start;
  }
  now(): number {
    return this.time;
  }
  sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      this.#sleeps.push({ until: this.time + ms, resolve });
      signal.addEventListener("abort", () => resolve(), { once: true });
    });
  }
  advance(ms: number): void {
    this.time += ms;
    const due = this.#sleeps.filter((s) => s.until <= this.time);
    this.#sleeps = this.#sleeps.filter((s) => s.until > this.time);
    for (const s of due) s.resolve();
  }
}

/** The values recorded in step `k` (1-based). */
const latencies = (k: number) => [5 * k, 50 * k, 500 * k];
const temperature = (k: number) => 20 + k / 2;

/** What each series holds in the report of step `k`: cumulative, but min/max of that step. */
function expectedAt(k: number): Record<string, number> {
  const all = Array.from({ length: k }, (_, i) => latencies(i + 1)).flat();
  const out: Record<string, number> = {
    "requests": (k * (k + 1)) / 2, // inc(1), inc(2), inc(3)…
    "temperature": temperature(k),
    "latency.count": all.length,
    "latency.sum": all.reduce((a, b) => a + b, 0),
    "latency.min": Math.min(...latencies(k)),
    "latency.max": Math.max(...latencies(k)),
  };
  for (const bound of BOUNDS) out[`latency.bucket le=${bound}`] = all.filter((v) => v <= bound).length;
  out["latency.bucket le=inf"] = all.length;
  return out;
}

describe(`e2e meters (${runtime})`, () => {
  let lease: TsdbLease;
  before(async () => {
    lease = await leaseTsdb();
  });
  after(async () => {
    await lease?.release();
  });

  it("reports counters, gauges and histograms that read back exactly", async () => {
    const prefix = uniquePrefix("meters");
    const host = expectedHostTag();
    // Whole seconds, a minute ago: recent enough to be kept, distinct per report.
    const base = Math.floor(Date.now() / 1000) - 60;
    const clock = new StepClock(base * 1000);
    const client = new Client("127.0.0.1", {
      port: lease.tsdb.telnetPort,
      clock,
      heartbeatMs: 0,
      reportMs: 60_000,
    });
    const tags = { route: "home" };
    const expected = new Map<string, number>();
    // The client's timers run on the virtual clock, so no real timer of its own holds the event
    // loop while a connect or a write is under way: this one does, until the test is done.
    const hold = setInterval(() => {}, 1000);
    try {
      for (let k = 1; k <= STEPS; k++) {
        client.counter(`${prefix}.requests`, tags).inc(k);
        client.gauge(`${prefix}.temperature`, tags).set(temperature(k));
        const latency = client.histogram(`${prefix}.latency`, tags, { buckets: BOUNDS });
        for (const v of latencies(k)) latency.record(v);
        const ts = base + k - 1;
        for (const [series, value] of Object.entries(expectedAt(k))) {
          const [name, le] = series.split(" ");
          const t: Record<string, string> = { host, route: "home" };
          if (le) t.le = le.slice(3);
          expected.set(sampleKey(`${prefix}.${name}`, t, ts * 1000), value);
        }
        if (k === STEPS) break; // close() writes this one
        await client.flush({ timeoutMs: 20_000 });
        clock.advance(1000);
      }
    } finally {
      // The last step's report.
      const stats = await client.close({ timeoutMs: 20_000 }).finally(() => clearInterval(hold));
      assert.equal(stats.meters.reports, STEPS, JSON.stringify(stats.meters));
      assert.equal(stats.meters.lines, STEPS * LINES);
      assert.equal(stats.sent, STEPS * LINES, JSON.stringify(stats));
      assert.equal(stats.dropped.total, 0);
    }
    assert.equal(expected.size, STEPS * LINES);

    const exported = await exportWhenComplete(lease.tsdb, nameMatch(prefix), expected.size);
    assert.equal(sampleCount(exported), expected.size, "samples stored");
    assert.equal(exported.length, LINES, "series stored");
    for (const s of exported) {
      for (let i = 0; i < s.values.length; i++) {
        const key = sampleKey(s.metric.__name__, s.metric, s.timestamps[i]);
        assert.ok(expected.has(key), `unexpected sample ${key}`);
        assert.equal(s.values[i], expected.get(key), key);
        expected.delete(key);
      }
    }
    assert.equal(expected.size, 0, `missing: ${[...expected.keys()].join(", ")}`);
  });
});
