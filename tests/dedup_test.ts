// The duplicate check, default tags and metric prefix, the client's own metrics, and
// the encoder's path for high-cardinality tag values.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  Client,
  type ClientStats,
  type DropDetail,
  formatValue,
  MemoryTransport,
  OptionsError,
  PutEncoder,
  type Tags,
  ValidationError,
} from "../mod.ts";
import type { Clock } from "../src/writer.ts";
import { settles } from "./helpers/servers.ts";

const TS = 1700000000;

function balanced(s: ClientStats): void {
  assert.equal(s.accepted, s.sent + s.queued + s.dropped.total, JSON.stringify(s));
}

function rejects(fn: () => unknown, code: string) {
  assert.throws(fn, (e: unknown) => e instanceof ValidationError && e.code === code);
}

/** A sink that records lines as text. */
function sink() {
  const lines: string[] = [];
  const decoder = new TextDecoder();
  return {
    lines,
    pushLine(head: Uint8Array, value: string, tail: Uint8Array): number {
      lines.push(decoder.decode(head) + value + decoder.decode(tail));
      return 0;
    },
    pushDecimalLine(head: Uint8Array, scaled: number, point: number, tail: Uint8Array): number {
      lines.push(decoder.decode(head) + formatValue(scaled / 10 ** point) + decoder.decode(tail));
      return 0;
    },
  };
}

/** A clock whose sleeps end when the test says so. */
class ManualClock implements Clock {
  time = TS * 1000;
  readonly sleeps: { ms: number; resolve: () => void }[] = [];
  now(): number {
    return this.time;
  }
  sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const entry = { ms, resolve };
      this.sleeps.push(entry);
      signal.addEventListener("abort", () => resolve(), { once: true });
    });
  }
  /** Ends the sleeps of `ms`, moves the time on by it, and lets the woken code run. */
  async tick(ms: number): Promise<void> {
    this.time += ms;
    const woken = this.sleeps.filter((s) => s.ms === ms);
    this.sleeps.splice(0, this.sleeps.length, ...this.sleeps.filter((s) => s.ms !== ms));
    for (const s of woken) s.resolve();
    for (let i = 0; i < 10; i++) await Promise.resolve();
  }
}

