/**
 * An OpenTelemetry metrics exporter for OpenTSDB: `@opentelemetry/sdk-metrics`
 * aggregates (counters summed, gauges kept, histograms bucketed) and this
 * exporter turns each data point into `put`s through a potsdb {@linkcode Client},
 * with its queue, rate limit, reconnects and accounting underneath.
 *
 * It has no runtime dependency: the few SDK types it needs are declared here
 * structurally, so the SDK's `PeriodicExportingMetricReader` takes it as a
 * `PushMetricExporter`.
 *
 * Mapping:
 * - a sum or gauge point is one `put`: the metric is the instrument name
 *   (sanitised; after `prefix` and a dot when one is set), the value the
 *   point's value, the timestamp its end time (in seconds, unless the
 *   client writes milliseconds); a series never gets two points in one
 *   second: a collection within the second of the previous one (say
 *   `forceFlush()` then `shutdown()`) writes at the next second, so the
 *   newer value is neither dropped as a duplicate nor in conflict on the
 *   server;
 * - a histogram point is `<name>.count`, `<name>.sum`, `<name>.min` and
 *   `<name>.max` (the last three when the SDK has them), and with
 *   `buckets: true` one `<name>.bucket` per bound with an `le` tag and the
 *   cumulative count up to that bound (`le=inf` for the last);
 * - an exponential histogram point is `count`, `sum`, `min`, `max`;
 * - tags: the point's attributes, plus resource attributes mapped by
 *   `resourceTags` (`service.name` → `service` by default).
 *
 * @example
 * ```ts
 * import { MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
 * import { OpenTsdbMetricExporter } from "@x/potsdb/otel";
 *
 * const exporter = new OpenTsdbMetricExporter({ host: "localhost", port: 4242, prefix: "shop", timeoutMs: 1000 });
 * const provider = new MeterProvider({
 *   readers: [new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 10_000 })],
 * });
 * const orders = provider.getMeter("checkout").createCounter("orders");
 * orders.add(1, { country: "fr" });
 * await provider.shutdown(); // exports once more, then closes the client (here: no server, gives up after 1 s)
 * ```
 *
 * @module
 */

import { Client, type ClientOptions } from "./client.ts";
import { OptionsError, PotsdbError } from "./errors.ts";
import { DEFAULT_MAX_TAGS, sanitizeName } from "./put.ts";

/**
 * The SDK's `HrTime`: seconds and nanoseconds since the epoch.
 *
 * @example
 * ```ts
 * import type { HrTime } from "@x/potsdb/otel";
 *
 * const t: HrTime = [1700000000, 500_000_000]; // 1700000000.5 s
 * console.assert(t[0] === 1700000000);
 * ```
 */
export type HrTime = readonly [number, number];

/**
 * A histogram's value as the SDK exports it (also the subset of an
 * exponential histogram's that the exporter reads).
 *
 * @example
 * ```ts
 * import type { HistogramValue } from "@x/potsdb/otel";
 *
 * const value: HistogramValue = {
 *   count: 3,
 *   sum: 12,
 *   min: 1,
 *   max: 8,
 *   buckets: { boundaries: [5], counts: [2, 1] }, // 2 at most 5, 1 above
 * };
 * console.assert(value.buckets!.counts.length === value.buckets!.boundaries.length + 1);
 * ```
 */
export interface HistogramValue {
  /** How many values were recorded. */
  readonly count: number;
  /** Their sum, when the instrument keeps it. */
  readonly sum?: number;
  /** The smallest, when known. */
  readonly min?: number;
  /** The largest, when known. */
  readonly max?: number;
  /** Explicit-bucket histograms: bucket `i` counts values in (`boundaries[i-1]`, `boundaries[i]`]. */
  readonly buckets?: { readonly boundaries: readonly number[]; readonly counts: readonly number[] };
}

/**
 * One data point as the SDK exports it: a number for sums and gauges, a
 * {@linkcode HistogramValue} for (exponential) histograms.
 *
 * @example
 * ```ts
 * import type { DataPoint } from "@x/potsdb/otel";
 *
 * const point: DataPoint = {
 *   startTime: [1700000000, 0],
 *   endTime: [1700000010, 0],
 *   attributes: { route: "/home" },
 *   value: 42,
 * };
 * console.assert(point.value === 42);
 * ```
 */
