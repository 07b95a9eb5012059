// The OpenTelemetry exporter end to end: the SDK's MeterProvider with a
// PeriodicExportingMetricReader records a counter, a gauge and a histogram
// for a few export intervals, the exporter writes them through a Client to a
// real VictoriaMetrics (telnet, then HTTP), and every series is read back
// through /api/v1/export: names, tags, timestamps and values, exactly.
//
// Nothing here depends on how fast the intervals go: the next step's values
// are recorded from inside the export that ends the previous step, and an
// export in the same second as the one before is not forwarded (its puts
// would share a timestamp), so each forwarded export is one known step.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  MeterProvider,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";
import { resourceFromAttributes } from "@opentelemetry/resources";
import type { ExportedSeries, TsdbApi } from "../../scripts/tsdb.ts";
import { httpTransport } from "../../src/transport/http.ts";
import { type OpenTsdbExporterConfig, OpenTsdbMetricExporter } from "../../src/otel.ts";
import {
  expectedHostTag,
  exportWhenComplete,
  nameMatch,
  runtime,
  sampleCount,
  uniquePrefix,
  useTsdb,
} from "../helpers/tsdb_env.ts";

const STEPS = 3;
const BOUNDS = [10, 100];
/** Series per export: counter, gauge, histogram count/sum/min/max and one bucket per bound plus inf. */
const SERIES = 2 + 4 + BOUNDS.length + 1;
const HANG_GUARD_MS = 60_000;

/** The values recorded in step `k` (1-based). */
const latencies = (k: number) => [5 * k, 50 * k, 500 * k];
const temperature = (k: number) => 20 + k / 2;

/** What each series must hold after `k` steps (cumulative temporality). */
function expectedAfter(k: number): Record<string, number> {
  const all = Array.from({ length: k }, (_, i) => latencies(i + 1)).flat();
  const out: Record<string, number> = {
    "requests": (k * (k + 1)) / 2, // add(1), add(2), add(3)
    "temperature": temperature(k),
    "latency.count": all.length,
    "latency.sum": all.reduce((a, b) => a + b, 0),
    "latency.min": Math.min(...all),
    "latency.max": Math.max(...all),
  };
  for (const bound of BOUNDS) out[`latency.bucket le=${bound}`] = all.filter((v) => v <= bound).length;
  out["latency.bucket le=inf"] = all.length;
  return out;
}

interface Run {
  /** The end time, in seconds, of each forwarded export (step 1 first). */
  seconds: number[];
  /** The callbacks' result codes of the forwarded exports. */
  codes: number[];
  series: ExportedSeries[];
}

/** Runs the steps through a periodic reader and reads the prefix back. */
async function scenario(
  lease: { readonly tsdb: TsdbApi },
  prefix: string,
  config: OpenTsdbExporterConfig,
): Promise<Run> {
  const exporter = new OpenTsdbMetricExporter(config);
  const seconds: number[] = [];
  const codes: number[] = [];
  let gauge = temperature(1);
  let record: (k: number) => void = () => {};
  let finished!: () => void;
  const done = new Promise<void>((resolve) => finished = resolve);
  // Forwards one export per second of end time, and records the next step from inside it.
  const gate: PushMetricExporter = {
    export(metrics: ResourceMetrics, callback) {
      const end = metrics.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.dataPoints[0]?.endTime[0]))[0];
      if (seconds.length >= STEPS || end === undefined || end === seconds.at(-1)) {
        callback({ code: 0 });
        return;
      }
      seconds.push(end);
      exporter.export(metrics, (result) => {
        codes.push(result.code);
        callback(result);
      });
      if (seconds.length < STEPS) record(seconds.length + 1);
      else finished();
    },
    forceFlush: () => exporter.forceFlush(),
    shutdown: () => exporter.shutdown(),
    selectAggregationTemporality: (type) => exporter.selectAggregationTemporality(type),
  };
  const reader = new PeriodicExportingMetricReader({
    exporter: gate,
    exportIntervalMillis: 1000,
    exportTimeoutMillis: 1000,
  });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ "service.name": "e2e-otel", "deployment.environment": "ci" }),
    readers: [reader],
  });
  const meter = provider.getMeter("e2e");
  const requests = meter.createCounter("requests");
  meter.createObservableGauge("temperature").addCallback((r) => r.observe(gauge, { room: "lab" }));
  const latency = meter.createHistogram("latency", {
    unit: "ms",
    advice: { explicitBucketBoundaries: BOUNDS },
  });
  record = (k) => {
    requests.add(k, { route: "/a" });
    gauge = temperature(k);
    for (const v of latencies(k)) latency.record(v, { route: "/a" });
  };
  record(1);

  let guard: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      done,
      new Promise((_, reject) => {
        guard = setTimeout(
          () => reject(new Error(`not ${STEPS} exports within ${HANG_GUARD_MS} ms`)),
          HANG_GUARD_MS,
        );
      }),
    ]);
  } finally {
    clearTimeout(guard);
    await provider.shutdown(); // the gate lets no further export through; the exporter closes its client
  }
  const stats = exporter.client.stats();
  assert.equal(stats.dropped.total, 0, JSON.stringify(stats));
  assert.deepEqual(exporter.stats().refused, 0);
  const series = await exportWhenComplete(lease.tsdb, nameMatch(prefix), STEPS * SERIES, HANG_GUARD_MS);
  return { seconds, codes, series };
}

