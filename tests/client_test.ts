import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  Client,
  ClientClosedError,
  type ClientStats,
  ConnectError,
  type DropDetail,
  FlushTimeoutError,
  MemoryTransport,
  OptionsError,
  type ServerError,
  ValidationError,
} from "../mod.ts";
import { closedPort, settles, startServer } from "./helpers/servers.ts";

const TS = 1700000000;

function balanced(s: ClientStats) {
  assert.equal(s.accepted, s.sent + s.queued + s.dropped.total, JSON.stringify(s));
}

describe("Client options", () => {
  it("rejects options that cannot work", () => {
    const transport = new MemoryTransport();
    for (
      const bad of [
        { qsize: -1 },
        { qsize: 1.5 },
        { port: 0 },
        { port: 70000 },
        { mps: -1 },
        { mps: NaN },
        { maxTags: 0 },
        { hostTag: "bad host" },
        { hostTag: 3 as unknown as string },
        { batchBytes: 10 },
      ]
    ) {
      assert.throws(() => new Client("h", { transport, ...bad }), OptionsError, JSON.stringify(bad));
    }
    assert.throws(() => new Client([], { transport }), OptionsError);
    assert.throws(() => new Client("h:99999", { transport }), OptionsError);
  });

  it("parses host:port, [v6]:port and lists", async () => {
    const seen: string[] = [];
    const transport = new MemoryTransport();
    const connect = transport.connect.bind(transport);
    transport.connect = (o) => {
      seen.push(`${o.host}|${o.port}`);
      return connect(o);
    };
    for (const h of ["a:1", "[::1]:2", "[::1]", "b"]) {
      const c = new Client(h, { transport, port: 9 });
      c.send("m", 1);
      await c.close();
    }
    assert.deepEqual(seen, ["a|1", "::1|2", "::1|9", "b|9"]);
  });

  it("host tag: automatic, override, none; the caller's wins", async () => {
    const auto = new MemoryTransport("box-1");
    const a = new Client("h", { transport: auto });
    a.send("m", 1, { x: "y" }, TS);
    a.send("m", 2, { host: "mine" }, TS);
    await a.close();
    assert.deepEqual(auto.lines(), ["put m 1700000000 1 x=y host=box-1", "put m 1700000000 2 host=mine"]);

    const over = new MemoryTransport();
    const b = new Client("h", { transport: over, hostTag: "web7" });
    b.send("m", 1, { x: "y" }, TS);
    await b.close();
    assert.deepEqual(over.lines(), ["put m 1700000000 1 x=y host=web7"]);

    for (const hostTag of [false, null]) {
      const none = new MemoryTransport();
      const c = new Client("h", { transport: none, hostTag });
      c.send("m", 1, { x: "y" }, TS);
      assert.throws(() => c.send("m", 1, {}, TS), ValidationError, "no tags at all");
      await c.close();
      assert.deepEqual(none.lines(), ["put m 1700000000 1 x=y"]);
    }
  });

  it("a hostname with odd characters is sanitised, not fatal", async () => {
    const t = new MemoryTransport("my host");
    const c = new Client("h", { transport: t });
    c.send("m", 1, undefined, TS);
    await c.close();
    assert.deepEqual(t.lines(), ["put m 1700000000 1 host=my_host"]);
  });

  it("takes the timestamp as a number, a Date or { timestamp }", async () => {
    const t = new MemoryTransport();
    const c = new Client("h", { transport: t, hostTag: false, dedup: false });
    c.send("m", 1, { a: "b" }, TS);
    c.send("m", 1, { a: "b" }, new Date(TS * 1000 + 5));
    c.send("m", 1, { a: "b" }, { timestamp: TS * 1000 });
    await c.close();
    assert.deepEqual(t.lines(), [
      "put m 1700000000 1 a=b",
      "put m 1700000000 1 a=b",
      "put m 1700000000000 1 a=b",
    ]);
  });
});