export interface DataPoint {
  /** Start of the aggregation period. */
  readonly startTime: HrTime;
  /** End of the aggregation period: the point's OpenTSDB timestamp. */
  readonly endTime: HrTime;
  /** The point's attributes: they become its tags. */
  readonly attributes: Readonly<Record<string, unknown>>;
  /** The aggregated value. */
  readonly value: number | HistogramValue;
}

/**
 * One metric as the SDK exports it. `dataPointType` is the SDK's
 * `DataPointType`: 0 histogram, 1 exponential histogram, 2 gauge, 3 sum.
 *
 * @example
 * ```ts
 * import type { MetricData } from "@x/potsdb/otel";
 *
 * const metric: MetricData = {
 *   descriptor: { name: "queue.depth" },
 *   aggregationTemporality: 1, // cumulative
 *   dataPointType: 2, // gauge
 *   dataPoints: [{ startTime: [1700000000, 0], endTime: [1700000000, 0], attributes: {}, value: 7 }],
 * };
 * console.assert(metric.dataPoints.length === 1);
 * ```
 */
export interface MetricData {
  /** The instrument: its name becomes the metric name. */
  readonly descriptor: { readonly name: string; readonly unit?: string };
  /** The SDK's `AggregationTemporality`: 0 delta, 1 cumulative. */
  readonly aggregationTemporality: number;
  /** The SDK's `DataPointType`. */
  readonly dataPointType: number;
  /** The points of this collection. */
  readonly dataPoints: readonly DataPoint[];
}

/**
 * What the SDK hands to `export()`: the resource and its metrics by
 * instrumentation scope.
 *
 * @example
 * ```ts
 * import type { ResourceMetrics } from "@x/potsdb/otel";
 *
 * const batch: ResourceMetrics = {
 *   resource: { attributes: { "service.name": "checkout" } },
 *   scopeMetrics: [{ metrics: [] }],
 * };
 * console.assert(batch.scopeMetrics.length === 1);
 * ```
 */
export interface ResourceMetrics {
  /** The resource: some of its attributes become tags (see `resourceTags`). */
  readonly resource: { readonly attributes: Readonly<Record<string, unknown>> };
  /** Metrics by instrumentation scope. */
  readonly scopeMetrics: readonly { readonly metrics: readonly MetricData[] }[];
}

/**
 * The SDK's `ExportResult`: `code` 0 is SUCCESS, 1 is FAILED.
 *
 * @example
 * ```ts
 * import type { ExportResult } from "@x/potsdb/otel";
 *
 * const failed: ExportResult = { code: 1, error: new Error("shut down") };
 * console.assert(failed.code === 1);
 * ```
 */
export interface ExportResult {
  /** 0 SUCCESS, 1 FAILED. */
  code: 0 | 1;
  /** Why it failed. */
  error?: Error;
}

/** The SDK's `ExportResultCode`. */
const SUCCESS = 0;
const FAILED = 1;
/** The SDK's `AggregationTemporality`. */
const DELTA = 0;
const CUMULATIVE = 1;
/** The SDK's `DataPointType`. */
const HISTOGRAM = 0;
const EXPONENTIAL_HISTOGRAM = 1;
const GAUGE = 2;
const SUM = 3;

/** Tag a point with no other tag gets, when the client adds no host tag. */
const DEFAULT_FALLBACK_TAGS: Readonly<Record<string, string>> = { source: "otel" };
/** Resource attributes that become tags unless `resourceTags` says otherwise. */
const DEFAULT_RESOURCE_TAGS: Readonly<Record<string, string>> = { "service.name": "service" };
const NAME_CACHE_LIMIT = 4096;
/** Most series whose last second the exporter remembers; past it, it forgets them all. */
const SERIES_LIMIT = 65536;

/**
 * Options of {@linkcode OpenTsdbMetricExporter}; every one has a default.
 *
 * @example
 * ```ts
 * import type { OpenTsdbExporterOptions } from "@x/potsdb/otel";
 *
 * const options: OpenTsdbExporterOptions = {
 *   prefix: "shop",
 *   buckets: true,
 *   resourceTags: { "deployment.environment": "env" },
 *   attributeDenyList: ["user.id"],
 * };
 * console.assert(options.buckets);
 * ```
 */