describe("dedup", () => {
  it("drops a point with the metric, timestamp and tags of one taken, whatever its value", async () => {
    const t = new MemoryTransport();
    const c = new Client("h", { transport: t, hostTag: "web1" });
    c.send("m", 1, { a: "1" }, TS);
    c.send("m", 2, { a: "1" }, TS); // duplicate: dropped, send() does not throw
    c.send("m", 3, { a: "2" }, TS); // another tag value
    c.send("m", 4, { a: "1", host: "web2" }, TS); // another host tag
    c.send("n", 5, { a: "1" }, TS); // another metric
    c.send("m", 6, { a: "1", b: "x" }, TS); // another tag set
    c.send("m", 7, { a: "1" }, { timestamp: new Date(TS * 1000 + 900) }); // the same second: dropped
    const during = c.stats();
    assert.equal(during.dropped.duplicate, 2);
    balanced(during);
    const s = await c.close();
    assert.deepEqual(t.lines(), [
      "put m 1700000000 1 a=1 host=web1",
      "put m 1700000000 3 a=2 host=web1",
      "put m 1700000000 4 a=1 host=web2",
      "put n 1700000000 5 a=1 host=web1",
      "put m 1700000000 6 a=1 b=x host=web1",
    ]);
    assert.equal(s.accepted, 7);
    assert.equal(s.dropped.duplicate, 2);
    assert.equal(s.dropped.total, 2);
    balanced(s);
  });

  it("keeps the latest timestamp of each metric only, as potsdb", async () => {
    const t = new MemoryTransport();
    const c = new Client("h", { transport: t, hostTag: false });
    c.send("m", 1, { a: "1" }, TS);
    c.send("other", 1, { a: "1" }, TS + 5); // another metric's timestamp changes nothing for m
    c.send("m", 2, { a: "1" }, TS); // dropped
    c.send("m", 3, { a: "1" }, TS + 1); // a new second: taken, and m's set starts over
    c.send("m", 4, { a: "1" }, TS + 1); // dropped
    c.send("m", 5, { a: "1" }, TS); // back to an older second: no longer remembered, taken
    const s = await c.close();
    assert.deepEqual(t.lines(), [
      "put m 1700000000 1 a=1",
      "put other 1700000005 1 a=1",
      "put m 1700000001 3 a=1",
      "put m 1700000000 5 a=1",
    ]);
    assert.equal(s.dropped.duplicate, 2);
    balanced(s);
  });

  it("compares tags in the order given, default and host tags included", async () => {
    const t = new MemoryTransport();
    const c = new Client("h", { transport: t, hostTag: "web1", tags: { dc: "eu" } });
    c.send("m", 1, { a: "1", b: "2" }, TS);
    c.send("m", 2, { b: "2", a: "1" }, TS); // another order: another line, not caught
    c.send("m", 3, { a: "1", b: "2", dc: "eu" }, TS); // the same line as the first: dropped
    c.send("m", 4, { a: "1", b: "2", dc: "us" }, TS); // the caller's dc: taken
    const s = await c.close();
    assert.deepEqual(t.lines(), [
      "put m 1700000000 1 a=1 b=2 dc=eu host=web1",
      "put m 1700000000 2 b=2 a=1 dc=eu host=web1",
      "put m 1700000000 4 a=1 b=2 dc=us host=web1",
    ]);
    assert.equal(s.dropped.duplicate, 1);
  });

  it("reports duplicates in few drop events, and never displaces a queued point", async () => {
    const t = new MemoryTransport();
    t.refuse = new Error("down");
    const c = new Client("h", {
      transport: t,
      hostTag: false,
      qsize: 2,
      reconnect: { initialMs: 5, maxMs: 20 },
    });
    const events: DropDetail[] = [];
    c.addEventListener("drop", (e) => events.push(e.detail));
    c.send("m", 1, { a: "1" }, TS);
    c.send("m", 1, { a: "2" }, TS);
    for (let i = 0; i < 1000; i++) c.send("m", i, { a: "1" }, TS);
    const s = c.stats();
    assert.equal(s.dropped.duplicate, 1000);
    assert.equal(s.dropped.queueFull, 0, "the full queue dropped nothing for them");
    assert.equal(s.queued, 2);
    balanced(s);
    const end = await c.close({ timeoutMs: 0 });
    const duplicates = events.filter((e) => e.reason === "duplicate");
    assert.ok(duplicates.length >= 1 && duplicates.length <= 2, JSON.stringify(events));
    assert.equal(duplicates.reduce((n, e) => n + e.count, 0), 1000);
    balanced(end);
  });

  it("a send() that throws leaves the duplicate window where it was", async () => {
    const t = new MemoryTransport();
    const c = new Client("h", { transport: t, hostTag: false });
    c.send("m", 1, { a: "1" }, TS);
    // Each of these names a later second of m, and each is refused: none may move m's window.
    assert.throws(() => c.send("m", NaN, { a: "1" }, TS + 1), ValidationError);
    assert.throws(() => c.send("m", 2, { "a b": "1" }, TS + 2), ValidationError);
    assert.throws(() => c.send("m", 2, {}, TS + 3), ValidationError);
    assert.throws(() => c.send("m", 2, { a: "x".repeat(1100) }, TS + 4), ValidationError);
    c.send("m", 3, { a: "1" }, TS); // still a duplicate of the first point: dropped
    const s = await c.close();
    assert.deepEqual(t.lines(), ["put m 1700000000 1 a=1"]);
    assert.equal(s.dropped.duplicate, 1);
    assert.equal(s.accepted, 2);
    balanced(s);
  });

  it("is off with dedup: false", async () => {
    const t = new MemoryTransport();
    const c = new Client("h", { transport: t, hostTag: false, dedup: false });
    for (let i = 0; i < 3; i++) c.send("m", i, { a: "1" }, TS);
    const s = await c.close();
    assert.equal(t.lines().length, 3);
    assert.equal(s.dropped.duplicate, 0);
    assert.throws(() => new Client("h", { transport: t, dedup: "no" as unknown as boolean }), OptionsError);
  });

  it("holds a bounded number of tag sets however many points share a second", () => {
    const enc = new PutEncoder({ host: "h", dedup: true });
    const out = sink();
    let max = 0;
    // 50,000 distinct tag sets of one metric in one second, each remembered in the trie.
    for (let i = 0; i < 50_000; i++) {
      assert.equal(enc.encodeTo(out, "m", i, { a: String(i % 500), b: String(Math.floor(i / 500)) }, TS), 0);
      max = Math.max(max, enc.dedupSize);
    }
    assert.ok(max <= 16_385, `held ${max}`);
    assert.equal(out.lines.length, 50_000);
    // Still working after it started over.
    assert.equal(enc.encodeTo(out, "m", 0, { a: "1", b: "99" }, TS), -1);
    // A new second empties the metric's set.
    assert.equal(enc.encodeTo(out, "m", 0, { a: "1", b: "99" }, TS + 1), 0);
    assert.ok(enc.dedupSize <= 2, `held ${enc.dedupSize}`);
    // encode() (the string API) is not checked.
    assert.ok(enc.encode("m", 0, { a: "1", b: "99" }, TS + 1));
  });

  it("does not check tag sets with a high-cardinality value (and holds none of them)", () => {
    const enc = new PutEncoder({ dedup: true });
    const out = sink();
    enc.encodeTo(out, "m", 1, { route: "home", request_id: "r0" }, TS);
    assert.equal(
      enc.encodeTo(out, "m", 1, { route: "home", request_id: "r0" }, TS),
      -1,
      "a few values: checked",
    );
    for (let i = 1; i < 5000; i++) enc.encodeTo(out, "m", i, { route: "home", request_id: `r${i}` }, TS);
    const held = enc.dedupSize;
    assert.ok(held <= 1025, `held ${held}`);
    // Past 1,024 values request_id is high-cardinality: none of its values is checked any more.
    assert.equal(enc.encodeTo(out, "m", 1, { route: "home", request_id: "r4999" }, TS), 0, "sent again");
    assert.equal(enc.encodeTo(out, "m", 1, { route: "home", request_id: "r5" }, TS), 0, "sent again");
    assert.equal(enc.dedupSize, held);
    // Other tag sets still are.
    assert.equal(enc.encodeTo(out, "m", 1, { route: "other" }, TS), 0);
    assert.equal(enc.encodeTo(out, "m", 1, { route: "other" }, TS), -1);
  });
});

