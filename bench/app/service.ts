// One HTTP service, instrumented one way, on whichever runtime runs it: node:http on
// Node, Deno.serve on Deno, Bun.serve on Bun. Each request counts itself and records
// its latency with a `route` and a `status` tag, the way each library's users write it.
//
// Usage: <runtime> bench/app/service.ts <variant> <tcpPort> <udpPort> <otlpPort>
// Prints "READY <port>" once listening; exits when stdin closes. Variants: see instrument.ts.

import { instrument } from "./instrument.ts";

const [variant, tcpPort, udpPort, otlpPort] = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  (globalThis as unknown as { process: { argv: string[] } }).process.argv.slice(2);

const BODY = "ok\n";
const meters = await instrument(variant, tcpPort, udpPort, otlpPort);

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