export interface OpenTsdbExporterOptions {
  /** Put before every metric name, joined with a dot: `shop` makes `shop.orders`. Default none. */
  prefix?: string;
  /**
   * `"cumulative"` (default): sums and histograms count from the start, so
   * OpenTSDB's `rate` works. `"delta"`: counters and histograms report each
   * interval's change (up-down counters stay cumulative, as in OTLP's delta
   * preference).
   */
  temporality?: "cumulative" | "delta";
  /** Also write `<name>.bucket` per histogram bound, with an `le` tag. Default false. */
  buckets?: boolean;
  /**
   * Most tags per point, the client's host tag and default tags (its `tags`
   * option) included (OpenTSDB's `tsd.storage.max_tags`): room is kept for
   * those the client adds. Attributes beyond it are dropped, in the order of
   * the README's "OpenTelemetry" section, and the point is counted in
   * `stats().trimmed`. Default: the client's `maxTags` (see
   * `Client.tagBudget`), else 8.
   */
  maxTags?: number;
  /** Only these attribute keys become tags (before sanitising). Default: all. */
  attributeAllowList?: readonly string[];
  /** These attribute keys never become tags. Default: none. */
  attributeDenyList?: readonly string[];
  /**
   * Resource attributes to write as tags: attribute key → tag key, merged
   * over the default `{ "service.name": "service" }`; map a key to `null` to
   * leave it out.
   */
  resourceTags?: Readonly<Record<string, string | null>>;
  /**
   * Whether the client adds a `host` tag to each point (its `hostTag`
   * option): one tag of the budget is kept for it, and a point with no tag
   * of its own needs no fallback. Default: what the client says
   * (`Client.tagBudget`), else true (the client's default).
   */
  hostTagged?: boolean;
  /** Tags for a point that would have none, when the client adds no host tag. Default `{ source: "otel" }`. */
  fallbackTags?: Readonly<Record<string, string>>;
  /**
   * Call back from `export()` only after the client's `flush()`, with FAILED
   * when the client dropped points meanwhile. Default: true when the
   * exporter makes the client with an HTTP transport (whose flush means the
   * server answered), false otherwise (SUCCESS once the points are queued).
   */
  awaitFlush?: boolean;
  /** Deadline of the flushes of `export()` (with `awaitFlush`), `forceFlush()` and `shutdown()`, in ms. Default: the client's `closeTimeoutMs`. */
  timeoutMs?: number;
}

/**
 * What the exporter makes its own client from: the server, the client's
 * options and the exporter's.
 *
 * @example
 * ```ts
 * import type { OpenTsdbExporterConfig } from "@x/potsdb/otel";
 *
 * const config: OpenTsdbExporterConfig = { host: "tsd1:4242", hostTag: "web1", qsize: 10_000, prefix: "shop" };
 * console.assert(config.host === "tsd1:4242");
 * ```
 */
export interface OpenTsdbExporterConfig extends ClientOptions, OpenTsdbExporterOptions {
  /** `host`, `host:port`, `[v6]:port`, or several for failover, as for `new Client()`. */
  host: string | readonly string[];
}

/**
 * What the exporter did so far. Every data point value is either a put in
 * `points` or counted in `refused`.
 *
 * @example
 * ```ts
 * import type { OpenTsdbExporterStats } from "@x/potsdb/otel";
 *
 * function lost(stats: OpenTsdbExporterStats): number {
 *   return stats.refused;
 * }
 * console.assert(lost({ exports: 1, failedExports: 0, points: 3, refused: 0, trimmed: 0, lastError: undefined }) === 0);
 * ```
 */
export interface OpenTsdbExporterStats {
  /** `export()` calls. */
  exports: number;
  /** Exports that called back FAILED. */
  failedExports: number;
  /** Puts handed to the client (its own `stats()` tells what became of them). */
  points: number;
  /** Puts the client refused (a `ValidationError`: NaN, a line over 1023 bytes…) or that came after close. */
  refused: number;
  /** Puts written with fewer tags than the point had attributes: over the tag budget, or keys equal after sanitising. */
  trimmed: number;
  /** The last error reported to the SDK or met by a flush. */
  lastError: Error | undefined;
}

/** What the exporter uses of a client. */
interface ExporterClient {
  send: Client["send"];
  flush: Client["flush"];
  close: Client["close"];
  stats: Client["stats"];
}

function isClient(x: unknown): x is Client {
  return typeof x === "object" && x !== null && typeof (x as ExporterClient).send === "function" &&
    typeof (x as ExporterClient).flush === "function";
}

