// One HTTP service, instrumented one way, on whichever runtime runs it: node:http on
// Node, Deno.serve on Deno, Bun.serve on Bun. Each request counts itself and records
// its latency with a `route` and a `status` tag, the way each library's users write it.
//
// Usage: <runtime> bench/app/service.ts <variant> <tcpPort> <udpPort> <otlpPort>
// Prints "READY <port>" once listening; exits when stdin closes.
//
// Variants:
//   none    no metrics
//   meters  this package's meters (counter + histogram looked up per request), telnet, defaults
//   send    this package's send() per request: count, latency, bytes (dedup drops most: issue #23)
//   otel    OpenTelemetry SDK (counter + histogram) with OpenTsdbMetricExporter, telnet
//   otlp    OpenTelemetry SDK with the OTLP HTTP exporter to a local sink
//   prom    prom-client counter + histogram; the runner scrapes /metrics every 15 s
//   statsd  hot-shots over UDP (its default: one datagram per call)

type Observe = (route: string, status: number, ms: number, bytes: number) => void;

interface Instrumented {
  observe: Observe;
  /** Answers GET /metrics (prom-client). */
  metrics?: () => Promise<string>;
  close(): Promise<void>;
}

const [variant, tcpPort, udpPort, otlpPort] = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);

const BODY = "ok\n";
const SERVICE = "bench-app";

async function instrument(kind: string): Promise<Instrumented> {
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

const meters = await instrument(variant);

/** The request's work: route, status, body; then what the variant records. */
function handle(path: string, start: number): [number, string] {
  const route = path === "/" ? "/" : "other";
  const status = path === "/" ? 200 : 404;
  meters.observe(route, status, performance.now() - start, BODY.length);
  return [status, BODY];
}

function ready(port: number): void {
  console.log(`READY ${port}`);
}

type Stop = () => Promise<void>;
let stopServer: Stop;

// deno-lint-ignore no-explicit-any -- the runtime's own namespace, typed by none of them here
const g = globalThis as unknown as Record<string, any>;
if (g.Bun) {
  const server = g.Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request: Request): Promise<Response> {
      const start = performance.now();
      const path = new URL(request.url).pathname;
      if (path === "/metrics" && meters.metrics) return new Response(await meters.metrics());
      const [status, body] = handle(path, start);
      return new Response(body, { status });
    },
  });
  ready(server.port);
  stopServer = () => Promise.resolve(server.stop(true));
} else if (g.Deno) {
  const server = g.Deno.serve({
    port: 0,
    hostname: "127.0.0.1",
    onListen: ({ port }: { port: number }) => ready(port),
  }, async (request: Request): Promise<Response> => {
    const start = performance.now();
    const path = new URL(request.url).pathname;
    if (path === "/metrics" && meters.metrics) return new Response(await meters.metrics());
    const [status, body] = handle(path, start);
    return new Response(body, { status });
  });
  stopServer = () => server.shutdown();
} else {
  const http = await import("node:http");
  const server = http.createServer((req, res) => {
    const start = performance.now();
    const path = req.url ?? "/";
    if (path === "/metrics" && meters.metrics) {
      meters.metrics().then((text) => res.end(text));
      return;
    }
    const [status, body] = handle(path, start);
    res.statusCode = status;
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  ready((server.address() as { port: number }).port);
  stopServer = () => new Promise((resolve) => server.close(() => resolve()));
}

// Ends when the runner closes stdin.
const stdin = g.Deno ? g.Deno.stdin.readable : (await import("node:process")).stdin;
if (g.Deno) {
  for await (const _ of stdin) { /* until EOF */ }
} else {
  stdin.resume();
  await new Promise((resolve) => stdin.on("end", resolve));
}
await Promise.race([meters.close(), new Promise((resolve) => setTimeout(resolve, 2000))]);
await Promise.race([stopServer(), new Promise((resolve) => setTimeout(resolve, 1000))]);
(g.Deno ?? g.process).exit(0);