describe("the first duplicate's warning", () => {
  type Emit = (message: string, options?: { type?: string; code?: string }) => void;
  const proc = (globalThis as unknown as { process: { emitWarning: Emit | undefined } }).process;
  interface Log {
    emitted: { message: string; type?: string; code?: string }[];
    warned: string[];
  }

  /** Runs `fn` with process.emitWarning and console.warn recording instead of printing. */
  async function capture(fn: (log: Log) => Promise<void>, withEmitWarning = true): Promise<Log> {
    const log: Log = { emitted: [], warned: [] };
    const { emitted, warned } = log;
    const emit = proc.emitWarning;
    const warn = console.warn;
    proc.emitWarning = withEmitWarning
      ? (message, options) => void emitted.push({ message, ...options })
      : undefined;
    console.warn = (...args: unknown[]) => void warned.push(args.map(String).join(" "));
    try {
      await fn(log);
    } finally {
      proc.emitWarning = emit;
      console.warn = warn;
    }
    return log;
  }

  it("is emitted once per client, through process.emitWarning, naming dedup, the meters and the drop event", async () => {
    const { emitted, warned } = await capture(async ({ emitted }) => {
      const t = new MemoryTransport();
      const c = new Client("h", { transport: t, hostTag: false });
      c.send("m", 1, { a: "1" }, TS);
      assert.equal(emitted.length, 0, "no duplicate yet");
      for (let i = 0; i < 100; i++) assert.equal(c.send("m", i, { a: "1" }, TS), undefined);
      const s = await c.close();
      // Nothing else changed: one line, the rest counted.
      assert.deepEqual(t.lines(), ["put m 1700000000 1 a=1"]);
      assert.equal(s.dropped.duplicate, 100);
      balanced(s);
      const other = new Client("h", { transport: new MemoryTransport(), hostTag: false });
      other.send("n", 1, { a: "1" }, TS);
      other.send("n", 1, { a: "1" }, TS);
      await other.close();
      // With dedup off there is nothing to warn about.
      const off = new Client("h", { transport: new MemoryTransport(), hostTag: false, dedup: false });
      off.send("n", 1, { a: "1" }, TS);
      off.send("n", 1, { a: "1" }, TS);
      await off.close();
    });
    assert.equal(warned.length, 0);
    assert.equal(emitted.length, 2, "once per client that dropped a duplicate");
    const [first] = emitted;
    assert.equal(first.type, "PotsdbWarning");
    assert.equal(first.code, "POTSDB_DUPLICATE");
    for (const name of ["dedup", "client.counter", "client.gauge", "client.histogram", '"drop"', "m"]) {
      assert.ok(first.message.includes(name), `the warning names ${name}: ${first.message}`);
    }
  });

  it("goes to console.warn where there is no process.emitWarning", async () => {
    const { warned } = await capture(async () => {
      const c = new Client("h", { transport: new MemoryTransport(), hostTag: false });
      c.send("m", 1, { a: "1" }, TS);
      c.send("m", 2, { a: "1" }, TS);
      c.send("m", 3, { a: "1" }, TS);
      await c.close();
    }, false);
    assert.equal(warned.length, 1);
    assert.match(warned[0], /dedup/);
  });
});

