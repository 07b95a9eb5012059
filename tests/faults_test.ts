// Faults on the wire, through this runtime's default transport and through
// node:net: refused, never-completing and failing connects, resets and
// closes mid-write, a reader that stalls for seconds, a flood of error
// lines, DNS failure and a server restart with a full queue — each also with
// close() called in the middle of it. For every one: no error escapes to the
// runtime, the accounting adds up, close() keeps its deadline, the server
// sees the connection closed, and the client works again once the server does.
// Deadlines here are hang guards: a test shows a deadline was kept by what the
// client did (the attempt aborted, the queue counted as dropped), not by a clock.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type * as net from "node:net";
import { Client, type ClientOptions, type ClientStats, type ConnectError } from "../mod.ts";
import { recording, transports } from "./helpers/transports.ts";
import {
  closedPort,
  type FakeServer,
  HANG_GUARD_MS,
  settles,
  startServer,
  waitFor,
} from "./helpers/servers.ts";
import { escapeCounter, startBlackhole } from "./helpers/fault_servers.ts";

const TS = 1700000000;
const fast = { initialMs: 10, maxMs: 100 };

function balanced(s: ClientStats): void {
  assert.equal(s.accepted, s.sent + s.queued + s.dropped.total, JSON.stringify(s));
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `body` with escape counters installed and asserts nothing escaped. */
async function guarded(body: () => Promise<void>): Promise<void> {
  const escaped = escapeCounter();
  try {
    await body();
    // Unhandled rejections are reported after the microtask queue drains.
    await pause(50);
    assert.deepEqual(escaped.rejections, [], "unhandled rejections");
    assert.deepEqual(escaped.exceptions, [], "uncaught exceptions");
  } finally {
    escaped.dispose();
  }
}

/**
 * close() with a deadline; asserts it returned (a hang guard: against a dead server it could
 * only return through its deadline), left nothing queued or connected, and the stats add up.
 */
async function closeWithin(c: Client, timeoutMs: number): Promise<ClientStats> {
  const s = await settles(c.close({ timeoutMs }), `close({ timeoutMs: ${timeoutMs} })`);
  assert.equal(s.queued, 0, "nothing is left queued after close");
  assert.equal(s.connected, false);
  balanced(s);
  return s;
}

/** Waits until the server has no open connection from the client. */
async function serverSeesClose(server: FakeServer): Promise<void> {
  await waitFor(() => server.sockets.size === 0, HANG_GUARD_MS, "the server to see the connection closed");
}

/** Records what each connection received, separately. */
function perConnection(): { texts: string[]; onConnection(socket: net.Socket): void } {
  const texts: string[] = [];
  return {
    texts,
    onConnection(socket) {
      const i = texts.push("") - 1;
      socket.on("data", (d: string) => texts[i] += d);
    },
  };
}

/**
 * The values of the complete lines in `text` (lines look like `put m TS <value> k=v`); the
 * client's `version` probes are no data.
 */
function values(text: string): number[] {
  const end = text.lastIndexOf("\n");
  if (end === -1) return [];
  return text.slice(0, end).split("\n").filter((line) => line !== "version").map((line) => {
    const parts = line.split(" ");
    assert.equal(parts.length, 5, `a well-formed line: ${JSON.stringify(line)}`);
    return Number(parts[3]);
  });
}

/**
 * What survives a connection lost mid-write: the values missing (written to
 * the kernel, lost in its buffers at the reset) must form one contiguous
 * range, and everything else must have arrived.
 */
function lostAtReset(received: number[], n: number): number {
  const seen = new Uint8Array(n);
  for (const v of received) seen[v] = 1;
  const missing: number[] = [];
  for (let v = 0; v < n; v++) if (!seen[v]) missing.push(v);
  if (missing.length > 0) {
    assert.equal(
      missing[missing.length - 1] - missing[0] + 1,
      missing.length,
      `lost lines form one range (kernel buffers at the reset): ${missing[0]}..${
        missing[missing.length - 1]
      }`,
    );
  }
  return missing.length;
}

for (const transport of transports) {
  // Tests send the same point many times a second: the duplicate check is off.
  const base: ClientOptions = { transport, hostTag: false, reconnect: fast, dedup: false };

  describe(`faults through ${transport.name}`, () => {
    it("connection refused: counted as CONNECT_FAILED, delivered once the server is up", async () => {
      await guarded(async () => {
        const port = await closedPort();
        const c = new Client("127.0.0.1", { ...base, port });
        const errors: ConnectError[] = [];
        c.addEventListener("error", (e) => errors.push((e as CustomEvent<ConnectError>).detail));
        for (let i = 0; i < 1000; i++) c.send("m", i, { a: "b" }, TS);
        await waitFor(() => errors.length >= 3, HANG_GUARD_MS, "three refusals");
        assert.ok(errors.every((e) => e.code === "CONNECT_FAILED"), errors.map((e) => e.code).join());
        balanced(c.stats());
        assert.equal(c.stats().queued, 1000);
        const server = await startServer({ port });
        await c.flush({ timeoutMs: HANG_GUARD_MS });
        await waitFor(() => server.lines().length === 1000, HANG_GUARD_MS, "1000 lines");
        assert.deepEqual(values(server.received()), Array.from({ length: 1000 }, (_, i) => i));
        const s = await closeWithin(c, 2000);
        assert.equal(s.sent, 1000);
        assert.equal(s.dropped.total, 0);
        assert.ok(s.connectFailures >= 3);
        await serverSeesClose(server);
        await server.close();
      });
    });

    it("connection refused: close() in the middle keeps its deadline and counts the queue", async () => {
      await guarded(async () => {
        const port = await closedPort();
        const c = new Client("127.0.0.1", { ...base, port });
        let errors = 0;
        c.addEventListener("error", () => errors++);
        for (let i = 0; i < 1000; i++) c.send("m", i, { a: "b" }, TS);
        await waitFor(() => errors >= 1, HANG_GUARD_MS, "a refusal");
        const s = await closeWithin(c, 300);
        assert.equal(s.dropped.closed, 1000);
        assert.equal(s.sent, 0);
      });
    });

    it("a connect that never completes times out with CONNECT_TIMEOUT, then recovers", async () => {
      await guarded(async () => {
        const hole = await startBlackhole();
        let server: FakeServer | undefined;
        try {
          // Only the timeout can end this attempt: CONNECT_TIMEOUT shows it fired.
          const check = await settles(
            Client.connect("127.0.0.1", { ...base, port: hole.port, timeoutMs: 300 }).catch((e) => e),
            "the host check",
          );
          assert.equal((check as ConnectError).code, "CONNECT_TIMEOUT", String(check));

          const c = new Client("127.0.0.1", { ...base, port: hole.port, connectTimeoutMs: 300 });
          const errors: ConnectError[] = [];
          c.addEventListener("error", (e) => errors.push((e as CustomEvent<ConnectError>).detail));
          for (let i = 0; i < 100; i++) c.send("m", i, { a: "b" }, TS);
          await waitFor(() => errors.length >= 2, HANG_GUARD_MS, "two connect timeouts");
          assert.deepEqual(errors.slice(0, 2).map((e) => e.code), ["CONNECT_TIMEOUT", "CONNECT_TIMEOUT"]);
          balanced(c.stats());
          // The server comes back on the same port.
          await hole.close();
          server = await startServer({ port: hole.port });
          await c.flush({ timeoutMs: HANG_GUARD_MS });
          await waitFor(() => server!.lines().length === 100, HANG_GUARD_MS, "100 lines");
          const s = await closeWithin(c, 2000);
          assert.equal(s.sent, 100);
          await serverSeesClose(server);
        } finally {
          await hole.close();
          await server?.close();
        }
      });
    });

    it("a connect that never completes: close() in the middle keeps its deadline", async () => {
      await guarded(async () => {
        const hole = await startBlackhole();
        try {
          // A connect timeout far past the hang guard: only close() can end the attempt in time.
          const rec = recording(transport);
          const c = new Client("127.0.0.1", {
            ...base,
            transport: rec.transport,
            port: hole.port,
            connectTimeoutMs: 10 * HANG_GUARD_MS,
          });
          for (let i = 0; i < 100; i++) c.send("m", i, { a: "b" }, TS);
          await waitFor(() => rec.connectSignals.length === 1, HANG_GUARD_MS, "the connect to be under way");
          const s = await closeWithin(c, 200);
          assert.ok(rec.connectSignals[0].aborted, "close() aborted the connect under way");
          assert.equal(rec.connections.length, 0, "it never connected");
          assert.equal(s.dropped.closed, 100);
        } finally {
          await hole.close();
        }
      });
    });

    for (const how of ["resets", "closes"] as const) {
      it(`the server ${how} the connection mid-write: lost lines are one range, the rest arrives`, async () => {
        await guarded(async () => {
          const conns = perConnection();
          const server = await startServer({
            onConnection(socket) {
              conns.onConnection(socket);
              if (conns.texts.length > 1) return;
              let bytes = 0;
              socket.on("data", (d: string) => {
                bytes += d.length;
                if (bytes < 200_000 || socket.destroyed) return;
                if (how === "resets") socket.resetAndDestroy?.() ?? socket.destroy();
                else socket.destroy();
              });
            },
          });
          const c = await Client.connect("127.0.0.1", { ...base, port: server.port, qsize: 0 });
          let disconnects = 0;
          c.addEventListener("disconnect", () => disconnects++);
          // A burst larger than the server reads before it drops the connection…
          const burst = 100_000;
          for (let i = 0; i < burst; i++) c.send("m", i, { a: "b" }, TS);
          await c.flush({ timeoutMs: HANG_GUARD_MS });
          await waitFor(() => disconnects >= 1, HANG_GUARD_MS, "the connection to be lost");
          // …then more points, which must all arrive on the next connection.
          const n = burst + 10_000;
          for (let i = burst; i < n; i++) c.send("m", i, { a: "b" }, TS);
          await c.flush({ timeoutMs: HANG_GUARD_MS });
          await waitFor(
            () => conns.texts.length >= 2 && values(conns.texts.at(-1)!).at(-1) === n - 1,
            HANG_GUARD_MS,
            "the last line on the new connection",
          );
          const received = conns.texts.flatMap(values);
          const lost = lostAtReset(received, n);
          assert.ok(lost < burst, "the points written after the loss arrive");
          console.log(
            `# ${transport.name}, server ${how} mid-write: ${lost} of ${burst} lines lost in kernel buffers ` +
              `(counted as sent), ${received.length - (n - lost)} sent twice`,
          );
          assert.ok(disconnects >= 1);
          const s = await closeWithin(c, 2000);
          assert.equal(s.sent, n, "every line was written (at-most-once for kernel buffers)");
          assert.ok(s.reconnects >= 1);
          await serverSeesClose(server);
          await server.close();
        });
      });

      it(`the server ${how} every connection mid-write: close() keeps its deadline`, async () => {
        await guarded(async () => {
          const server = await startServer({
            onConnection(socket) {
              let bytes = 0;
              socket.on("data", (d: string) => {
                bytes += d.length;
                if (bytes < 64 * 1024 || socket.destroyed) return;
                if (how === "resets") socket.resetAndDestroy?.() ?? socket.destroy();
                else socket.destroy();
              });
            },
          });
          const c = new Client("127.0.0.1", { ...base, port: server.port, qsize: 0 });
          let disconnects = 0;
          c.addEventListener("disconnect", () => disconnects++);
          for (let i = 0; i < 200_000; i++) c.send("m", i, { a: "b" }, TS);
          await waitFor(() => disconnects >= 2, HANG_GUARD_MS, "two lost connections");
          const s = await closeWithin(c, 300);
          assert.ok(s.sent + s.dropped.closed === 200_000, JSON.stringify(s));
          await serverSeesClose(server);
          await server.close();
        });
      });
    }

    it("a reader that stalls for seconds: the queue holds, nothing is lost or repeated", async () => {
      await guarded(async () => {
        const server = await startServer();
        server.pause();
        const c = await Client.connect("127.0.0.1", { ...base, port: server.port, qsize: 0 });
        const n = 300_000;
        for (let i = 0; i < n; i++) c.send("slow", i, { k: "v" }, TS);
        for (let t = 0; t < 4; t++) {
          await pause(500);
          const s = c.stats();
          balanced(s);
          assert.ok(s.queued > 0, "the writer waits on backpressure");
          assert.equal(s.dropped.total, 0);
        }
        server.resume();
        await c.flush({ timeoutMs: HANG_GUARD_MS });
        await waitFor(() => server.lines().length === n, HANG_GUARD_MS, `${n} lines`);
        assert.deepEqual(values(server.received()), Array.from({ length: n }, (_, i) => i));
        const s = await closeWithin(c, 2000);
        assert.equal(s.sent, n);
        await serverSeesClose(server);
        await server.close();
      });
    });

    it("a reader that stalls: close() in the middle keeps its deadline and counts the rest", async () => {
      await guarded(async () => {
        const server = await startServer();
        server.pause();
        const c = await Client.connect("127.0.0.1", { ...base, port: server.port, qsize: 0 });
        for (let i = 0; i < 300_000; i++) c.send("slow", i, { k: "v" }, TS);
        await pause(1000);
        const s = await closeWithin(c, 300);
        assert.ok(s.dropped.closed > 0);
        assert.equal(s.sent + s.dropped.closed, 300_000);
        server.resume(); // a reader sees the end of a connection only by reading
        await serverSeesClose(server);
        await server.close();
      });
    });

    it("a server flooding error lines: counted, every point still arrives, close() in the flood", async () => {
      await guarded(async () => {
        const line = "put: illegal argument: the flood goes on and on and on\n";
        const chunk = line.repeat(200);
        const server = await startServer({
          onConnection(socket) {
            const flood = () => {
              while (!socket.destroyed && socket.write(chunk));
            };
            socket.on("drain", flood);
            flood();
          },
        });
        const c = await Client.connect("127.0.0.1", { ...base, port: server.port });
        const n = 20_000;
        for (let i = 0; i < n; i++) {
          c.send("m", i, { a: "b" }, TS);
          if (i % 5000 === 0) await pause(5); // the flood starves timers: few turns
        }
        await c.flush({ timeoutMs: HANG_GUARD_MS });
        await waitFor(() => server.lines().length === n, HANG_GUARD_MS, `${n} lines`);
        await waitFor(
          () => c.stats().serverErrors > 10_000,
          HANG_GUARD_MS,
          "server error lines to be counted",
        );
        const s = await closeWithin(c, 1000);
        assert.equal(s.sent, n);
        assert.equal(s.lastError?.code, "SERVER_ERROR");
        await serverSeesClose(server);
        await server.close();
      });
    });

    it("a server sending endless bytes without a newline: memory stays bounded, points arrive", async () => {
      await guarded(async () => {
        const chunk = "x".repeat(64 * 1024);
        let sentBytes = 0;
        const server = await startServer({
          onConnection(socket) {
            const flood = () => {
              while (!socket.destroyed && sentBytes < 64 * 1024 * 1024) {
                sentBytes += chunk.length;
                if (!socket.write(chunk)) break;
              }
            };
            socket.on("drain", flood);
            flood();
          },
        });
        const c = await Client.connect("127.0.0.1", { ...base, port: server.port });
        for (let i = 0; i < 1000; i++) c.send("m", i, { a: "b" }, TS);
        await c.flush({ timeoutMs: HANG_GUARD_MS });
        await waitFor(() => server.lines().length === 1000, HANG_GUARD_MS, "1000 lines");
        await waitFor(() => sentBytes >= 16 * 1024 * 1024, HANG_GUARD_MS, "16 MB read without a newline");
        const s = await closeWithin(c, 1000);
        assert.equal(s.serverErrors, 0);
        await serverSeesClose(server);
        await server.close();
      });
    });

    it("DNS failure: CONNECT_FAILED for the name, failover to the next address delivers", async () => {
      await guarded(async () => {
        // Clients start at different addresses: with the good one down at first, both get tried.
        const port = await closedPort();
        const c = new Client(["name.invalid", `127.0.0.1:${port}`], base);
        const errors: ConnectError[] = [];
        c.addEventListener("error", (e) => errors.push(e.detail as ConnectError));
        for (let i = 0; i < 100; i++) c.send("m", i, { a: "b" }, TS);
        await waitFor(() => new Set(errors.map((e) => e.address)).size === 2, HANG_GUARD_MS, "both tried");
        const server = await startServer({ port });
        await c.flush({ timeoutMs: HANG_GUARD_MS });
        await waitFor(() => server.lines().length === 100, HANG_GUARD_MS, "100 lines");
        const dns = errors.find((e) => e.address === "name.invalid:4242");
        assert.equal(dns?.code, "CONNECT_FAILED");
        const s = await closeWithin(c, 1000);
        assert.equal(s.sent, 100);
        await serverSeesClose(server);
        await server.close();
      });
    });

    it("DNS failure only: retried with backoff, close() keeps its deadline", async () => {
      await guarded(async () => {
        const c = new Client("name.invalid", base);
        let errors = 0;
        c.addEventListener("error", () => errors++);
        for (let i = 0; i < 100; i++) c.send("m", i, { a: "b" }, TS);
        await waitFor(() => errors >= 2, HANG_GUARD_MS, "two lookups failing");
        const s = await closeWithin(c, 300);
        assert.equal(s.dropped.closed, 100);
        assert.ok(s.connectFailures >= 2);
      });
    });

    it("a server restart with 100,000 points queued: all arrive, in order, once", async () => {
      await guarded(async () => {
        let server = await startServer();
        const port = server.port;
        const c = await Client.connect("127.0.0.1", { ...base, port });
        let disconnects = 0;
        let errors = 0;
        c.addEventListener("disconnect", () => disconnects++);
        c.addEventListener("error", () => errors++);
        c.send("m", -1, { a: "b" }, TS);
        await c.flush();
        await waitFor(() => server.lines().length === 1);
        await server.close();
        await waitFor(() => disconnects === 1, HANG_GUARD_MS, "the client to see the server go");
        const n = 100_000;
        for (let i = 0; i < n; i++) c.send("m", i, { a: "b" }, TS);
        await waitFor(() => errors >= 1, HANG_GUARD_MS, "a refused reconnect");
        const down = c.stats();
        balanced(down);
        assert.equal(down.queued, n);
        server = await startServer({ port });
        await c.flush({ timeoutMs: HANG_GUARD_MS });
        await waitFor(() => server.lines().length === n, HANG_GUARD_MS, `${n} lines`);
        assert.deepEqual(values(server.received()), Array.from({ length: n }, (_, i) => i));
        const s = await closeWithin(c, 2000);
        assert.equal(s.sent, n + 1);
        assert.equal(s.dropped.total, 0);
        assert.equal(s.reconnects, 1);
        await serverSeesClose(server);
        await server.close();
      });
    });

    it("a server restart: close() while it is down drops and counts the 100,000 queued", async () => {
      await guarded(async () => {
        const server = await startServer();
        const c = await Client.connect("127.0.0.1", { ...base, port: server.port });
        let disconnects = 0;
        c.addEventListener("disconnect", () => disconnects++);
        await server.close();
        await waitFor(() => disconnects === 1, HANG_GUARD_MS, "the client to see the server go");
        for (let i = 0; i < 100_000; i++) c.send("m", i, { a: "b" }, TS);
        const s = await closeWithin(c, 300);
        assert.equal(s.dropped.closed, 100_000);
        assert.equal(s.sent, 0);
      });
    });
  });
}
