// The client over real loopback TCP, through this runtime's default
// transport and through node:net (which every runtime here also has).

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Client, type ClientStats, ConnectError, type ServerError } from "../mod.ts";
import type { Transport } from "../src/transport/types.ts";
import { recording, transports, writesDuringSyncLoop } from "./helpers/transports.ts";
import { closedPort, HANG_GUARD_MS, settles, startServer, startSink, waitFor } from "./helpers/servers.ts";

const TS = 1700000000;

function balanced(s: ClientStats) {
  assert.equal(s.accepted, s.sent + s.queued + s.dropped.total, JSON.stringify(s));
}

for (const transport of transports) {
  describe(`TCP through ${transport.name}`, () => {
    const fast = { initialMs: 10, maxMs: 50 };

    it("puts the exact bytes on the wire", async () => {
      const server = await startServer();
      const c = await Client.connect("127.0.0.1", {
        dedup: false,
        port: server.port,
        transport,
        hostTag: "h1",
      });
      c.send("sys.cpu.user", 42.5, { cpu: "0" }, TS);
      c.send("app.requests", 1n, { route: "home", host: "web1" }, TS + 1);
      c.send("big", 1e20, { t: "x" }, new Date((TS + 2) * 1000));
      await c.close();
      await waitFor(() => server.lines().length === 3);
      assert.equal(
        server.received(),
        "put sys.cpu.user 1700000000 42.5 cpu=0 host=h1\n" +
          "put app.requests 1700000001 1 route=home host=web1\n" +
          "put big 1700000002 1e+20 t=x host=h1\n",
      );
      await server.close();
    });

    it("coalesces lines into large writes under load", async () => {
      const server = await startServer();
      const rec = recording(transport);
      const c = await Client.connect("127.0.0.1", {
        dedup: false,
        port: server.port,
        transport: rec.transport,
        hostTag: false,
      });
      for (let i = 0; i < 50_000; i++) c.send("load.test", i, { worker: "w1", shard: "s7" }, TS);
      await c.close();
      await waitFor(() => server.lines().length === 50_000, HANG_GUARD_MS, "50000 lines");
      const sizes = rec.writes.map((w) => w.bytes);
      const total = sizes.reduce((a, b) => a + b, 0);
      const big = sizes.filter((n) => n >= 32 * 1024).length;
      assert.ok(sizes.length < 100, `${sizes.length} writes for ${total} bytes`);
      assert.ok(big >= sizes.length - 2, `writes: ${sizes.join(",")}`);
      await server.close();
    });

    it("reconnects after the server drops the connection; later points all arrive", async () => {
      const server = await startServer();
      const c = await Client.connect("127.0.0.1", {
        dedup: false,
        port: server.port,
        transport,
        hostTag: false,
        reconnect: fast,
      });
      const disconnected = new Promise((resolve) =>
        c.addEventListener("disconnect", resolve, { once: true })
      );
      c.send("m", 0, { a: "b" }, TS);
      await c.flush();
      await waitFor(() => server.lines().length === 1);
      server.dropAll();
      await disconnected;
      for (let i = 1; i <= 100; i++) c.send("m", i, { a: "b" }, TS);
      await c.flush();
      await waitFor(() => server.lines().length === 101, HANG_GUARD_MS, "101 lines");
      assert.equal(server.connections, 2);
      const s = await c.close();
      assert.equal(s.reconnects, 1);
      balanced(s);
      await server.close();
    });

    it("refused at first, delivered once the server is up", async () => {
      const port = await closedPort();
      const c = new Client("127.0.0.1", { dedup: false, port, transport, hostTag: false, reconnect: fast });
      const errors: ConnectError[] = [];
      c.addEventListener("error", (e) => errors.push((e as CustomEvent<ConnectError>).detail));
      for (let i = 0; i < 100; i++) c.send("m", i, { a: "b" }, TS);
      await waitFor(() => errors.length >= 2, HANG_GUARD_MS, "two refusals");
      assert.equal(errors[0].code, "CONNECT_FAILED");
      const server = await startServer({ port });
      await c.flush({ timeoutMs: HANG_GUARD_MS });
      await waitFor(() => server.lines().length === 100);
      const s = await c.close();
      assert.ok(s.connectFailures >= 2);
      assert.equal(s.sent, 100);
      balanced(s);
      await server.close();
    });

    it("the start-up check fails fast with a typed error", async () => {
      const port = await closedPort();
      // A refusal ends the check at once; the timeout (a hang guard here) would say CONNECT_TIMEOUT.
      const err = await Client.connect("127.0.0.1", {
        dedup: false,
        port,
        transport,
        timeoutMs: HANG_GUARD_MS,
      }).catch((
        e,
      ) => e);
      assert.ok(err instanceof ConnectError, String(err));
      assert.equal(err.code, "CONNECT_FAILED");
      assert.equal(err.address, `127.0.0.1:${port}`);
    });

    it("honours backpressure from a slow reader and delivers everything after", async () => {
      const server = await startServer();
      server.pause();
      const rec = recording(transport);
      const c = await Client.connect("127.0.0.1", {
        dedup: false,
        port: server.port,
        transport: rec.transport,
        hostTag: false,
        qsize: 0,
      });
      const n = 200_000; // ~9 MB: more than the kernel buffers hold
      for (let i = 0; i < n; i++) c.send("slow.reader", i, { k: "v" }, TS);
      // The connection pushes back and the writer waits for ready(), holding the rest.
      const conn = rec.connections[0];
      await waitFor(
        () => conn.mustWait && conn.readyCalls > 0,
        HANG_GUARD_MS,
        "the writer to wait on ready()",
      );
      const held = c.stats();
      assert.ok(held.queued > 0, "the writer waits instead of buffering everything in the socket");
      balanced(held);
      server.resume();
      await c.flush({ timeoutMs: HANG_GUARD_MS });
      await waitFor(() => server.lines().length === n, HANG_GUARD_MS, `${n} lines`);
      assert.equal(conn.writesWhileMustWait, 0, "no write while the connection asked the writer to wait");
      const lines = server.lines();
      assert.equal(lines[0], "put slow.reader 1700000000 0 k=v");
      assert.equal(lines[n - 1], `put slow.reader 1700000000 ${n - 1} k=v`);
      await c.close();
      await server.close();
    });

    it("reads error lines the server sends back", async () => {
      const server = await startServer({
        onConnection(socket) {
          socket.on("data", () => socket.write("put: illegal argument: bad\nput: unknown metric: x\n"));
        },
      });
      const c = await Client.connect("127.0.0.1", {
        dedup: false,
        port: server.port,
        transport,
        hostTag: false,
      });
      const seen: string[] = [];
      c.addEventListener("server-error", (e) => seen.push((e as CustomEvent<ServerError>).detail.line));
      c.send("m", 1, { a: "b" }, TS);
      await c.flush();
      await waitFor(() => seen.length >= 2);
      assert.deepEqual(seen.slice(0, 2), ["put: illegal argument: bad", "put: unknown metric: x"]);
      assert.ok(c.stats().serverErrors >= 2);
      await c.close();
      await server.close();
    });

    it("drop-oldest at qsize while the server is down, the newest arrive later", async () => {
      const port = await closedPort();
      const c = new Client("127.0.0.1", {
        dedup: false,
        port,
        transport,
        hostTag: false,
        qsize: 50,
        reconnect: fast,
      });
      for (let i = 0; i < 500; i++) c.send("m", i, { a: "b" }, TS);
      assert.equal(c.stats().dropped.queueFull, 450);
      const server = await startServer({ port });
      await c.flush({ timeoutMs: HANG_GUARD_MS });
      await waitFor(() => server.lines().length === 50);
      assert.equal(server.lines()[0], "put m 1700000000 450 a=b");
      balanced(await c.close());
      await server.close();
    });

    it("close() keeps its deadline against a server that never reads", async () => {
      const server = await startServer();
      server.pause();
      const rec = recording(transport);
      const c = await Client.connect("127.0.0.1", {
        dedup: false,
        port: server.port,
        transport: rec.transport,
        hostTag: false,
        qsize: 0,
      });
      const n = 300_000; // more than the kernel buffers hold: a graceful end cannot finish
      for (let i = 0; i < n; i++) c.send("stuck", i, { k: "v" }, TS);
      // Without its deadline, close() would wait for the reader for ever.
      const s = await settles(c.close({ timeoutMs: 300 }), "close({ timeoutMs: 300 })");
      const [conn] = rec.connections;
      assert.ok(conn.ended, "close() ends the connection gracefully first");
      assert.ok(conn.destroyed, "and destroys it at the deadline");
      assert.equal(rec.connections.length, 1, "no reconnect after close()");
      assert.ok(s.dropped.closed > 0);
      assert.equal(s.sent + s.dropped.closed, n, JSON.stringify(s));
      assert.equal(s.queued, 0);
      assert.equal(s.connected, false);
      balanced(s);
      await server.close();
    });

    it("close() keeps its deadline when the server is gone", async () => {
      const port = await closedPort();
      const rec = recording(transport);
      const c = new Client("127.0.0.1", { dedup: false, port, transport: rec.transport, hostTag: false });
      c.send("m", 1, { a: "b" });
      // Reconnecting for ever, the writer would hold close() without its deadline.
      const s = await settles(c.close({ timeoutMs: 200 }), "close({ timeoutMs: 200 })");
      assert.equal(s.dropped.closed, 1);
      assert.equal(s.sent, 0);
      assert.equal(s.connected, false);
      assert.ok(rec.connectSignals.length >= 1, "it tried to connect");
      assert.ok(rec.connectSignals.every((signal) => signal.aborted), "no connect attempt outlives close()");
      balanced(s);
    });

    it("a synchronous burst of 1,000,000 sends: written during the loop, memory bounded, nothing mixed up", async () => {
      // The server is in this process, so it reads nothing while the loop runs: what happens
      // during the loop is up to the client and the kernel's buffers, not to who gets the CPU.
      // How much of a burst arrives when a reader keeps up is a figure for `npm run bench`.
      const server = await startServer();
      const rec = recording(transport);
      const qsize = 100_000;
      const batchBytes = 65536;
      const c = await Client.connect("127.0.0.1", {
        dedup: false,
        port: server.port,
        transport: rec.transport,
        hostTag: false,
        qsize,
        batchBytes,
      });
      const n = 1_000_000;
      for (let i = 0; i < n; i++) c.send("burst", i, { k: "v" }, TS);
      const during = c.stats();
      const writes = rec.writes.map((w) => ({ ...w })); // as they stand when the loop ends
      const handed = writes.reduce((sum, w) => sum + w.lines, 0);
      const handedBytes = writes.reduce((sum, w) => sum + w.bytes, 0);
      const unconfirmed = writes.filter((w) => !w.confirmed);
      const unconfirmedLines = unconfirmed.reduce((sum, w) => sum + w.lines, 0);
      const unconfirmedBytes = unconfirmed.reduce((sum, w) => sum + w.bytes, 0);

      // send() handed full batches to the connection while the loop still ran…
      assert.ok(handedBytes >= batchBytes, `${handedBytes} bytes handed to the connection during the loop`);
      assert.ok(writes.some((w) => w.bytes > batchBytes / 2), `writes: ${writes.map((w) => w.bytes)}`);
      assert.equal(during.sent, handed - unconfirmedLines, "sent = the lines of confirmed writes");
      if (writesDuringSyncLoop(transport)) {
        // …and the socket took them then: a full batch counts as sent before the loop ends.
        assert.ok(
          writes.some((w) => w.confirmed && w.bytes > batchBytes / 2),
          `confirmed during the loop: ${writes.filter((w) => w.confirmed).map((w) => w.bytes)}`,
        );
      }
      // Memory stays bounded: the queue holds qsize lines (the oldest dropped), plus the few
      // batches the connection holds unconfirmed (its high-water mark and one batch at most).
      balanced(during);
      assert.equal(during.queued, qsize + unconfirmedLines, JSON.stringify(during));
      assert.ok(unconfirmedBytes <= 128 * 1024 + batchBytes, `${unconfirmedBytes} bytes unconfirmed`);
      assert.equal(during.dropped.queueFull, n - handed - qsize);

      const s = await settles(c.close({ timeoutMs: HANG_GUARD_MS }), "close()");
      balanced(s);
      assert.equal(s.sent, handed + qsize, JSON.stringify(s));
      assert.equal(s.dropped.closed, 0);
      assert.equal(s.dropped.queueFull, n - handed - qsize);
      // The server gets exactly what the accounting says, in order: the lines written during
      // the loop (a prefix), then the qsize newest that waited in the queue (a suffix).
      await waitFor(() => server.lines().length >= s.sent, HANG_GUARD_MS, `${s.sent} lines`);
      const lines = server.lines();
      assert.equal(lines.length, s.sent);
      for (let i = 0; i < lines.length; i++) {
        const v = i < handed ? i : n - qsize + (i - handed);
        if (lines[i] !== `put burst ${TS} ${v} k=v`) {
          assert.fail(
            `line ${i} is ${JSON.stringify(lines[i])}, expected value ${v} (${handed} written in the loop)`,
          );
        }
      }
      await server.close();
    });

    it("reused write buffers: 400,000 sequential values arrive intact and in order", async () => {
      // Batches are copied into a few write buffers that are reused once the transport calls
      // done: a transport that let go of the bytes too early would show here as wrong values.
      const sink = await startSink();
      try {
        sink.checkSequence();
        const c = await Client.connect("127.0.0.1", {
          dedup: false,
          port: sink.port,
          transport,
          hostTag: false,
          qsize: 0,
        });
        const n = 400_000;
        for (let i = 0; i < n / 2; i++) c.send("seq.test", i, { k: "v" }, TS); // one synchronous loop
        for (let i = n / 2; i < n; i += 1000) {
          for (let j = i; j < i + 1000; j++) c.send("seq.test", j, { k: "v" }, TS);
          await new Promise((r) => setTimeout(r, 0)); // and in chunks, the writer taking turns
        }
        const s = await settles(c.close({ timeoutMs: HANG_GUARD_MS }), "close()");
        assert.equal(s.sent, n);
        const deadline = Date.now() + HANG_GUARD_MS; // a hang guard: the sink reads at its own pace
        let counted = await sink.count();
        while (counted.seqLines < n && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 20));
          counted = await sink.count();
        }
        assert.equal(counted.seqLines, n, "every line arrived");
        assert.equal(counted.seqBad, 0, "every value is the one sent, in order");
      } finally {
        await sink.close();
      }
    });
  });
}

describe("host check timeout", () => {
  it("a connect that never completes times out with CONNECT_TIMEOUT", async () => {
    // A transport whose connect only ever ends through its abort signal:
    // the loopback-only way to stage an unanswered SYN.
    const signals: AbortSignal[] = [];
    const hanging: Transport = {
      name: "hanging",
      hostname: () => "h",
      connect: ({ signal }) => {
        signals.push(signal);
        return new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
      },
    };
    const err = await settles(
      Client.connect("127.0.0.1", { dedup: false, transport: hanging, timeoutMs: 100 }).catch((e) => e),
      "the host check",
    );
    assert.ok(err instanceof ConnectError);
    assert.equal(err.code, "CONNECT_TIMEOUT");
    assert.match(err.message, /longer than 100 ms/);
    assert.equal(signals.length, 1, "one attempt");
    assert.ok(signals[0].aborted, "the timeout aborted it");
  });
});