describe("high-cardinality tag values", () => {
  it("give the same lines as a fresh encoder, past the per-key limit", () => {
    const options = { host: "h1", tags: { dc: "eu" }, prefix: "app." };
    const warm = new PutEncoder(options);
    const warmSink = sink();
    for (let i = 0; i < 3000; i++) {
      const tags: Tags = i % 3 === 0
        ? { route: "home", id: `é${i}`, z: "1" }
        : i % 3 === 1
        ? [["id", i], ["host", "other"], ["dc", "us"]]
        : { id: `v${i}`, b: "x" };
      const line = warm.encode("m", i, tags, TS);
      assert.equal(line, new PutEncoder(options).encode("m", i, tags, TS), `point ${i}`);
      warm.encodeTo(warmSink, "m", i, tags, TS);
      assert.equal(warmSink.lines[i], line, `point ${i} as bytes`);
    }
  });

  it("keep every check past the per-key limit", () => {
    const enc = new PutEncoder({ maxTags: 3, host: "h" });
    for (let i = 0; i < 1100; i++) enc.encode("m", 1, { id: `r${i}` }, TS);
    rejects(() => enc.encode("m", 1, { id: "new1", b: "1", c: "2" }, TS), "INVALID_TAG"); // 4 with host
    rejects(() => enc.encode("m", 1, { id: "new2", b: "no space" }, TS), "INVALID_TAG");
    rejects(() => enc.encode("m", 1, [["id", "new3"], ["b", "1"], ["b", "2"]], TS), "INVALID_TAG");
    rejects(() => enc.encode("m", 1, [["id", "new4"], ["host", "a"], ["host", "b"]], TS), "INVALID_TAG");
    rejects(() => enc.encode("m", 1, { id: "new5", b: "" }, TS), "INVALID_TAG");
    rejects(() => enc.encode("m", 1, { id: "v".repeat(1000) }, TS), "LINE_TOO_LONG");
    rejects(() => enc.encode("m", 1, { id: "v".repeat(5000) }, TS), "LINE_TOO_LONG");
    assert.equal(enc.encode("m", 1, { id: "new6", host: "x" }, TS), "put m 1700000000 1 id=new6 host=x\n");
    const clean = new PutEncoder({ sanitize: true });
    for (let i = 0; i < 1100; i++) clean.encode("m", 1, { id: `r${i}` }, TS);
    assert.equal(
      clean.encode("m", 1, { id: "a b", "k\n": "v", e: "" }, TS),
      "put m 1700000000 1 id=a_b k_=v\n",
    );
  });
});

describe("tags and prefix", () => {
  it("adds default tags after the caller's, which win, and prefixes every metric", async () => {
    const t = new MemoryTransport();
    const c = new Client("h", {
      transport: t,
      hostTag: "web1",
      tags: { dc: "eu", env: "prod" },
      prefix: "shop.",
    });
    c.send("orders", 1, { route: "home" }, TS);
    c.send("orders", 2, { env: "dev" }, TS);
    c.send("orders", 3, undefined, TS); // the default tags are tags: no other needed
    await c.close();
    assert.deepEqual(t.lines(), [
      "put shop.orders 1700000000 1 route=home dc=eu env=prod host=web1",
      "put shop.orders 1700000000 2 env=dev dc=eu host=web1",
      "put shop.orders 1700000000 3 dc=eu env=prod host=web1",
    ]);
  });

  it("counts default tags towards maxTags", () => {
    const t = new MemoryTransport();
    const c = new Client("h", { transport: t, hostTag: "web1", tags: { dc: "eu" }, maxTags: 3 });
    c.send("m", 1, { a: "1" }, TS);
    assert.throws(() => c.send("m", 1, { a: "1", b: "2" }, TS), ValidationError);
    c.send("m", 1, { a: "1", dc: "us" }, TS); // the caller's dc replaces the default one
    assert.throws(
      () => new Client("h", { transport: t, hostTag: "web1", tags: { a: "1", b: "2" }, maxTags: 2 }),
      OptionsError,
    );
    c.close({ timeoutMs: 0 });
  });

  it("refuses bad ones at construction with OptionsError", () => {
    const transport = new MemoryTransport();
    for (
      const bad of [
        { tags: { "a b": "1" } },
        { tags: { a: "b c" } },
        { tags: { a: "" } },
        { tags: { a: null as unknown as string } },
        { tags: { host: "x" } },
        { tags: "a=b" as unknown as Record<string, string> },
        { prefix: "my app." },
        { prefix: 5 as unknown as string },
        { selfMetricsMs: 500 },
        { selfMetricsMs: 1000, hostTag: false },
        { selfMetricsMs: 1000, hostTag: "h", maxTags: 1 },
      ]
    ) {
      assert.throws(
        () => new Client("h", { transport, hostTag: "h", ...bad }),
        OptionsError,
        JSON.stringify(bad),
      );
    }
  });

  it("sanitises them at construction when sanitising", async () => {
    const t = new MemoryTransport();
    const c = new Client("h", {
      transport: t,
      hostTag: false,
      sanitize: true,
      tags: { "d c": "e u" },
      prefix: "my app.",
    });
    c.send("m", 1, undefined, TS);
    await c.close();
    assert.deepEqual(t.lines(), ["put my_app.m 1700000000 1 d_c=e_u"]);
    assert.throws(
      () => new Client("h", { transport: t, sanitize: true, tags: { "a b": "1", a_b: "2" } }),
      OptionsError,
    );
  });

  it("checks the prefixed metric's line length", () => {
    const enc = new PutEncoder({ prefix: "p".repeat(500) });
    assert.ok(enc.encode("m".repeat(400), 1, { k: "v" }, TS));
    rejects(() => enc.encode("m".repeat(600), 1, { k: "v" }, TS), "LINE_TOO_LONG");
  });
});