/** The exporter's keys, to tell them from the client's in a config. */
const EXPORTER_KEYS = [
  "prefix",
  "temporality",
  "buckets",
  "attributeAllowList",
  "attributeDenyList",
  "resourceTags",
  "hostTagged",
  "fallbackTags",
  "awaitFlush",
  "timeoutMs",
] as const;

/**
 * An OpenTelemetry `PushMetricExporter` that writes to OpenTSDB (or
 * VictoriaMetrics, InfluxDB…) through a potsdb {@linkcode Client}.
 *
 * `export()` never throws: it calls back SUCCESS once the points are queued
 * (or, with `awaitFlush`, once the client's `flush()` resolved without
 * drops), and FAILED with the error for a point the client refused (the
 * other points are still written), for a failed flush, and after
 * `shutdown()`. `forceFlush()` waits for the client's `flush()` and never
 * rejects. `shutdown()` closes the client when the exporter made it.
 *
 * @example With a client of your own (here an in-memory one)
 * ```ts
 * import { MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
 * import { Client, MemoryTransport } from "@x/potsdb";
 * import { OpenTsdbMetricExporter } from "@x/potsdb/otel";
 *
 * const transport = new MemoryTransport();
 * const client = new Client("memory", { transport, hostTag: "web1" });
 * const exporter = new OpenTsdbMetricExporter(client, { prefix: "shop" });
 * const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
 * const provider = new MeterProvider({ readers: [reader] });
 * provider.getMeter("checkout").createCounter("orders").add(2, { country: "fr" });
 * await reader.forceFlush();
 * await client.close();
 * const line = transport.lines().find((l) => l.startsWith("put shop.orders "))!;
 * console.assert(/ 2 service=\S+ country=fr host=web1$/.test(line), line);
 * await provider.shutdown();
 * ```
 */
export class OpenTsdbMetricExporter {
  readonly #client: ExporterClient;
  readonly #owns: boolean;
  readonly #prefix: string;
  readonly #delta: boolean;
  readonly #buckets: boolean;
  readonly #maxTags: number;
  readonly #allow: ReadonlySet<string> | undefined;
  readonly #deny: ReadonlySet<string>;
  readonly #resourceTags: readonly (readonly [string, string])[];
  readonly #hostTagged: boolean;
  /** The client's default tags: each costs a tag of the budget unless the point has its key. */
  readonly #defaultTagKeys: ReadonlySet<string>;
  readonly #fallback: Readonly<Record<string, string>>;
  readonly #awaitFlush: boolean;
  readonly #timeoutMs: number | undefined;
  readonly #names = new Map<string, string>();
  /** Each series' (metric and tags) last second written, so that no series gets two points in one second. */
  readonly #lastSecond = new Map<string, number>();
  #shutdown: Promise<void> | undefined;
  #exports = 0;
  #failedExports = 0;
  #points = 0;
  #refused = 0;
  #trimmed = 0;
  #lastError: Error | undefined;
  /** Whether the data point being written lost a tag. */
  #pointTrimmed = false;

