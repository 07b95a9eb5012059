// The OpenTelemetry exporter, driven by the SDK's real MeterProvider: each
// collection is forced by hand (`reader.forceFlush()`), so what is exported
// does not depend on timers, and the puts are read from a MemoryTransport.

import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Attributes } from "@opentelemetry/api";
import {
  AggregationType,
  MeterProvider,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
  type ResourceMetrics as SdkResourceMetrics,
  type ViewOptions,
} from "@opentelemetry/sdk-metrics";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { Client, type ClientOptions } from "../src/client.ts";
import { ValidationError } from "../src/errors.ts";
import { MemoryTransport } from "../src/transport/memory.ts";
import { httpTransport } from "../src/transport/http.ts";
import "../src/spool/file.ts"; // the spool option's disk, as the root entry loads it
import {
  type ExportResult,
  type OpenTsdbExporterOptions,
  OpenTsdbMetricExporter,
  type ResourceMetrics,
} from "../src/otel.ts";

type SdkExportResult = Parameters<Parameters<PushMetricExporter["export"]>[1]>[0];

/** One `put` line, parsed. */
interface Put {
  metric: string;
  ts: number;
  value: number;
  tags: Record<string, string>;
}

function parse(line: string): Put {
  const [put, metric, ts, value, ...tags] = line.split(" ");
  assert.equal(put, "put");
  return {
    metric,
    ts: Number(ts),
    value: Number(value),
    tags: Object.fromEntries(tags.map((t) => [t.slice(0, t.indexOf("=")), t.slice(t.indexOf("=") + 1)])),
  };
}

interface Setup {
  transport: MemoryTransport;
  client: Client;
  exporter: OpenTsdbMetricExporter;
  provider: MeterProvider;
  meter: ReturnType<MeterProvider["getMeter"]>;
  results: SdkExportResult[];
  /** Forces one collection and export; returns its puts and the collection's end time in seconds. */
  collect(): Promise<{ puts: Put[]; ts: number }>;
}

const open: Setup[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) {
    await s.provider.shutdown().catch(() => {});
    await s.client.close({ timeoutMs: 1000 });
  }
});

function setup(
  options: OpenTsdbExporterOptions = {},
  clientOptions: ClientOptions = {},
  views: ViewOptions[] = [],
  resource: Attributes = { "service.name": "checkout" },
): Setup {
  const transport = new MemoryTransport();
  // Two collections within a second repeat points: the duplicate check is not under test here.
  const client = new Client("memory", { transport, hostTag: "web1", dedup: false, ...clientOptions });
  const exporter = new OpenTsdbMetricExporter(client, options);
  const captured: SdkResourceMetrics[] = [];
  const results: SdkExportResult[] = [];
  // Records what the SDK exported (for the exact end times), and the outcomes.
  const recording: PushMetricExporter = {
    export(metrics, callback) {
      captured.push(metrics);
      exporter.export(metrics, (result) => {
        results.push(result);
        callback(result);
      });
    },
    forceFlush: () => exporter.forceFlush(),
    shutdown: () => exporter.shutdown(),
    selectAggregationTemporality: (type) => exporter.selectAggregationTemporality(type),
  };
  const reader = new PeriodicExportingMetricReader({ exporter: recording, exportIntervalMillis: 3_600_000 });
  const provider = new MeterProvider({
    resource: resourceFromAttributes(resource),
    readers: [reader],
    views,
  });
  const s: Setup = {
    transport,
    client,
    exporter,
    provider,
    meter: provider.getMeter("test"),
    results,
    async collect() {
      const before = transport.lines().length;
      const exports = captured.length;
      await reader.forceFlush();
      await client.flush();
      assert.equal(captured.length, exports + 1, "one export per collection");
      const metrics = captured[exports].scopeMetrics.flatMap((sm) => sm.metrics);
      const ends = new Set(metrics.flatMap((m) => m.dataPoints.map((p) => p.endTime[0])));
      assert.equal(ends.size, 1, "one end time per collection");
      return { puts: transport.lines().slice(before).map(parse), ts: [...ends][0] };
    },
  };
  open.push(s);
  return s;
}