describe("send()", () => {
  it("bad input throws a typed error and queues nothing", async () => {
    const t = new MemoryTransport();
    const c = new Client("h", { transport: t, hostTag: false });
    c.send("ok", 1, { a: "b" }, TS);
    const before = c.stats();
    for (
      const bad of [
        () => c.send("a b", 1, { a: "b" }),
        () => c.send("m", NaN, { a: "b" }),
        () => c.send("m", 1, { a: "b\nput x 1 1 y=z" }),
        () => c.send("m", 1, { a: "b" }, -5),
      ]
    ) assert.throws(bad, ValidationError);
    assert.deepEqual(c.stats(), before);
    await c.close();
    assert.deepEqual(t.lines(), ["put ok 1700000000 1 a=b"]);
  });

  it("throws ClientClosedError after close, flush too", async () => {
    const c = new Client("h", { transport: new MemoryTransport() });
    await c.close();
    assert.throws(() => c.send("m", 1), ClientClosedError);
    await assert.rejects(c.flush(), ClientClosedError);
    assert.equal(c.closed, true);
  });

  it("drops the oldest at qsize, counts each, and reports drops in few events", async () => {
    const t = new MemoryTransport();
    t.refuse = new Error("down");
    const c = new Client("h", {
      dedup: false,
      transport: t,
      qsize: 100,
      hostTag: false,
      reconnect: { initialMs: 1, maxMs: 5 },
    });
    const events: DropDetail[] = [];
    c.addEventListener("drop", (e) => events.push((e as CustomEvent<DropDetail>).detail));
    for (let i = 0; i < 10_000; i++) c.send("m", i, { a: "b" }, TS);
    const s = c.stats();
    assert.equal(s.dropped.queueFull, 9900);
    assert.equal(s.queued, 100);
    balanced(s);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(events.length, 1, "one event for the storm");
    assert.deepEqual(events[0], { count: 9900, reason: "queueFull" });
    t.refuse = undefined;
    await c.flush();
    const lines = t.lines();
    assert.equal(lines.length, 100);
    assert.equal(lines[0], "put m 1700000000 9900 a=b", "the newest 100 survive");
    assert.equal(lines[99], "put m 1700000000 9999 a=b");
    balanced(await c.close());
  });

  it("qsize 0 is unbounded", async () => {
    const t = new MemoryTransport();
    t.refuse = new Error("down");
    const c = new Client("h", { dedup: false, transport: t, qsize: 0, hostTag: false });
    for (let i = 0; i < 250_000; i++) c.send("m", i, { a: "b" }, TS);
    assert.equal(c.stats().queued, 250_000);
    assert.equal(c.stats().dropped.total, 0);
    const s = await c.close({ timeoutMs: 0 });
    assert.equal(s.dropped.closed, 250_000);
    balanced(s);
  });
});