  /**
   * Makes an exporter on a client of yours, or on one it makes (and closes
   * on `shutdown()`) from `{ host, ...clientOptions, ...exporterOptions }`.
   *
   * @param client a potsdb client, or the config to make one
   * @param options exporter options (merged over the config's when it makes the client)
   * @throws {OptionsError} for an option that cannot work (and whatever `new Client()` throws)
   */
  constructor(client: Client | OpenTsdbExporterConfig, options: OpenTsdbExporterOptions = {}) {
    const given = isClient(client) ? client : undefined;
    if (given === undefined && (typeof client !== "object" || client === null)) {
      throw new OptionsError("OpenTsdbMetricExporter needs a Client or a config with a host");
    }
    const config = given === undefined ? { ...client as OpenTsdbExporterConfig, ...options } : undefined;
    const opts: OpenTsdbExporterOptions = config ?? options;
    // Every check comes before the client is made: a client made and then abandoned would keep
    // its exit hook and its spool's lock, and a corrected retry would find the spool in use.
    // A client of another kind (or of an older copy of potsdb) may not tell its budget.
    const budget = given === undefined ? undefined : (given as Partial<Client>).tagBudget;
    const hostTagged = opts.hostTagged ??
      (config ? config.hostTag !== false && config.hostTag !== null : budget?.hostTag ?? true);
    const maxTags = opts.maxTags ?? budget?.maxTags ?? DEFAULT_MAX_TAGS;
    if (!Number.isInteger(maxTags) || maxTags < 1) {
      throw new OptionsError(`maxTags must be an integer >= 1, got ${maxTags}`);
    }
    if (hostTagged && maxTags < 2) {
      throw new OptionsError("maxTags must be at least 2 when the client adds a host tag");
    }
    const temporality = opts.temporality ?? "cumulative";
    if (temporality !== "cumulative" && temporality !== "delta") {
      throw new OptionsError(`temporality must be "cumulative" or "delta", got ${String(temporality)}`);
    }
    const timeoutMs = opts.timeoutMs;
    if (timeoutMs !== undefined && (!Number.isInteger(timeoutMs) || timeoutMs < 0)) {
      throw new OptionsError(`timeoutMs must be an integer >= 0, got ${timeoutMs}`);
    }
    const prefix = opts.prefix ?? "";
    if (typeof prefix !== "string") throw new OptionsError("prefix must be a string");
    const mapped: Record<string, string | null> = { ...DEFAULT_RESOURCE_TAGS, ...opts.resourceTags };
    const resourceTags: [string, string][] = [];
    for (const [attribute, tag] of Object.entries(mapped)) {
      if (tag === null || tag === undefined || tag === "") continue;
      if (typeof tag !== "string") {
        throw new OptionsError(`resourceTags[${attribute}] must be a string or null`);
      }
      resourceTags.push([attribute, sanitizeName(tag)]);
    }
    const fallback: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.fallbackTags ?? DEFAULT_FALLBACK_TAGS)) {
      const key = sanitizeName(String(k));
      const value = sanitizeName(String(v));
      if (key !== "" && value !== "") fallback[key] = value;
    }
    if (Object.keys(fallback).length === 0) throw new OptionsError("fallbackTags needs at least one tag");
    const allow = list("attributeAllowList", opts.attributeAllowList);
    const deny = list("attributeDenyList", opts.attributeDenyList) ?? new Set<string>();
    this.#prefix = prefix === "" ? "" : sanitizeName(prefix.endsWith(".") ? prefix : prefix + ".");
    this.#delta = temporality === "delta";
    this.#buckets = opts.buckets === true;
    this.#maxTags = maxTags;
    this.#allow = allow;
    this.#deny = deny;
    this.#resourceTags = resourceTags;
    this.#hostTagged = hostTagged;
    this.#fallback = fallback;
    this.#timeoutMs = timeoutMs;
    if (config === undefined) {
      this.#client = given!;
      this.#owns = false;
      this.#awaitFlush = opts.awaitFlush ?? false;
      this.#defaultTagKeys = new Set(budget?.defaultTagKeys ?? []);
      return;
    }
    const clientOptions: Record<string, unknown> = { ...config };
    for (const key of EXPORTER_KEYS) delete clientOptions[key];
    delete clientOptions.host;
    // Last: nothing after it throws.
    const made = new Client(config.host, clientOptions as ClientOptions);
    this.#client = made;
    this.#owns = true;
    this.#awaitFlush = opts.awaitFlush ?? (config.transport?.name.startsWith("http") === true);
    this.#defaultTagKeys = new Set(made.tagBudget.defaultTagKeys);
  }

  /**
   * Writes one collection's data points through the client and reports the
   * outcome to `resultCallback` (exactly once; never throws).
   *
   * @param metrics what the SDK collected
   * @param resultCallback gets `{ code: 0 }` (SUCCESS) or `{ code: 1, error }` (FAILED)
   *
   * @example Called by hand, without the SDK
   * ```ts
   * import { Client, MemoryTransport } from "@x/potsdb";
   * import { OpenTsdbMetricExporter } from "@x/potsdb/otel";
   *
   * const transport = new MemoryTransport();
   * const exporter = new OpenTsdbMetricExporter(new Client("memory", { transport, hostTag: false }), {
   *   hostTagged: false,
   * });
   * exporter.export({
   *   resource: { attributes: { "service.name": "api" } },
   *   scopeMetrics: [{
   *     metrics: [{
   *       descriptor: { name: "queue.depth" },
   *       aggregationTemporality: 1,
   *       dataPointType: 2,
   *       dataPoints: [{ startTime: [1700000000, 0], endTime: [1700000000, 0], attributes: { queue: "mail" }, value: 7 }],
   *     }],
   *   }],
   * }, (result) => console.assert(result.code === 0));
   * await exporter.shutdown();
   * ```
   */
  export(metrics: ResourceMetrics, resultCallback: (result: ExportResult) => void): void {
    this.#exports++;
    let called = false;
    const done = (error?: Error) => {
      if (called) return;
      called = true;
      if (error !== undefined) {
        this.#failedExports++;
        this.#lastError = error;
      }
      try {
        resultCallback(error === undefined ? { code: SUCCESS } : { code: FAILED, error });
      } catch {
        // The SDK's callback is not ours to break.
      }
    };
    if (this.#shutdown !== undefined) {
      done(new Error("the OpenTSDB exporter is shut down"));
      return;
    }
    let error: Error | undefined;
    let droppedBefore = 0;
    try {
      if (this.#awaitFlush) droppedBefore = this.#client.stats().dropped.total;
      error = this.#write(metrics);
    } catch (e) {
      // A malformed batch (not what the SDK makes): report it, never throw.
      error = e instanceof Error ? e : new Error(String(e));
    }
    if (!this.#awaitFlush || (error instanceof PotsdbError && error.code === "CLIENT_CLOSED")) {
      done(error);
      return;
    }
    this.#client.flush({ timeoutMs: this.#timeoutMs }).then(
      () => {
        const dropped = this.#client.stats().dropped.total - droppedBefore;
        done(
          error ??
            (dropped > 0
              ? new Error(
                `the client dropped ${dropped} points while this export was delivered (see its stats())`,
              )
              : undefined),
        );
      },
      (e: unknown) => done(e instanceof Error ? e : new Error(String(e))),
    );
  }

  /** Sends every point; returns the first refusal, if any. */
  #write(metrics: ResourceMetrics): Error | undefined {
    const resource = metrics.resource?.attributes ?? {};
    const resourceTags: [string, string][] = [];
    for (const [attribute, tag] of this.#resourceTags) {
      const value = tagValue(resource[attribute]);
      if (value !== "") resourceTags.push([tag, value]);
    }
    let first: Error | undefined;
    const put = (metric: string, value: number, tags: Record<string, string>, at: Date): void => {
      try {
        const series = metric + JSON.stringify(tags);
        const last = this.#lastSecond.get(series);
        let second = Math.floor(at.getTime() / 1000);
        if (last !== undefined && second <= last) {
          // A second collection within one second (forceFlush() then shutdown()): the same
          // second again would be a duplicate, dropped by the client's check or conflicting on
          // the server. The newer value goes at the next second, so it is written and wins.
          second = last + 1;
          at = new Date(second * 1000);
        }
        this.#client.send(metric, value, tags, at);
        if (this.#lastSecond.size >= SERIES_LIMIT && last === undefined) this.#lastSecond.clear();
        this.#lastSecond.set(series, second);
        this.#points++;
      } catch (e) {
        this.#refused++;
        const error = e instanceof Error ? e : new Error(String(e));
        first ??= error;
        if (error instanceof PotsdbError && error.code === "CLIENT_CLOSED") throw error;
      }
    };
    try {
      for (const scope of metrics.scopeMetrics) {
        for (const metric of scope.metrics) {
          const name = this.#name(metric.descriptor.name);
          const type = metric.dataPointType;
          for (const point of metric.dataPoints) {
            this.#pointTrimmed = false;
            this.#point(name, type, point, resourceTags, put);
            if (this.#pointTrimmed) this.#trimmed++;
          }
        }
      }
    } catch (e) {
      if (e instanceof PotsdbError && e.code === "CLIENT_CLOSED") return e;
      throw e;
    }
    return first;
  }

  /** Writes the puts of one data point. */
  #point(
    name: string,
    type: number,
    point: DataPoint,
    resourceTags: readonly (readonly [string, string])[],
    put: (metric: string, value: number, tags: Record<string, string>, at: Date) => void,
  ): void {
    const at = toDate(point.endTime);
    if (type === SUM || type === GAUGE) {
      put(name, point.value as number, this.#tags(point.attributes, resourceTags), at);
      return;
    }
    if (type !== HISTOGRAM && type !== EXPONENTIAL_HISTOGRAM) {
      throw new Error(`unknown dataPointType ${type} for ${name}`);
    }
    const h = point.value as HistogramValue;
    const tags = this.#tags(point.attributes, resourceTags);
    put(name + ".count", h.count, tags, at);
    if (h.sum !== undefined) put(name + ".sum", h.sum, tags, at);
    // Without recordings the SDK has no min/max (or ±Infinity): nothing to write.
    if (typeof h.min === "number" && Number.isFinite(h.min)) put(name + ".min", h.min, tags, at);
    if (typeof h.max === "number" && Number.isFinite(h.max)) put(name + ".max", h.max, tags, at);
    if (this.#buckets && type === HISTOGRAM && h.buckets) {
      const { boundaries, counts } = h.buckets;
      let cumulative = 0;
      for (let i = 0; i < counts.length; i++) {
        cumulative += counts[i];
        const le = i < boundaries.length ? sanitizeName(String(boundaries[i])) : "inf";
        put(name + ".bucket", cumulative, this.#tags(point.attributes, resourceTags, le), at);
      }
    }
  }

  /** The OpenTSDB metric name of an instrument. */
  #name(instrument: string): string {
    let name = this.#names.get(instrument);
    if (name === undefined) {
      if (this.#names.size >= NAME_CACHE_LIMIT) this.#names.clear();
      name = this.#prefix + sanitizeName(String(instrument));
      this.#names.set(instrument, name);
    }
    return name;
  }

  /**
   * A point's tags, in priority order: `le` (bucket series), a `host`
   * attribute, the resource tags, then the other attributes by key. The
   * budget is `maxTags` less the tags the client adds (its host tag and
   * default tags) where the point has no tag of their key. Tags past the
   * budget, and keys already present after sanitising, are dropped and the
   * point counted as trimmed.
   */
  #tags(
    attributes: Readonly<Record<string, unknown>>,
    resourceTags: readonly (readonly [string, string])[],
    le?: string,
  ): Record<string, string> {
    const wanted: [string, string][] = [];
    if (le !== undefined) wanted.push(["le", le]);
    const allow = this.#allow;
    const deny = this.#deny;
    const keys = Object.keys(attributes ?? {}).filter((k) =>
      (allow === undefined || allow.has(k)) && !deny.has(k)
    )
      .sort();
    const hostAt = keys.indexOf("host");
    if (hostAt >= 0) {
      const value = tagValue(attributes.host);
      if (value !== "") wanted.push(["host", value]);
      keys.splice(hostAt, 1);
    }
    for (const [key, value] of resourceTags) wanted.push([key, value]);
    for (const key of keys) {
      const value = tagValue(attributes[key]);
      if (value === "") continue;
      const tagKey = sanitizeName(key);
      if (tagKey !== "") wanted.push([tagKey, value]);
    }
    // The tags the client adds (its default tags and host tag) are kept room for. A point's
    // own tag of one of their keys takes that tag's place, so it costs nothing.
    const defaults = this.#defaultTagKeys;
    const hostTagged = this.#hostTagged;
    const reserved = defaults.size + (hostTagged ? 1 : 0);
    const max = this.#maxTags;
    const tags: Record<string, string> = {};
    let own = 0;
    let trimmed = false;
    for (const [key, value] of wanted) {
      const replaces = defaults.has(key) || (hostTagged && key === "host");
      if (key in tags || (!replaces && own + reserved >= max)) {
        trimmed = true;
        continue;
      }
      tags[key] = value;
      if (!replaces) own++;
    }
    if (trimmed) this.#pointTrimmed = true;
    if (reserved === 0 && own === 0) return { ...this.#fallback };
    return tags;
  }

  /**
   * Waits for the client's `flush()`: what the exports queued is written
   * (over HTTP: answered by the server). Resolves also when that fails or
   * times out (the error is kept in `stats().lastError`), so that the SDK's
   * shutdown goes on.
   *
   * @returns once flushed, or given up on
   *
   * @example
   * ```ts
   * import { Client, MemoryTransport } from "@x/potsdb";
   * import { OpenTsdbMetricExporter } from "@x/potsdb/otel";
   *
   * const exporter = new OpenTsdbMetricExporter(new Client("memory", { transport: new MemoryTransport() }));
   * await exporter.forceFlush();
   * await exporter.shutdown();
   * ```
   */
  async forceFlush(): Promise<void> {
    if (this.#shutdown !== undefined) return;
    await this.#flush();
  }

  async #flush(): Promise<void> {
    try {
      await this.#client.flush({ timeoutMs: this.#timeoutMs });
    } catch (e) {
      if (e instanceof PotsdbError && e.code === "CLIENT_CLOSED") return;
      this.#lastError = e instanceof Error ? e : new Error(String(e));
    }
  }

  /**
   * Stops exporting: later exports call back FAILED. Closes the client when
   * the exporter made it (delivering what is queued within `timeoutMs`), else
   * flushes it and leaves it open. Never rejects; calling it again returns
   * the same promise.
   *
   * @returns once closed (or flushed)
   *
   * @example
   * ```ts
   * import { MemoryTransport } from "@x/potsdb";
   * import { OpenTsdbMetricExporter } from "@x/potsdb/otel";
   *
   * const exporter = new OpenTsdbMetricExporter({ host: "memory", transport: new MemoryTransport() });
   * await exporter.shutdown(); // closes the client it made
   * exporter.export({ resource: { attributes: {} }, scopeMetrics: [] }, (r) => console.assert(r.code === 1));
   * ```
   */
  shutdown(): Promise<void> {
    this.#shutdown ??= this.#owns
      ? this.#client.close({ timeoutMs: this.#timeoutMs }).then(() => {}, (e: unknown) => {
        this.#lastError = e instanceof Error ? e : new Error(String(e));
      })
      : this.#flush();
    return this.#shutdown;
  }

  /**
   * The SDK asks which temporality to aggregate an instrument with:
   * cumulative (1) by default; with `temporality: "delta"`, delta (0) except
   * for up-down counters.
   *
   * @param instrumentType the SDK's `InstrumentType` (e.g. `"COUNTER"`)
   * @returns the SDK's `AggregationTemporality`: 0 delta, 1 cumulative
   *
   * @example
   * ```ts
   * import { MemoryTransport } from "@x/potsdb";
   * import { OpenTsdbMetricExporter } from "@x/potsdb/otel";
   *
   * const exporter = new OpenTsdbMetricExporter({ host: "memory", transport: new MemoryTransport(), temporality: "delta" });
   * console.assert(exporter.selectAggregationTemporality("COUNTER") === 0);
   * console.assert(exporter.selectAggregationTemporality("UP_DOWN_COUNTER") === 1);
   * await exporter.shutdown();
   * ```
   */
  selectAggregationTemporality(instrumentType: string): 0 | 1 {
    if (!this.#delta) return CUMULATIVE;
    return instrumentType === "UP_DOWN_COUNTER" || instrumentType === "OBSERVABLE_UP_DOWN_COUNTER"
      ? CUMULATIVE
      : DELTA;
  }

  /**
   * What the exporter did so far; the client's own `stats()` tells what
   * became of the points it took.
   *
   * @returns a fresh snapshot
   *
   * @example
   * ```ts
   * import { MemoryTransport } from "@x/potsdb";
   * import { OpenTsdbMetricExporter } from "@x/potsdb/otel";
   *
   * const exporter = new OpenTsdbMetricExporter({ host: "memory", transport: new MemoryTransport() });
   * const { points, refused, trimmed } = exporter.stats();
   * console.assert(points === 0 && refused === 0 && trimmed === 0);
   * await exporter.shutdown();
   * ```
   */
  stats(): OpenTsdbExporterStats {
    return {
      exports: this.#exports,
      failedExports: this.#failedExports,
      points: this.#points,
      refused: this.#refused,
      trimmed: this.#trimmed,
      lastError: this.#lastError,
    };
  }

  /** The client the exporter writes through. */
  get client(): Client {
    return this.#client as Client;
  }
}

/** An attribute key list option as a set; undefined when not given. */
function list(name: string, keys: readonly string[] | undefined): Set<string> | undefined {
  if (keys === undefined) return undefined;
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === "string")) {
    throw new OptionsError(`${name} must be an array of attribute keys`);
  }
  return new Set(keys);
}

/** An attribute value as a tag value: stringified and sanitised; "" when empty or absent. */
function tagValue(raw: unknown): string {
  if (raw === undefined || raw === null) return "";
  const text = typeof raw === "string"
    ? raw
    : Array.isArray(raw)
    ? raw.map((v) => (v === null || v === undefined ? "" : String(v))).join(",")
    : String(raw);
  return text === "" ? "" : sanitizeName(text);
}

/** An `HrTime` as a Date, to the millisecond: the client writes it in seconds (or ms with `milliseconds`). */
function toDate(time: HrTime): Date {
  return new Date(time[0] * 1000 + Math.floor(time[1] / 1e6));
}