/** Puts sorted by metric then tags, for stable comparisons. */
function sorted(puts: Put[]): Put[] {
  const key = (p: Put) => `${p.metric} ${JSON.stringify(Object.entries(p.tags).sort())}`;
  return [...puts].sort((a, b) => key(a).localeCompare(key(b)));
}

const TAGS = { service: "checkout", host: "web1" };

/** A batch as the SDK hands it over, with one cumulative sum point ending at `end` (seconds). */
function oneSum(
  name: string,
  value: number,
  attributes: Record<string, string> = {},
  resource: Record<string, string> = {},
  end = 1700000000,
): ResourceMetrics {
  return {
    resource: { attributes: resource },
    scopeMetrics: [{
      metrics: [{
        descriptor: { name },
        aggregationTemporality: 1,
        dataPointType: 3,
        dataPoints: [{ startTime: [1, 0], endTime: [end, 0], attributes, value }],
      }],
    }],
  };
}

describe("OpenTsdbMetricExporter", () => {
  it("is a PushMetricExporter the SDK's reader takes as it is", async () => {
    const transport = new MemoryTransport();
    const client = new Client("memory", { transport, hostTag: "web1", dedup: false });
    const exporter = new OpenTsdbMetricExporter(client);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    const provider = new MeterProvider({ readers: [reader] });
    provider.getMeter("m").createCounter("direct").add(1);
    await reader.forceFlush();
    await provider.shutdown();
    await client.flush();
    assert.equal(transport.lines().filter((l) => l.startsWith("put direct ")).length, 2); // flush + shutdown
    assert.equal(client.closed, false, "a client passed in stays open");
    await client.close();
  });

  it("counters: one put per attribute set, cumulative sums, the end time in seconds", async () => {
    const s = setup();
    const counter = s.meter.createCounter("http.requests");
    counter.add(1, { route: "/a" });
    counter.add(2, { route: "/a" });
    counter.add(5, { route: "/b" });
    const first = await s.collect();
    assert.deepEqual(sorted(first.puts), [
      { metric: "http.requests", ts: first.ts, value: 3, tags: { route: "/a", ...TAGS } },
      { metric: "http.requests", ts: first.ts, value: 5, tags: { route: "/b", ...TAGS } },
    ]);
    counter.add(4, { route: "/a" });
    const second = await s.collect();
    assert.deepEqual(sorted(second.puts).map((p) => p.value), [7, 5], "cumulative by default");
    assert.deepEqual(s.results.map((r) => r.code), [0, 0]);
    assert.deepEqual(s.exporter.stats(), {
      exports: 2,
      failedExports: 0,
      points: 4,
      refused: 0,
      trimmed: 0,
      lastError: undefined,
    });
  });

  it("the line itself: tags in priority order, the client's host tag last", async () => {
    const s = setup();
    s.meter.createCounter("orders").add(2, { country: "fr" });
    const { ts } = await s.collect();
    assert.deepEqual(s.transport.lines(), [`put orders ${ts} 2 service=checkout country=fr host=web1`]);
  });

  it("up-down counters and observable gauges", async () => {
    const s = setup();
    const queue = s.meter.createUpDownCounter("queue.size");
    queue.add(5, { queue: "mail" });
    queue.add(-3, { queue: "mail" });
    let temperature = 21.5;
    s.meter.createObservableGauge("room.temperature").addCallback((result) => {
      result.observe(temperature, { room: "kitchen" });
      result.observe(-4, { room: "freezer" });
    });
    const first = await s.collect();
    assert.deepEqual(sorted(first.puts), [
      { metric: "queue.size", ts: first.ts, value: 2, tags: { queue: "mail", ...TAGS } },
      { metric: "room.temperature", ts: first.ts, value: -4, tags: { room: "freezer", ...TAGS } },
      { metric: "room.temperature", ts: first.ts, value: 21.5, tags: { room: "kitchen", ...TAGS } },
    ]);
    temperature = 22.25;
    queue.add(-1, { queue: "mail" });
    const second = await s.collect();
    assert.deepEqual(sorted(second.puts).map((p) => `${p.metric}=${p.value}`), [
      "queue.size=1",
      "room.temperature=-4",
      "room.temperature=22.25",
    ]);
  });

  it("histograms: count, sum, min and max, no buckets by default", async () => {
    const s = setup();
    const latency = s.meter.createHistogram("http.latency", { unit: "ms" });
    for (const v of [1, 5, 20]) latency.record(v, { route: "/a" });
    const { puts, ts } = await s.collect();
    const tags = { route: "/a", ...TAGS };
    assert.deepEqual(sorted(puts), [
      { metric: "http.latency.count", ts, value: 3, tags },
      { metric: "http.latency.max", ts, value: 20, tags },
      { metric: "http.latency.min", ts, value: 1, tags },
      { metric: "http.latency.sum", ts, value: 26, tags },
    ]);
  });

  it("histograms with buckets: cumulative counts per bound, le=inf last", async () => {
    const s = setup({ buckets: true });
    const latency = s.meter.createHistogram("http.latency", {
      advice: { explicitBucketBoundaries: [5, 10.5] },
    });
    for (const v of [1, 5, 20, 7]) latency.record(v);
    const { puts, ts } = await s.collect();
    const buckets = puts.filter((p) => p.metric === "http.latency.bucket");
    assert.deepEqual(buckets, [
      { metric: "http.latency.bucket", ts, value: 2, tags: { le: "5", ...TAGS } },
      { metric: "http.latency.bucket", ts, value: 3, tags: { le: "10.5", ...TAGS } },
      { metric: "http.latency.bucket", ts, value: 4, tags: { le: "inf", ...TAGS } },
    ]);
    assert.deepEqual(
      puts.filter((p) => p.metric !== "http.latency.bucket").map((p) => `${p.metric}=${p.value}`).sort(),
      ["http.latency.count=4", "http.latency.max=20", "http.latency.min=1", "http.latency.sum=33"],
    );
  });

  it("exponential histograms: count, sum, min and max", async () => {
    const s = setup({ buckets: true }, {}, [
      { instrumentName: "exp.latency", aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM } },
    ]);
    const h = s.meter.createHistogram("exp.latency");
    for (const v of [2, 4, 8.5]) h.record(v, { kind: "x" });
    const { puts, ts } = await s.collect();
    const tags = { kind: "x", ...TAGS };
    assert.deepEqual(sorted(puts), [
      { metric: "exp.latency.count", ts, value: 3, tags },
      { metric: "exp.latency.max", ts, value: 8.5, tags },
      { metric: "exp.latency.min", ts, value: 2, tags },
      { metric: "exp.latency.sum", ts, value: 14.5, tags },
    ]);
  });

  it("a histogram point without min and max (nothing recorded) writes count and sum only", async () => {
    const transport = new MemoryTransport();
    const client = new Client("memory", { transport, hostTag: false });
    const exporter = new OpenTsdbMetricExporter(client, { hostTagged: false });
    const results: ExportResult[] = [];
    const empty = {
      count: 0,
      sum: 0,
      min: Infinity,
      max: -Infinity,
      buckets: { boundaries: [1], counts: [0, 0] },
    };
    exporter.export({
      resource: { attributes: { "service.name": "api" } },
      scopeMetrics: [{
        metrics: [{
          descriptor: { name: "idle" },
          aggregationTemporality: 0,
          dataPointType: 0,
          dataPoints: [{ startTime: [1, 0], endTime: [1700000000, 0], attributes: {}, value: empty }],
        }],
      }],
    }, (r) => results.push(r));
    await client.close();
    assert.deepEqual(results, [{ code: 0 }]);
    assert.deepEqual(transport.lines(), [
      "put idle.count 1700000000 0 service=api",
      "put idle.sum 1700000000 0 service=api",
    ]);
  });

  it("attributes of every type become tags: stringified, sanitised, empty ones skipped", async () => {
    const s = setup({ maxTags: 16 }, { maxTags: 16 });
    s.meter.createCounter("typed").add(1, {
      str: "plain",
      int: 42,
      float: 0.25,
      negative: -3,
      yes: true,
      no: false,
      strings: ["a", "b"],
      numbers: [1, 2.5],
      empty: "",
      emptyArray: [],
      "key with space": "v",
      spaced: "a b=c",
      unicode: "café",
    });
    const { puts } = await s.collect();
    assert.equal(puts.length, 1);
    assert.deepEqual(puts[0].tags, {
      service: "checkout",
      float: "0.25",
      int: "42",
      key_with_space: "v",
      negative: "-3",
      no: "false",
      numbers: "1_2.5",
      spaced: "a_b_c",
      str: "plain",
      strings: "a_b",
      unicode: "café",
      yes: "true",
      host: "web1",
    });
  });

  it("too many attributes: dropped in key order after the resource tags, and counted", async () => {
    const s = setup();
    const attributes: Attributes = {};
    for (const k of ["j", "i", "h", "g", "f", "e", "d", "c", "b", "a"]) attributes[k] = k.toUpperCase();
    const c = s.meter.createCounter("wide");
    c.add(1, attributes);
    c.add(1, { a: "1" });
    const { puts } = await s.collect();
    const wide = puts.find((p) => Object.keys(p.tags).length > 3)!;
    // 8 tags: the host tag, service, then a..f.
    assert.deepEqual(wide.tags, {
      service: "checkout",
      a: "A",
      b: "B",
      c: "C",
      d: "D",
      e: "E",
      f: "F",
      host: "web1",
    });
    assert.equal(s.exporter.stats().trimmed, 1, "only the wide point is counted");
    assert.equal(s.exporter.stats().refused, 0);
  });

  it("the tag budget follows maxTags, and a host attribute takes the host tag's place", async () => {
    const s = setup({ maxTags: 4 });
    s.meter.createCounter("budget").add(1, { host: "db7", z: "1", y: "2", x: "3" });
    const { puts } = await s.collect();
    assert.deepEqual(puts[0].tags, { host: "db7", service: "checkout", x: "3", y: "2" });
    assert.equal(s.exporter.stats().trimmed, 1);
  });

  it("the tag budget counts the client's default tags and host tag: no point refused for them", async () => {
    const defaults = { dc: "eu", env: "prod", team: "core", region: "west", az: "b", rack: "r9" };
    // A client of yours: 6 default tags and the host tag leave one of 8 for the point's own.
    const s = setup({}, { tags: defaults });
    const c = s.meter.createCounter("budget.defaults");
    c.add(1, { a: "1", b: "2", c: "3" });
    c.add(1, { dc: "us", a: "1" }); // dc takes the default's place: it costs nothing
    const { puts } = await s.collect();
    assert.deepEqual(s.results.map((r) => r.code), [0], String(s.results[0]?.error));
    assert.equal(s.exporter.stats().refused, 0);
    const byDc = Object.fromEntries(puts.map((p) => [p.tags.dc, p.tags]));
    assert.equal(puts.length, 2);
    assert.deepEqual(byDc.eu, { service: "checkout", ...defaults, host: "web1" });
    assert.deepEqual(byDc.us, { service: "checkout", ...defaults, dc: "us", host: "web1" });
    assert.equal(s.exporter.stats().trimmed, 2, "both points lost attributes to the budget");

    // A client the exporter makes: the same budget, from its own options.
    const transport = new MemoryTransport();
    const owned = new OpenTsdbMetricExporter({ host: "memory", transport, hostTag: "web2", tags: defaults });
    const results: ExportResult[] = [];
    owned.export(oneSum("wide", 5, { x: "1", y: "2" }, { "service.name": "api" }), (r) => results.push(r));
    await owned.shutdown();
    assert.deepEqual(results.map((r) => r.code), [0], String(results[0]?.error));
    assert.deepEqual(transport.lines(), [
      "put wide 1700000000 5 service=api dc=eu env=prod team=core region=west az=b rack=r9 host=web2",
    ]);
    assert.equal(owned.stats().refused, 0);
  });

  it("attributeAllowList and attributeDenyList", async () => {
    const allow = setup({ attributeAllowList: ["route", "method"] });
    allow.meter.createCounter("c").add(1, { route: "/a", method: "GET", user: "u1" });
    assert.deepEqual((await allow.collect()).puts[0].tags, { route: "/a", method: "GET", ...TAGS });
    const deny = setup({ attributeDenyList: ["user"] });
    deny.meter.createCounter("c").add(1, { route: "/a", method: "GET", user: "u1" });
    assert.deepEqual((await deny.collect()).puts[0].tags, { route: "/a", method: "GET", ...TAGS });
    assert.equal(
      allow.exporter.stats().trimmed + deny.exporter.stats().trimmed,
      0,
      "filtering is not trimming",
    );
  });

  it("resource attributes: service.name by default, resourceTags maps others or leaves them out", async () => {
    const resource = { "service.name": "api", "deployment.environment": "prod", "host.name": "ignored" };
    const mapped = setup({ resourceTags: { "deployment.environment": "env" } }, {}, [], resource);
    mapped.meter.createCounter("c").add(1);
    assert.deepEqual((await mapped.collect()).puts[0].tags, { service: "api", env: "prod", host: "web1" });
    const none = setup({ resourceTags: { "service.name": null } }, {}, [], resource);
    none.meter.createCounter("c").add(1);
    assert.deepEqual((await none.collect()).puts[0].tags, { host: "web1" });
  });

  it("a point with no tag at all gets the fallback tag, unless the client adds a host tag", async () => {
    const s = setup({ resourceTags: { "service.name": null }, hostTagged: false }, { hostTag: false });
    s.meter.createCounter("bare").add(1);
    assert.deepEqual((await s.collect()).puts[0].tags, { source: "otel" });
    const custom = setup(
      { resourceTags: { "service.name": null }, hostTagged: false, fallbackTags: { origin: "sdk" } },
      { hostTag: false },
    );
    custom.meter.createCounter("bare").add(1, { empty: "" });
    assert.deepEqual((await custom.collect()).puts[0].tags, { origin: "sdk" });
  });

  it("names that need sanitising, and the prefix", async () => {
    const s = setup({ prefix: "my app" });
    s.meter.createCounter("requests (total)").add(1);
    s.meter.createCounter("ok.name").add(1);
    const { puts } = await s.collect();
    assert.deepEqual(puts.map((p) => p.metric).sort(), ["my_app.ok.name", "my_app.requests__total_"]);
  });

  it("delta temporality: counters and histograms per interval, up-down counters cumulative", async () => {
    const s = setup({ temporality: "delta" });
    const counter = s.meter.createCounter("delta.c");
    const updown = s.meter.createUpDownCounter("delta.ud");
    const h = s.meter.createHistogram("delta.h");
    counter.add(1);
    updown.add(10);
    h.record(4);
    await s.collect();
    counter.add(2);
    updown.add(5);
    h.record(6);
    h.record(1);
    const { puts } = await s.collect();
    const value = (m: string) => puts.find((p) => p.metric === m)?.value;
    assert.equal(value("delta.c"), 2);
    assert.equal(value("delta.ud"), 15);
    assert.equal(value("delta.h.count"), 2);
    assert.equal(value("delta.h.sum"), 7);
    assert.equal(s.exporter.selectAggregationTemporality("COUNTER"), 0);
    assert.equal(s.exporter.selectAggregationTemporality("OBSERVABLE_UP_DOWN_COUNTER"), 1);

    const c = setup();
    const counter2 = c.meter.createCounter("cum.c");
    counter2.add(1);
    await c.collect();
    counter2.add(2);
    assert.equal((await c.collect()).puts[0].value, 3);
    for (const t of ["COUNTER", "HISTOGRAM", "UP_DOWN_COUNTER", "GAUGE"]) {
      assert.equal(c.exporter.selectAggregationTemporality(t), 1);
    }
  });

  it("timestamps in milliseconds when the client writes milliseconds", async () => {
    const s = setup({}, { milliseconds: true });
    s.meter.createCounter("ms").add(1);
    const { puts, ts } = await s.collect();
    assert.ok(puts[0].ts >= ts * 1000 && puts[0].ts < (ts + 1) * 1000, `${puts[0].ts} within second ${ts}`);
  });

  it("a point the client refuses: FAILED with the ValidationError, the others still written, counted", async () => {
    const s = setup();
    s.meter.createObservableGauge("bad.gauge").addCallback((r) => {
      r.observe(NaN, { k: "nan" });
      r.observe(1, { k: "one" });
    });
    s.meter.createCounter("good").add(1);
    const { puts } = await s.collect();
    assert.deepEqual(puts.map((p) => `${p.metric}=${p.value}`).sort(), ["bad.gauge=1", "good=1"]);
    assert.equal(s.results.length, 1);
    assert.equal(s.results[0].code, 1);
    assert.ok(s.results[0].error instanceof ValidationError);
    assert.equal((s.results[0].error as ValidationError).code, "INVALID_VALUE");
    const stats = s.exporter.stats();
    assert.equal(stats.refused, 1);
    assert.equal(stats.points, 2);
    assert.equal(stats.failedExports, 1);
    assert.equal(stats.lastError, s.results[0].error);
  });

  it("a line too long for OpenTSDB is refused, not cut", async () => {
    const s = setup();
    s.meter.createCounter("long").add(1, { blob: "x".repeat(1100) });
    await s.collect();
    assert.equal(s.results[0].code, 1);
    assert.equal((s.results[0].error as ValidationError).code, "LINE_TOO_LONG");
    assert.equal(s.exporter.stats().refused, 1);
  });

  it("never throws into the SDK: malformed input and a throwing callback", async () => {
    const transport = new MemoryTransport();
    const exporter = new OpenTsdbMetricExporter(new Client("memory", { transport }));
    const results: ExportResult[] = [];
    exporter.export(null as unknown as ResourceMetrics, (r) => results.push(r));
    exporter.export({
      resource: { attributes: {} },
      scopeMetrics: [{
        metrics: [{
          descriptor: { name: "x" },
          aggregationTemporality: 1,
          dataPointType: 9,
          dataPoints: [{ startTime: [1, 0], endTime: [1700000000, 0], attributes: {}, value: 1 }],
        }],
      }],
    }, (r) => results.push(r));
    exporter.export({ resource: { attributes: {} }, scopeMetrics: [] }, () => {
      throw new Error("callback");
    });
    assert.deepEqual(results.map((r) => r.code), [1, 1]);
    assert.equal(exporter.stats().exports, 3);
    await exporter.shutdown();
    await exporter.client.close();
  });

  it("after shutdown: exports call back FAILED; a client it made is closed, one passed in is not", async () => {
    const transport = new MemoryTransport();
    const owned = new OpenTsdbMetricExporter({ host: "memory", transport, hostTag: "h", prefix: "p" });
    await owned.shutdown();
    assert.equal(owned.client.closed, true);
    const results: ExportResult[] = [];
    owned.export({ resource: { attributes: {} }, scopeMetrics: [] }, (r) => results.push(r));
    assert.equal(results[0].code, 1);
    assert.match(results[0].error!.message, /shut down/);
    assert.equal(owned.shutdown(), owned.shutdown(), "the same promise again");

    const client = new Client("memory", { transport: new MemoryTransport() });
    const borrowed = new OpenTsdbMetricExporter(client);
    await borrowed.shutdown();
    assert.equal(client.closed, false);
    await client.close();
  });

  it("a client closed under it: FAILED with CLIENT_CLOSED", async () => {
    const s = setup();
    s.meter.createCounter("late").add(1);
    await s.client.close();
    await s.collect().catch(() => {});
    assert.equal(s.results[0].code, 1);
    assert.equal((s.results[0].error as { code?: string }).code, "CLIENT_CLOSED");
  });

  it("forceFlush() then shutdown() in one second: the final value is written, never dropped as a duplicate", async () => {
    const T = 1700000000;
    // The exporter's own client (dedup on, the client's default), then a client of yours with dedup on.
    const ownTransport = new MemoryTransport();
    const own = new OpenTsdbMetricExporter({ host: "memory", transport: ownTransport, hostTag: "web1" });
    const yoursTransport = new MemoryTransport();
    const yours = new Client("memory", { transport: yoursTransport, hostTag: "web1" });
    const borrowed = new OpenTsdbMetricExporter(yours);
    for (const [exporter, transport] of [[own, ownTransport], [borrowed, yoursTransport]] as const) {
      const results: ExportResult[] = [];
      exporter.export(oneSum("orders", 1, { shop: "a" }, {}, T), (r) => results.push(r));
      await exporter.forceFlush();
      // The SDK collects once more on shutdown: the same second, the cumulative value grown.
      exporter.export(oneSum("orders", 3, { shop: "a" }, {}, T), (r) => results.push(r));
      exporter.export(oneSum("orders", 4, { shop: "a" }, {}, T), (r) => results.push(r));
      await exporter.shutdown();
      if (exporter === borrowed) await yours.close();
      assert.deepEqual(results.map((r) => r.code), [0, 0, 0]);
      // One point per second and series (what OpenTSDB needs), the last value last.
      assert.deepEqual(transport.lines(), [
        `put orders ${T} 1 shop=a host=web1`,
        `put orders ${T + 1} 3 shop=a host=web1`,
        `put orders ${T + 2} 4 shop=a host=web1`,
      ]);
      assert.equal(exporter.client.stats().dropped.duplicate, 0);
    }
  });

  it("forceFlush waits for the client's flush, and resolves even when it cannot finish", async () => {
    const transport = new MemoryTransport();
    transport.refuse = new Error("down");
    const client = new Client("memory", { transport, reconnect: { initialMs: 5, maxMs: 10 } });
    const exporter = new OpenTsdbMetricExporter(client, { timeoutMs: 50 });
    exporter.export(oneSum("queued", 1), () => {});
    await exporter.forceFlush(); // no server: gives up after 50 ms, without rejecting
    assert.equal(exporter.stats().lastError?.name, "FlushTimeoutError");
    transport.refuse = undefined;
    await exporter.forceFlush();
    assert.deepEqual(transport.lines(), ["put queued 1700000000 1 host=memory-host"]);
    await client.close();
  });

  it("a constructor that throws leaves no client behind: a corrected retry takes the same spool", async () => {
    const dir = mkdtempSync(join(tmpdir(), "potsdb-otel-"));
    try {
      const config = { host: "memory", transport: new MemoryTransport(), spool: { dir } };
      // Options of the exporter's own, wrong; the client's options are fine.
      const wrong: OpenTsdbExporterOptions[] = [
        { temporality: "sometimes" as "delta" },
        { timeoutMs: -1 },
        { fallbackTags: { "": "" } },
        { resourceTags: { "service.name": 5 as unknown as string } },
        { prefix: 5 as unknown as string },
        { attributeAllowList: "route" as unknown as string[] },
        { maxTags: 1 }, // the client adds a host tag: checked against what the client says
      ];
      for (const options of wrong) {
        assert.throws(() => new OpenTsdbMetricExporter({ ...config, ...options }), {
          code: "INVALID_OPTION",
        });
      }
      // With hostTag: "h" and maxTags 1 the client is valid, the exporter's budget is not.
      assert.throws(() => new OpenTsdbMetricExporter({ ...config, hostTag: "h", maxTags: 1 }), {
        code: "INVALID_OPTION",
      });
      const exporter = new OpenTsdbMetricExporter(config); // the spool's directory is free
      await exporter.shutdown();
      assert.equal(exporter.client.closed, true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("constructor options are checked", () => {
    const client = new Client("memory", { transport: new MemoryTransport() });
    assert.throws(() => new OpenTsdbMetricExporter(client, { maxTags: 1 }), { code: "INVALID_OPTION" });
    assert.throws(() => new OpenTsdbMetricExporter(client, { maxTags: 0, hostTagged: false }), {
      code: "INVALID_OPTION",
    });
    assert.throws(
      () => new OpenTsdbMetricExporter(client, { temporality: "sometimes" as "delta" }),
      { code: "INVALID_OPTION" },
    );
    assert.throws(() => new OpenTsdbMetricExporter(client, { fallbackTags: { "": "" } }), {
      code: "INVALID_OPTION",
    });
    assert.throws(() => new OpenTsdbMetricExporter({ host: "memory", qsize: -1 }), {
      code: "INVALID_OPTION",
    });
    return client.close().then(() => {});
  });
});

describe("OpenTsdbMetricExporter over HTTP", () => {
  const batch: ResourceMetrics = {
    resource: { attributes: { "service.name": "api" } },
    scopeMetrics: [{
      metrics: [{
        descriptor: { name: "http.sum" },
        aggregationTemporality: 1,
        dataPointType: 3,
        dataPoints: [{ startTime: [1, 0], endTime: [1700000000, 0], attributes: { a: "1" }, value: 5 }],
      }],
    }],
  };

  /** A fetch whose answers the test releases one by one. */
  function gatedFetch(status: number, body = "") {
    const requests: string[] = [];
    const gates: (() => void)[] = [];
    const fetch = (_url: string, init: RequestInit) => {
      requests.push(new TextDecoder().decode(init.body as Uint8Array));
      return new Promise<Response>((resolve) => {
        gates.push(() => resolve(new Response(status === 204 ? null : body, { status })));
      });
    };
    return { fetch, requests, gates };
  }

  async function until(condition: () => boolean): Promise<void> {
    const deadline = Date.now() + 60_000; // a hang guard, not a speed test
    while (!condition()) {
      if (Date.now() > deadline) throw new Error("timed out");
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  it("calls back SUCCESS only once the server has answered", async () => {
    const http = gatedFetch(204);
    const exporter = new OpenTsdbMetricExporter({
      host: "tsd",
      hostTag: "web1",
      transport: httpTransport({ fetch: http.fetch, gzip: false }),
    });
    const results: ExportResult[] = [];
    exporter.export(batch, (r) => results.push(r));
    await until(() => http.gates.length === 1);
    assert.deepEqual(results, [], "not before the answer");
    assert.match(http.requests[0], /"metric":"http.sum","timestamp":1700000000,"value":5/);
    http.gates[0]();
    await until(() => results.length === 1);
    assert.deepEqual(results, [{ code: 0 }]);
    await exporter.shutdown();
  });

  it("calls back FAILED when the server refused points of the export", async () => {
    const http = gatedFetch(400, JSON.stringify({ error: { message: "unknown metric" } }));
    const exporter = new OpenTsdbMetricExporter({
      host: "tsd",
      hostTag: "web1",
      transport: httpTransport({ fetch: http.fetch, gzip: false }),
    });
    const results: ExportResult[] = [];
    exporter.export(batch, (r) => results.push(r));
    await until(() => http.gates.length === 1);
    http.gates[0]();
    await until(() => results.length === 1);
    assert.equal(results[0].code, 1);
    assert.match(results[0].error!.message, /dropped 1 points/);
    assert.equal(exporter.client.stats().dropped.rejected, 1);
    await exporter.shutdown();
  });

  it("awaitFlush: false gives SUCCESS once queued, as over telnet", async () => {
    const http = gatedFetch(204);
    const exporter = new OpenTsdbMetricExporter({
      host: "tsd",
      hostTag: "web1",
      transport: httpTransport({ fetch: http.fetch, gzip: false }),
      awaitFlush: false,
      timeoutMs: 1000,
    });
    const results: ExportResult[] = [];
    exporter.export(batch, (r) => results.push(r));
    assert.deepEqual(results, [{ code: 0 }]);
    await until(() => http.gates.length === 1);
    http.gates[0]();
    await exporter.shutdown();
    assert.equal(exporter.client.stats().sent, 1);
  });
});
