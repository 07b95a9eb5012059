// flush() and close() settle on what they cover: dropped points end a flush's wait, and an
// aborted signal ends close() at once. Each deadline here is far beyond the test's hang guard,
// so a flush or close that waited it out fails the guard instead of passing late.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Client, FlushTimeoutError, MemoryTransport } from "../mod.ts";
import { startServer, waitFor } from "./helpers/servers.ts";

const TS = 1700000000;
const NEVER = 600_000; // a deadline no test waits out
const GUARD_MS = 60_000;

function guard<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${GUARD_MS} ms`)), GUARD_MS);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

describe("flush()", () => {
  it("settles once the points it waits for were dropped for a full queue", async () => {
    const memory = new MemoryTransport();
    memory.refuse = new Error("server down");
    const client = new Client("memory", {
      transport: memory,
      hostTag: "h",
      dedup: false,
      qsize: 5,
      reconnect: { initialMs: 10, maxMs: 50 },
    });
    for (let i = 0; i < 5; i++) client.send("m", i, { t: "a" }, TS);
    const flushed = client.flush({ timeoutMs: NEVER });
    for (let i = 5; i < 10; i++) client.send("m", i, { t: "a" }, TS); // drops the first five
    await guard(flushed, "flush()");
    const stats = client.stats();
    assert.equal(stats.dropped.queueFull, 5);
    assert.equal(stats.queued, 5);
    await client.close({ timeoutMs: 0 });
  });

  it("counts in its timeout error the points it covers, not those sent after it", async () => {
    const memory = new MemoryTransport();
    memory.refuse = new Error("server down");
    const client = new Client("memory", {
      transport: memory,
      hostTag: "h",
      dedup: false,
      reconnect: { initialMs: 10, maxMs: 50 },
    });
    for (let i = 0; i < 5; i++) client.send("m", i, { t: "a" }, TS);
    const flushed = client.flush({ timeoutMs: 1 });
    for (let i = 0; i < 3; i++) client.send("m", i, { t: "b" }, TS);
    const error = await flushed.catch((e) => e);
    assert.ok(error instanceof FlushTimeoutError, String(error));
    assert.equal(error.pending, 5);
    assert.equal(client.stats().queued, 8);
    await client.close({ timeoutMs: 0 });
  });
});

describe("close()", () => {
  it("with an aborted signal gives up at once: drops and counts the rest, destroys the connection", async () => {
    const server = await startServer();
    server.pause(); // accepts, never reads: the client's writes back up
    try {
      const client = await Client.connect("127.0.0.1", { port: server.port, hostTag: "h", dedup: false });
      for (let i = 0; i < 200_000; i++) client.send("close.abort", i, { shard: "s1", worker: "w1" }, TS);
      const stats = await guard(client.close({ timeoutMs: NEVER, signal: AbortSignal.abort() }), "close()");
      assert.ok(stats.dropped.closed > 0, JSON.stringify(stats));
      assert.equal(stats.queued, 0);
      assert.equal(stats.accepted, stats.sent + stats.dropped.total);
      assert.equal(stats.connected, false);
      // Once the server reads again, it finds the connection ended.
      server.resume();
      await waitFor(() => server.sockets.size === 0, GUARD_MS, "the server's socket closes");
    } finally {
      await server.close();
    }
  });
});