describe("selfMetricsMs", () => {
  it("sends the client's counters each interval with its tags, until close()", async () => {
    const t = new MemoryTransport();
    const clock = new ManualClock();
    const c = new Client("h", {
      transport: t,
      hostTag: "web1",
      tags: { svc: "api" },
      clock,
      selfMetricsMs: 10_000,
    });
    c.send("m", 1, { a: "1" }, TS);
    c.send("m", 2, { a: "1" }, TS); // a duplicate
    await settles(c.flush(), "flush()");
    assert.equal(clock.sleeps.length, 1);
    await clock.tick(10_000);
    await settles(c.flush(), "flush()");
    const at = TS + 10;
    assert.deepEqual(t.lines().slice(1), [
      `put potsdb.client.sent ${at} 1 svc=api host=web1`,
      `put potsdb.client.queued ${at} 0 svc=api host=web1`,
      `put potsdb.client.reconnects ${at} 0 svc=api host=web1`,
      `put potsdb.client.server_errors ${at} 0 svc=api host=web1`,
      `put potsdb.client.dropped ${at} 0 reason=queueFull svc=api host=web1`,
      `put potsdb.client.dropped ${at} 0 reason=closed svc=api host=web1`,
      `put potsdb.client.dropped ${at} 0 reason=rejected svc=api host=web1`,
      `put potsdb.client.dropped ${at} 1 reason=duplicate svc=api host=web1`,
      `put potsdb.client.dropped ${at} 0 reason=spoolFull svc=api host=web1`,
    ]);
    // The same second again (a clock that stood still): sent, never counted as duplicates.
    clock.time -= 10_000;
    await clock.tick(10_000);
    const s = await c.close();
    assert.equal(t.lines().length, 19);
    assert.equal(s.selfMetrics.points, 18);
    assert.equal(s.dropped.duplicate, 1);
    assert.equal(s.accepted, 20);
    balanced(s);
    await clock.tick(10_000);
    assert.equal(t.lines().length, 19, "no round after close()");
  });

  it("skips a round when the queue has no room: the caller's points stay", async () => {
    const t = new MemoryTransport();
    t.refuse = new Error("down");
    const clock = new ManualClock();
    const c = new Client("h", {
      transport: t,
      hostTag: "web1",
      clock,
      qsize: 10,
      selfMetricsMs: 1000,
      reconnect: { initialMs: 5, maxMs: 5 },
    });
    for (let i = 0; i < 5; i++) c.send("m", i, { a: String(i) }, TS);
    await clock.tick(1000);
    const s = c.stats();
    assert.equal(s.selfMetrics.skippedRounds, 1);
    assert.equal(s.selfMetrics.points, 0);
    assert.equal(s.queued, 5);
    assert.equal(s.dropped.queueFull, 0);
    const end = await c.close({ timeoutMs: 0 });
    assert.equal(end.dropped.closed, 5);
    balanced(end);
  });
});