/** Checks every series, and returns the histogram's series for the log. */
function check(run: Run, prefix: string, host: string): ExportedSeries[] {
  assert.equal(run.series.length, SERIES, JSON.stringify(run.series.map((s) => s.metric)));
  assert.equal(sampleCount(run.series), STEPS * SERIES);
  assert.deepEqual(run.codes, Array(STEPS).fill(0), "every export called back SUCCESS");
  const found = new Set<string>();
  for (const s of run.series) {
    const { __name__: name, ...tags } = s.metric;
    assert.ok(name.startsWith(prefix + "."), name);
    const metric = name.slice(prefix.length + 1);
    const key = tags.le === undefined ? metric : `${metric} le=${tags.le}`;
    found.add(key);
    const attributes = metric === "temperature" ? { room: "lab" } : { route: "/a" };
    assert.deepEqual(
      tags,
      { ...attributes, ...(tags.le === undefined ? {} : { le: tags.le }), service: "e2e-otel", host },
      key,
    );
    const order = s.timestamps.map((_, i) => i).sort((a, b) => s.timestamps[a] - s.timestamps[b]);
    assert.deepEqual(
      order.map((i) => s.timestamps[i]),
      run.seconds.map((t) => t * 1000),
      `${key}: timestamps`,
    );
    assert.deepEqual(
      order.map((i) => s.values[i]),
      run.seconds.map((_, k) => expectedAfter(k + 1)[key]),
      `${key}: values`,
    );
  }
  assert.deepEqual([...found].sort(), Object.keys(expectedAfter(1)).sort());
  return run.series.filter((s) => s.metric.__name__.startsWith(prefix + ".latency"));
}

function show(label: string, series: ExportedSeries[]): void {
  const lines = series
    .map((s) => JSON.stringify(s))
    .sort();
  console.log(
    `otel e2e ${label} (${runtime}): the histogram read back from /api/v1/export\n${lines.join("\n")}`,
  );
}

describe(`e2e otel exporter (${runtime})`, () => {
  const lease = useTsdb();

  it("telnet: a counter, a gauge and a histogram, exported periodically, arrive exactly", async () => {
    const prefix = uniquePrefix("otel_telnet");
    const host = expectedHostTag();
    const run = await scenario(lease, prefix, {
      host: "127.0.0.1",
      port: lease.tsdb.telnetPort,
      prefix,
      buckets: true,
    });
    show("telnet", check(run, prefix, host));
  });

  it("HTTP: each export calls back once VictoriaMetrics answered, and arrives exactly", async () => {
    const prefix = uniquePrefix("otel_http");
    const run = await scenario(lease, prefix, {
      host: "127.0.0.1",
      port: lease.tsdb.opentsdbHttpPort,
      transport: httpTransport(),
      hostTag: "otel-http",
      prefix,
      buckets: true,
    });
    show("http", check(run, prefix, "otel-http"));
  });
});
