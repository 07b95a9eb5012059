// What closed clients made with one app-wide `signal` leave behind (issue #20.10):
// N clients are made with the same AbortSignal, send 100 points each to a loopback server
// over the default transport (node:net) and are closed; then the heap is measured after a
// full GC, against the same without `signal`.
//
//   node --expose-gc bench/signal_leak.ts [clients]   (Node 22+ runs .ts; Node 20: the tsc build)
//   deno run -A --v8-flags=--expose-gc bench/signal_leak.ts
import { createServer, type Socket } from "node:net";
import process from "node:process";
import { Client } from "../mod.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with --expose-gc (Deno: --v8-flags=--expose-gc)");

const N = Number(process.argv[2] ?? 1000);

async function heapAfterGc(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc!();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return process.memoryUsage().heapUsed;
}

// A server that reads and discards, like a TSD that never answers.
const sockets = new Set<Socket>();
const server = createServer((socket) => {
  sockets.add(socket);
  socket.on("data", () => {});
  socket.on("error", () => {});
  socket.on("close", () => sockets.delete(socket));
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const port = (server.address() as { port: number }).port;

async function run(withSignal: boolean): Promise<number> {
  const app = new AbortController();
  const before = await heapAfterGc();
  for (let i = 0; i < N; i++) {
    const client = new Client("127.0.0.1", { port, hostTag: "h", ...(withSignal && { signal: app.signal }) });
    for (let j = 0; j < 100; j++) client.send("m", j, { a: String(j) });
    await client.close();
  }
  const after = await heapAfterGc();
  app.abort(); // keeps the controller (and what its signal holds) alive until here
  return (after - before) / 1e6;
}

await run(false); // warm-up: code, caches and pools the first clients fill, not retained per client
const without = await run(false);
const withSignal = await run(true);
server.close();
for (const socket of sockets) socket.destroy();
console.log(
  `${N} closed clients: ${without.toFixed(1)} MB retained without signal, ${
    withSignal.toFixed(1)
  } MB with one signal`,
);