describe("flush() and close()", () => {
  it("flush resolves once everything before it is written", async () => {
    const t = new MemoryTransport();
    const c = new Client("h", { dedup: false, transport: t, hostTag: false });
    for (let i = 0; i < 1000; i++) c.send("m", i, { a: "b" }, TS);
    await c.flush();
    assert.equal(t.lines().length, 1000);
    assert.equal(c.stats().sent, 1000);
    await c.flush(); // nothing pending: resolves at once
    await c.close();
  });

  it("flush rejects with FlushTimeoutError against a dead server; close drops and counts", async () => {
    const t = new MemoryTransport();
    t.refuse = new Error("refused");
    const c = new Client("h", {
      dedup: false,
      transport: t,
      hostTag: false,
      reconnect: { initialMs: 5, maxMs: 20 },
    });
    for (let i = 0; i < 10; i++) c.send("m", i, { a: "b" }, TS);
    const err = await c.flush({ timeoutMs: 50 }).catch((e) => e);
    assert.ok(err instanceof FlushTimeoutError);
    assert.equal(err.code, "FLUSH_TIMEOUT");
    assert.equal(err.pending, 10);
    assert.equal(err.timeoutMs, 50);
    // The message says which deadline passed, where it is set, and what became of the points.
    assert.match(err.message, /within 50 ms/);
    assert.match(err.message, /\btimeoutMs\b.*\bcloseTimeoutMs\b/);
    assert.match(err.message, /10 points are still queued/);
    assert.match(err.message, /keeps trying/);
    assert.match(err.message, /close\(\)/);
    // Refused for ever, close() returns only through its deadline (the guard catches a hang).
    const s = await settles(c.close({ timeoutMs: 100 }), "close({ timeoutMs: 100 })");
    assert.equal(s.dropped.closed, 10);
    assert.equal(s.sent, 0);
    assert.ok(s.connectFailures >= 1);
    assert.ok(s.lastError instanceof ConnectError);
    balanced(s);
  });

  it("flush honours an abort signal", async () => {
    const t = new MemoryTransport();
    t.refuse = new Error("refused");
    const c = new Client("h", { dedup: false, transport: t, hostTag: false });
    c.send("m", 1, { a: "b" });
    const ac = new AbortController();
    const p = c.flush({ signal: ac.signal });
    ac.abort(new Error("stop"));
    await assert.rejects(p, /stop/);
    await c.close({ timeoutMs: 0 });
  });

  it("close is idempotent, wait() is close, asyncDispose closes", async () => {
    const c = new Client("h", { transport: new MemoryTransport() });
    const a = c.close();
    assert.equal(c.close(), a);
    assert.equal(c.wait(), a);
    await a;
    const t = new MemoryTransport();
    const d = new Client("h", { transport: t, hostTag: false });
    d.send("m", 1, { a: "b" }, TS);
    await d[Symbol.asyncDispose]();
    assert.equal(d.closed, true);
    assert.deepEqual(t.lines(), ["put m 1700000000 1 a=b"]);
  });

  it("an abort signal option closes the client", async () => {
    const ac = new AbortController();
    const c = new Client("h", { transport: new MemoryTransport(), signal: ac.signal });
    ac.abort();
    assert.throws(() => c.send("m", 1), ClientClosedError);
    await c.close();
  });

  it("close() takes its listener off the signal: one app-wide signal holds no closed client", async () => {
    const app = new AbortController();
    // Counts the abort listeners the signal holds, through its own methods.
    const held = new Set<unknown>();
    const signal = app.signal;
    const add = signal.addEventListener.bind(signal);
    const remove = signal.removeEventListener.bind(signal);
    signal.addEventListener = (type: string, listener: unknown, options?: unknown) => {
      if (type === "abort") held.add(listener);
      const remover = (options as AddEventListenerOptions | undefined)?.signal;
      remover?.addEventListener("abort", () => held.delete(listener), { once: true });
      add(type, listener as EventListener, options as AddEventListenerOptions);
    };
    signal.removeEventListener = (type: string, listener: unknown, options?: unknown) => {
      if (type === "abort") held.delete(listener);
      remove(type, listener as EventListener, options as EventListenerOptions);
    };
    for (let i = 0; i < 50; i++) {
      const c = new Client("h", { transport: new MemoryTransport(), hostTag: "h", signal });
      c.send("m", i, { a: "b" }, TS);
      assert.equal(held.size, 1, "an open client listens");
      await c.close();
      assert.equal(held.size, 0, `closed client ${i} still listens to the signal`);
    }
    // Still closes an open one.
    const open = new Client("h", { transport: new MemoryTransport(), signal });
    app.abort();
    assert.equal(open.closed, true);
    await open.close();
    assert.equal(held.size, 0);
  });
});

