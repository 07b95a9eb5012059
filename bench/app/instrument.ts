// The ways bench/app instruments a request, one per variant: each library used the way
// its users write it. Shared by the HTTP service (service.ts) and the in-process cost
// measure (observe.ts).
//
//   none    no metrics
//   meters  this package's meters (counter + histogram looked up per request), telnet, defaults
//   send    this package's send() per request: count, latency, bytes (dedup drops most: issue #23)
//   otel    OpenTelemetry SDK (counter + histogram) with OpenTsdbMetricExporter, telnet
//   otlp    OpenTelemetry SDK with the OTLP HTTP exporter to a local sink
//   prom    prom-client counter + histogram; the runner scrapes /metrics every 15 s
//   statsd  hot-shots over UDP (its default: one datagram per call)

/** Records one request. */
export type Observe = (route: string, status: number, ms: number, bytes: number) => void;

/** A variant, set up. */
export interface Instrumented {
  observe: Observe;
  /** Answers GET /metrics (prom-client). */
  metrics?: () => Promise<string>;
  close(): Promise<void>;
}

const SERVICE = "bench-app";

/**
 * Sets a variant up.
 *
 * @param kind the variant
 * @param tcpPort the telnet sink
 * @param udpPort the UDP sink
 * @param otlpPort the OTLP HTTP sink
 */
export async function instrument(
  kind: string,
  tcpPort: string,
  udpPort: string,
  otlpPort: string,
): Promise<Instrumented> {
  switch (kind) {
    case "none":
      return { observe: () => {}, close: () => Promise.resolve() };
    case "meters": {
      const { Client } = await import("../../mod.ts");
      const client = new Client("127.0.0.1", { port: Number(tcpPort) });
      return {
        observe: (route, status, ms) => {
          client.counter("http.requests", { route, status }).inc();
          client.histogram("http.latency", { route, status }).record(ms);
        },
        close: () => client.close().then(() => {}),
      };
    }
    case "send": {
      const { Client } = await import("../../mod.ts");
      const client = new Client("127.0.0.1", { port: Number(tcpPort) });
      return {
        observe: (route, status, ms, bytes) => {
          client.send("http.requests", 1, { route, status });
          client.send("http.latency", ms, { route, status });
          client.send("http.bytes", bytes, { route, status });
        },
        close: () => client.close().then(() => {}),
      };
    }
    case "otel":
    case "otlp": {
      const { MeterProvider, PeriodicExportingMetricReader } = await import("@opentelemetry/sdk-metrics");
      const { resourceFromAttributes } = await import("@opentelemetry/resources");
      const exporter = kind === "otel"
        ? new (await import("../../otel.ts")).OpenTsdbMetricExporter({
          host: "127.0.0.1",
          port: Number(tcpPort),
        })
        : new (await import("@opentelemetry/exporter-metrics-otlp-http")).OTLPMetricExporter({
          url: `http://127.0.0.1:${otlpPort}/v1/metrics`,
        });
      const provider = new MeterProvider({
        resource: resourceFromAttributes({ "service.name": SERVICE }),
        readers: [new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 10_000 })],
      });
      const meter = provider.getMeter(SERVICE);
      const requests = meter.createCounter("http.requests");
      const latency = meter.createHistogram("http.latency", { unit: "ms" });
      return {
        observe: (route, status, ms) => {
          const attributes = { route, status };
          requests.add(1, attributes);
          latency.record(ms, attributes);
        },
        close: () => provider.shutdown(),
      };
    }
    case "prom": {
      const prom = (await import("prom-client")).default;
      const registry = new prom.Registry();
      const requests = new prom.Counter({
        name: "http_requests_total",
        help: "requests",
        labelNames: ["route", "status"],
        registers: [registry],
      });
      const latency = new prom.Histogram({
        name: "http_latency_seconds",
        help: "latency",
        labelNames: ["route", "status"],
        registers: [registry],
      });
      return {
        observe: (route, status, ms) => {
          requests.inc({ route, status });
          latency.observe({ route, status }, ms / 1000);
        },
        metrics: () => registry.metrics(),
        close: () => Promise.resolve(),
      };
    }
    case "statsd": {
      const StatsD = (await import("hot-shots")).default;
      const statsd = new StatsD({ host: "127.0.0.1", port: Number(udpPort), errorHandler: () => {} });
      return {
        observe: (route, status, ms) => {
          const tags = { route, status: String(status) };
          statsd.increment("http.requests", 1, tags);
          statsd.timing("http.latency", ms, tags);
        },
        close: () => new Promise<void>((resolve) => statsd.close(() => resolve())),
      };
    }
  }
  throw new Error(`unknown variant ${kind}`);
}
