/**
 * The OpenTelemetry demo: the same machine metrics as `potsdb demo`, but
 * instrumented with `@opentelemetry/sdk-metrics` and exported by
 * `OpenTsdbMetricExporter` to a local VictoriaMetrics, then read back.
 *
 *     deno run -A scripts/otel_demo.ts [--seconds N]
 *     npm run demo:otel -- --seconds N
 *
 * The SDK is a devDependency of this repository, so this demo lives here
 * rather than in the published `potsdb` command.
 *
 * @module
 */

import os from "node:os";
import process from "node:process";
import { MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { startTsdb, type Tsdb } from "./tsdb.ts";
import { OpenTsdbMetricExporter } from "../src/otel.ts";
import { type SeriesRow, seriesTable } from "../cli/report.ts";

const EXPORT_INTERVAL_MS = 1000;
const LAG_PROBE_MS = 50;

function say(message: string): void {
  process.stderr.write(`potsdb otel demo: ${message}\n`);
}

function cpuTimes(): { user: number; system: number; idle: number; total: number } {
  let user = 0, system = 0, idle = 0;
  for (const cpu of os.cpus()) {
    user += cpu.times.user + cpu.times.nice;
    system += cpu.times.sys + cpu.times.irq;
    idle += cpu.times.idle;
  }
  return { user, system, idle, total: user + system + idle };
}

async function main(argv: readonly string[]): Promise<number> {
  const at = argv.indexOf("--seconds");
  const seconds = at >= 0 ? Number(argv[at + 1]) : 10;
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 3600) {
    say(`--seconds must be an integer in 1..3600, got ${argv[at + 1]}`);
    return 2;
  }
  say("starting VictoriaMetrics …");
  const tsdb: Tsdb = await startTsdb();
  try {
    const run = Math.floor(Math.random() * 0xffffff).toString(16).padStart(6, "0");
    const exporter = new OpenTsdbMetricExporter({
      host: tsdb.host,
      port: tsdb.telnetPort,
      prefix: "demo.otel",
      buckets: true,
      resourceTags: { "service.instance.id": "run" },
    });
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: EXPORT_INTERVAL_MS });
    const provider = new MeterProvider({
      resource: resourceFromAttributes({ "service.name": "potsdb-demo", "service.instance.id": run }),
      readers: [reader],
    });
    const meter = provider.getMeter("potsdb-demo");

    // The same machine metrics as `potsdb demo`, as OTel instruments.
    let cpuBefore = cpuTimes();
    meter.createObservableGauge("cpu.percent", { unit: "%" }).addCallback((result) => {
      const now = cpuTimes();
      const total = now.total - cpuBefore.total || 1;
      const percent = (v: number) => Math.round((v / total) * 1000) / 10;
      result.observe(percent(now.user - cpuBefore.user), { mode: "user" });
      result.observe(percent(now.system - cpuBefore.system), { mode: "system" });
      result.observe(percent(now.idle - cpuBefore.idle), { mode: "idle" });
      cpuBefore = now;
    });
    meter.createObservableGauge("mem.bytes", { unit: "By" }).addCallback((result) => {
      const free = os.freemem();
      result.observe(os.totalmem() - free, { state: "used" });
      result.observe(free, { state: "free" });
    });
    meter.createObservableUpDownCounter("process.memory_bytes", { unit: "By" }).addCallback((result) => {
      const memory = process.memoryUsage();
      result.observe(memory.rss, { kind: "rss" });
      result.observe(memory.heapUsed, { kind: "heap" });
    });
    meter.createObservableGauge("load.average").addCallback((result) => {
      const [load1, load5, load15] = os.loadavg();
      result.observe(load1, { period: "1m" });
      result.observe(load5, { period: "5m" });
      result.observe(load15, { period: "15m" });
    });
    const lag = meter.createHistogram("eventloop.lag_ms", {
      unit: "ms",
      advice: { explicitBucketBoundaries: [1, 5, 10, 50, 100] },
    });
    const ticks = meter.createCounter("ticks");
    let expected = performance.now() + LAG_PROBE_MS;
    const probe = setInterval(() => {
      const now = performance.now();
      lag.record(Math.round(Math.max(0, now - expected) * 100) / 100);
      ticks.add(1);
      expected = now + LAG_PROBE_MS;
    }, LAG_PROBE_MS);

    say(
      `recording for ${seconds} s, exported every ${EXPORT_INTERVAL_MS} ms (every point tagged run=${run})`,
    );
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    clearInterval(probe);
    await provider.shutdown(); // one last export; the exporter closes its client
    const stats = exporter.client.stats();
    const own = exporter.stats();
    say(
      `${own.exports} exports, ${own.points} puts (${own.refused} refused, ${own.trimmed} trimmed); ` +
        `client: ${stats.sent} sent, ${stats.dropped.total} dropped`,
    );

    const match = `{__name__=~"demo[.]otel[.].+",run="${run}"}`;
    let series = await tsdb.exportSeries(match);
    for (let i = 0; i < 50 && series.reduce((n, s) => n + s.values.length, 0) < stats.sent; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      series = await tsdb.exportSeries(match);
    }
    const rows: SeriesRow[] = series.map((s) => {
      const { __name__: name, host: _host, run: _run, service: _service, ...tags } = s.metric;
      const order = s.timestamps.map((_, i) => i).sort((a, b) => s.timestamps[a] - s.timestamps[b]);
      const shown = Object.keys(tags).sort().map((k) => `${k}=${tags[k]}`).join(",");
      return { name: `${name}{${shown}}`, sent: own.exports, values: order.map((i) => s.values[i]) };
    }).sort((a, b) => a.name.localeCompare(b.name, "en", { numeric: true }));
    process.stdout.write("\n" + seriesTable(rows, true));
    const stored = rows.reduce((n, r) => n + r.values.length, 0);
    process.stdout.write(`\n${rows.length} series read back: ${stored} points stored, ${stats.sent} sent\n`);
    return stored >= stats.sent ? 0 : 1;
  } finally {
    await tsdb.dispose();
    say("stopped VictoriaMetrics");
  }
}

process.exitCode = await main(process.argv.slice(2));