describe("reconnects and server lines (memory transport)", () => {
  it("requeues unconfirmed batches on a lost connection, in order", async () => {
    const t = new MemoryTransport();
    const c = new Client("h", {
      dedup: false,
      transport: t,
      hostTag: false,
      reconnect: { initialMs: 1, maxMs: 5 },
    });
    let disconnects = 0;
    c.addEventListener("disconnect", () => disconnects++);
    for (let i = 0; i < 10; i++) c.send("m", i, { a: "b" }, TS);
    await c.flush();
    t.disconnect(new Error("reset"));
    for (let i = 10; i < 20; i++) c.send("m", i, { a: "b" }, TS);
    await c.flush();
    assert.equal(disconnects, 1);
    assert.equal(t.connects, 2);
    assert.equal(c.stats().reconnects, 1);
    assert.deepEqual(t.lines().map((l) => Number(l.split(" ")[3])), Array.from({ length: 20 }, (_, i) => i));
    await c.close();
  });

  it("counts server lines and dispatches server-error events", async () => {
    const t = new MemoryTransport();
    const c = new Client("h", { dedup: false, transport: t, hostTag: false });
    const lines: string[] = [];
    c.addEventListener("server-error", (e) => lines.push((e as CustomEvent<ServerError>).detail.line));
    c.send("m", 1, { a: "b" });
    await c.flush();
    t.reply("put: unknown metric: No such name for 'metrics': 'm'");
    assert.equal(c.stats().serverErrors, 1);
    assert.equal(c.stats().lastError?.code, "SERVER_ERROR");
    assert.deepEqual(lines, ["put: unknown metric: No such name for 'metrics': 'm'"]);
    await c.close();
  });

  it("a listener that throws or rejects never breaks the writer", async () => {
    const t = new MemoryTransport();
    const c = new Client("h", { dedup: false, transport: t, hostTag: false });
    const boom = () => {
      throw new Error("listener bug");
    };
    c.addEventListener("connect", boom);
    c.addEventListener("connect", { handleEvent: boom });
    c.addEventListener("connect", () => Promise.reject(new Error("async bug")));
    c.send("m", 1, { a: "b" }, TS);
    await c.flush();
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(c.stats().listenerErrors, 3);
    c.removeEventListener("connect", boom);
    t.disconnect();
    c.send("m", 2, { a: "b" }, TS);
    await c.flush();
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(c.stats().listenerErrors, 5, "the removed listener no longer runs");
    assert.equal(t.lines().length, 2);
    await c.close();
  });

  it("Client.connect rejects with a typed error when the check fails", async () => {
    const t = new MemoryTransport();
    t.refuse = new Error("ECONNREFUSED");
    const err = await Client.connect("h", { transport: t }).catch((e) => e);
    assert.ok(err instanceof ConnectError);
    assert.equal(err.code, "CONNECT_FAILED");
    assert.equal(err.address, "h:4242");
    const unchecked = await Client.connect("h", { transport: t, checkHost: false });
    await unchecked.close({ timeoutMs: 0 });
  });

  it("Client.connect with several addresses succeeds when any one answers, the first down or not", async () => {
    const server = await startServer();
    const down = `127.0.0.1:${await closedPort()}`;
    const up = `127.0.0.1:${server.port}`;
    try {
      // Clients of one process start at successive addresses of their list: over these, each
      // list is tried from each of its addresses.
      for (
        const hosts of [[down, up], [up, down], [down, up], [up, down], [down, down, up], [down, up, down]]
      ) {
        for (let turn = 0; turn < 2; turn++) {
          const c = await settles(Client.connect(hosts, { hostTag: false, timeoutMs: 5000 }), "connect");
          assert.equal(c.stats().connected, true, hosts.join(","));
          c.send("m", 1, { list: String(hosts.indexOf(up)), turn: String(turn) }, TS);
          await c.close();
        }
      }
      const puts = server.lines().filter((l) => l.startsWith("put "));
      assert.equal(puts.length, 12, "every client wrote through the address that answered");
      // None answers: the error of the last address tried.
      const err = await Client.connect([down, down], { hostTag: false, timeoutMs: 5000 }).catch((e) => e);
      assert.ok(err instanceof ConnectError, String(err));
      assert.equal(err.address, down);
    } finally {
      await server.close();
    }
  });
});
