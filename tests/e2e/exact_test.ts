// Exact arrival: 100,000 points through the runtime's default transport reach
// a real VictoriaMetrics, every one with its metric, tags, timestamp and value.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Client } from "../../mod.ts";
import { METRICS, POINTS_PER_SERIES, TAG_SETS, valueOf } from "../helpers/points.ts";
import {
  expectedHostTag,
  exportWhenComplete,
  nameMatch,
  runtime,
  sampleCount,
  sampleKey,
  uniquePrefix,
  useTsdb,
} from "../helpers/tsdb_env.ts";

describe(`e2e exact arrival (${runtime})`, () => {
  const lease = useTsdb();

  it("delivers 100,000 points with their metric, tags, timestamp and value", async () => {
    const prefix = uniquePrefix("exact");
    const host = expectedHostTag();
    // Timestamps in seconds, distinct within a series: the last
    // POINTS_PER_SERIES seconds ending five minutes ago.
    const base = Math.floor(Date.now() / 1000) - 300 - POINTS_PER_SERIES;
    const expected = new Map<string, number>();
    const client = new Client("127.0.0.1", { port: lease.tsdb.telnetPort });
    let sentCalls = 0;
    for (let j = 0; j < POINTS_PER_SERIES; j++) {
      for (let m = 0; m < METRICS; m++) {
        for (let t = 0; t < TAG_SETS.length; t++) {
          const series = m * TAG_SETS.length + t;
          const metric = `${prefix}.m${m}`;
          const value = valueOf(series, j);
          const timestamp = base + j;
          client.send(metric, value, TAG_SETS[t], timestamp);
          sentCalls++;
          const tags: Record<string, string> = { host };
          for (const [k, v] of Object.entries(TAG_SETS[t])) tags[k] = String(v);
          expected.set(sampleKey(metric, tags, timestamp * 1000), Number(value));
        }
      }
      // Let the writer run now and then, as an application would.
      if (j % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 0));
    }
    assert.equal(sentCalls, 100_000);
    assert.equal(expected.size, 100_000, "every point is a distinct sample");
    const stats = await client.close({ timeoutMs: 20_000 });
    assert.equal(stats.sent, 100_000, JSON.stringify(stats));
    assert.equal(stats.dropped.total, 0);
    assert.equal(stats.serverErrors, 0, String(stats.lastError));
    // A clean close is not a problem: it used to leave "the server closed the connection" here.
    assert.equal(stats.lastError, undefined, String(stats.lastError));

    const exported = await exportWhenComplete(lease.tsdb, nameMatch(prefix), 100_000);
    assert.equal(sampleCount(exported), 100_000, "samples stored");
    assert.equal(exported.length, METRICS * TAG_SETS.length, "series stored");
    let checked = 0;
    for (const s of exported) {
      const metric = s.metric.__name__;
      for (let i = 0; i < s.values.length; i++) {
        const key = sampleKey(metric, s.metric, s.timestamps[i]);
        assert.ok(expected.has(key), `unexpected sample ${key}`);
        assert.equal(s.values[i], expected.get(key), key);
        expected.delete(key);
        checked++;
      }
    }
    assert.equal(checked, 100_000);
    assert.equal(expected.size, 0, "every point arrived once");
  });
});
