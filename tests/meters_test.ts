// Meters: counters, gauges and histograms aggregate in memory and are written as
// one report every reportMs, on flush() and on close(), with one timestamp of their
// own per report. Virtual time throughout: the client's `clock` option.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { OpenTsdbMetricExporter } from "../src/otel.ts";
import { settles } from "./helpers/servers.ts";
import {
  Client,
  ClientClosedError,
  type ClientOptions,
  type ClientStats,
  type Clock,
  MemoryTransport,
  OptionsError,
  ValidationError,
} from "../mod.ts";

const TS = 1700000000;

/** A clock whose sleeps end when the test moves the time past them. */
class VirtualClock implements Clock {
  time = TS * 1000;
  #sleeps: { until: number; resolve: () => void }[] = [];
  now(): number {
    return this.time;
  }
  sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      this.#sleeps.push({ until: this.time + ms, resolve });
      signal.addEventListener("abort", () => resolve(), { once: true });
    });
  }
  /** Moves the time on by `ms`, ends the sleeps due by then, and lets the woken code run. */
  async advance(ms: number): Promise<void> {
    this.time += ms;
    const due = this.#sleeps.filter((s) => s.until <= this.time);
    this.#sleeps = this.#sleeps.filter((s) => s.until > this.time);
    for (const s of due) s.resolve();
    await settle();
  }
}

/** Lets woken code run to its next wait: the microtasks, and a few macrotask turns (the writer's). */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 20; j++) await Promise.resolve();
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

function setup(options: ClientOptions = {}) {
  const transport = new MemoryTransport();
  const clock = new VirtualClock();
  const client = new Client("h", { transport, clock, hostTag: "web1", heartbeatMs: 0, ...options });
  /** The put lines written so far, less those returned by earlier calls. */
  let seen = 0;
  const fresh = () => {
    const all = transport.lines().filter((l) => l.startsWith("put "));
    const out = all.slice(seen);
    seen = all.length;
    return out;
  };
  return { transport, clock, client, fresh };
}

function balanced(s: ClientStats): void {
  assert.equal(s.accepted, s.sent + s.queued + s.dropped.total, JSON.stringify(s));
}

function rejects(fn: () => unknown, type: typeof ValidationError | typeof OptionsError, code: string) {
  assert.throws(fn, (e: unknown) => e instanceof type && e.code === code);
}

describe("meters: aggregation", () => {
  it("writes counters, gauges and histograms at one timestamp, under the OTel exporter's names", async () => {
    const { client, fresh } = setup();
    const requests = client.counter("http.requests", { route: "home", status: 200 });
    requests.inc();
    requests.inc(2);
    requests.inc(0.5);
    const depth = client.gauge("jobs.queued", { queue: "mail" });
    depth.set(10);
    depth.inc(3);
    depth.dec();
    const latency = client.histogram("http.latency", { route: "home" }, { buckets: [10, 100] });
    for (const v of [5, 10, 10.5, 100, 250]) latency.record(v);
    assert.equal(requests.value, 3.5);
    assert.equal(depth.value, 12);
    assert.equal(latency.count, 5);
    assert.equal(latency.sum, 375.5);
    await settles(client.flush(), "flush");
    assert.deepEqual(fresh(), [
      `put http.requests ${TS} 3.5 route=home status=200 host=web1`,
      `put jobs.queued ${TS} 12 queue=mail host=web1`,
      `put http.latency.count ${TS} 5 route=home host=web1`,
      `put http.latency.sum ${TS} 375.5 route=home host=web1`,
      `put http.latency.min ${TS} 5 route=home host=web1`,
      `put http.latency.max ${TS} 250 route=home host=web1`,
      // Cumulative, as OTel's: a value equal to a bound is in its bucket.
      `put http.latency.bucket ${TS} 2 le=10 route=home host=web1`,
      `put http.latency.bucket ${TS} 4 le=100 route=home host=web1`,
      `put http.latency.bucket ${TS} 5 le=inf route=home host=web1`,
    ]);
    const s = await settles(client.close(), "close");
    assert.deepEqual(fresh(), [], "nothing changed: close writes nothing in the same second");
    assert.deepEqual(s.meters, { meters: 3, overflow: 0, reports: 1, lines: 9, refused: 0 });
    assert.equal(s.sent, 9);
    balanced(s);
  });

  it("returns the same meter for the same series, whatever the tags' order or form", async () => {
    const { client, fresh } = setup();
    const a = client.counter("c", { x: "1", y: 2 });
    assert.equal(client.counter("c", { x: "1", y: 2 }), a);
    assert.equal(client.counter("c", { y: 2, x: "1" }), a, "another order");
    assert.equal(client.counter("c", { x: 1, y: "2" }), a, "numbers as strings");
    assert.equal(client.counter("c", new Map<string, string | number>([["x", "1"], ["y", 2]])), a);
    assert.equal(client.counter("c", [["y", "2"], ["x", "1"]]), a);
    assert.equal(client.counter("c", { x: "1", y: 2, host: "web1" }), a, "the host tag it gets anyway");
    function* pairs(): Generator<[string, string]> {
      yield ["x", "1"];
      yield ["y", "2"];
    }
    assert.equal(client.counter("c", pairs()), a, "a one-shot iterable");
    assert.notEqual(client.counter("c", { x: "2", y: 2 }), a);
    assert.notEqual(client.counter("c", { x: "1" }), a);
    assert.notEqual(client.counter("d", { x: "1", y: 2 }), a);
    const g = client.gauge("g");
    assert.equal(client.gauge("g"), g);
    assert.equal(client.gauge("g", {}), g);
    const h = client.histogram("h", { r: "a" }, { buckets: [1, 2] });
    assert.equal(client.histogram("h", { r: "a" }), h, "buckets may be left out later");
    assert.equal(client.histogram("h", { r: "a" }, { buckets: [1, 2] }), h, "or given again");
    a.inc();
    const s = await settles(client.close(), "close");
    assert.equal(s.meters.meters, 6);
    assert.ok(fresh().includes(`put c ${TS} 1 x=1 y=2 host=web1`));
  });

  it("keeps a copy of the tags: changing the caller's object later changes nothing", async () => {
    const { client, fresh } = setup();
    const tags: Record<string, string> = { route: "a" };
    const c = client.counter("c", tags);
    tags.route = "b";
    c.inc();
    await settles(client.close(), "close");
    assert.deepEqual(fresh(), [`put c ${TS} 1 route=a host=web1`]);
  });

  it("applies the client's prefix, default tags, host tag and sanitising", async () => {
    const { client, fresh } = setup({ prefix: "app.", tags: { dc: "eu" }, sanitize: true });
    client.counter("hits", { "bad key": "x y" }).inc();
    client.histogram("lat", {}, { buckets: [0.5] }).record(1);
    await settles(client.close(), "close");
    assert.deepEqual(fresh(), [
      `put app.hits ${TS} 1 bad_key=x_y dc=eu host=web1`,
      `put app.lat.count ${TS} 1 dc=eu host=web1`,
      `put app.lat.sum ${TS} 1 dc=eu host=web1`,
      `put app.lat.min ${TS} 1 dc=eu host=web1`,
      `put app.lat.max ${TS} 1 dc=eu host=web1`,
      `put app.lat.bucket ${TS} 0 le=0.5 dc=eu host=web1`,
      `put app.lat.bucket ${TS} 1 le=inf dc=eu host=web1`,
    ]);
  });

  it("times work with the client's clock: startTimer(), time() for sync and async work", async () => {
    const { client, clock, fresh } = setup();
    const h = client.histogram("work", undefined, { buckets: [10, 100] });
    const stop = h.startTimer();
    await clock.advance(25);
    assert.equal(stop(), 25);
    assert.equal(h.time(() => "sync"), "sync");
    const later = h.time(async () => {
      await clock.sleep(250, new AbortController().signal);
      return "async";
    });
    await clock.advance(250);
    assert.equal(await settles(later, "time()"), "async");
    assert.throws(() =>
      h.time(() => {
        throw new Error("boom");
      }), /boom/);
    assert.equal(h.count, 4, "errors are timed too");
    assert.equal(h.sum, 275);
    await settles(client.close(), "close");
    const lines = fresh();
    assert.deepEqual(lines, [
      `put work.count ${TS} 4 host=web1`,
      `put work.sum ${TS} 275 host=web1`,
      `put work.min ${TS} 0 host=web1`, // the sync work took no virtual time
      `put work.max ${TS} 250 host=web1`,
      `put work.bucket ${TS} 2 le=10 host=web1`,
      `put work.bucket ${TS} 3 le=100 host=web1`,
      `put work.bucket ${TS} 4 le=inf host=web1`,
    ]);
  });
});

describe("meters: reports", () => {
  it("reports every reportMs: counters cumulative, min/max of the interval, gauges once set", async () => {
    const { client, clock, fresh } = setup({ hostTag: false, tags: { app: "a" } });
    const c = client.counter("c");
    const g = client.gauge("g");
    const h = client.histogram("h", undefined, { buckets: [] });
    c.inc(2);
    h.record(7);
    await clock.advance(9_999);
    assert.deepEqual(fresh(), [], "not before reportMs");
    await clock.advance(1);
    const t1 = TS + 10;
    assert.deepEqual(fresh(), [
      `put c ${t1} 2 app=a`, // the gauge was never set: no line
      `put h.count ${t1} 1 app=a`,
      `put h.sum ${t1} 7 app=a`,
      `put h.min ${t1} 7 app=a`,
      `put h.max ${t1} 7 app=a`,
      `put h.bucket ${t1} 1 le=inf app=a`,
    ]);
    c.inc(3);
    g.set(-1.5);
    await clock.advance(10_000);
    const t2 = TS + 20;
    assert.deepEqual(fresh(), [
      `put c ${t2} 5 app=a`, // cumulative
      `put g ${t2} -1.5 app=a`,
      `put h.count ${t2} 1 app=a`,
      `put h.sum ${t2} 7 app=a`,
      // no min/max: nothing recorded in this interval
      `put h.bucket ${t2} 1 le=inf app=a`,
    ]);
    await clock.advance(10_000);
    assert.equal(fresh().length, 5, "unchanged meters are written again on the interval");
    const s = await settles(client.close(), "close");
    assert.equal(s.meters.reports, 3);
    balanced(s);
  });

  it("honours reportMs and starts no report before the first meter", async () => {
    const { client, clock, fresh } = setup({ reportMs: 60_000 });
    await clock.advance(120_000);
    assert.deepEqual(fresh(), []);
    client.counter("c").inc();
    await clock.advance(59_000);
    assert.deepEqual(fresh(), []);
    await clock.advance(1_000);
    assert.deepEqual(fresh(), [`put c ${TS + 180} 1 host=web1`]);
    await settles(client.close(), "close");
  });

  it("never gives two reports one timestamp: unchanged skipped, changed written when the second is over", async () => {
    const { client, clock, fresh } = setup();
    const c = client.counter("c");
    c.inc();
    await settles(client.flush(), "flush");
    assert.deepEqual(fresh(), [`put c ${TS} 1 host=web1`]);
    await clock.advance(400);
    await settles(client.flush(), "flush");
    assert.deepEqual(fresh(), [], "nothing changed in this second: nothing to write");
    c.inc();
    let flushed = false;
    const flush = client.flush().then(() => flushed = true);
    await settle();
    assert.equal(flushed, false, "a changed report in the same second waits for the next");
    assert.deepEqual(fresh(), []);
    c.inc(); // still counted in that report
    await clock.advance(600);
    await settles(flush, "flush");
    assert.deepEqual(fresh(), [`put c ${TS + 1} 3 host=web1`]);
    c.inc();
    const s = await settles(client.close(), "close");
    // close() does not wait: its last report goes one second ahead, once.
    assert.deepEqual(fresh(), [`put c ${TS + 2} 4 host=web1`]);
    assert.equal(s.meters.reports, 3);
    assert.equal(s.dropped.duplicate, 0);
  });

  it("an interval report in the second of a flush waits for the next second too", async () => {
    const { client, clock, fresh } = setup();
    const c = client.counter("c");
    c.inc();
    await clock.advance(9_500);
    await settles(client.flush(), "flush"); // at TS+9.5
    assert.deepEqual(fresh(), [`put c ${TS + 9} 1 host=web1`]);
    await clock.advance(400); // TS+9.9
    c.inc();
    await clock.advance(100); // TS+10.0: the interval's report, a new second
    assert.deepEqual(fresh(), [`put c ${TS + 10} 2 host=web1`]);
    await settles(client.close(), "close");
  });

  it("reports in milliseconds with the milliseconds option", async () => {
    const { client, clock, fresh } = setup({ milliseconds: true, hostTag: false });
    const c = client.counter("c", { a: "1" });
    c.inc();
    await settles(client.flush(), "flush");
    await clock.advance(1);
    c.inc();
    await settles(client.flush(), "flush");
    assert.deepEqual(fresh(), [`put c ${TS * 1000} 1 a=1`, `put c ${TS * 1000 + 1} 2 a=1`]);
    await settles(client.close(), "close");
  });

  it("counts report lines that push older points out of a full queue", async () => {
    const { client, transport } = setup({ qsize: 2 });
    transport.refuse = new Error("down");
    const drops: number[] = [];
    client.addEventListener("drop", (e) => drops.push(e.detail.count));
    client.histogram("h", undefined, { buckets: [1] }).record(0.5); // 6 lines
    const s = await settles(client.close({ timeoutMs: 0 }), "close");
    assert.equal(s.meters.lines, 6);
    assert.equal(s.dropped.queueFull, 4);
    assert.equal(drops.reduce((a, b) => a + b, 0), 6, "4 pushed out, 2 left at close");
    balanced(s);
  });
});

describe("meters and the OpenTelemetry exporter", () => {
  it("write the same series: names, tags and bucket bounds, so one dashboard reads both", async () => {
    const bounds = [0.5, 10, 250];
    const { client, fresh } = setup({ hostTag: "web1" });
    client.counter("http.requests", { route: "home", status: 200 }).inc(3);
    const latency = client.histogram("http.latency", { route: "home", status: 200 }, { buckets: bounds });
    for (const v of [0.2, 7, 300]) latency.record(v);
    await settles(client.close(), "close");

    // What the SDK hands the exporter for the same instruments (its types are structural).
    const otel = new MemoryTransport();
    const exporterClient = new Client("h", { transport: otel, hostTag: "web1", heartbeatMs: 0 });
    const exporter = new OpenTsdbMetricExporter(exporterClient, { buckets: true });
    const at: [number, number] = [TS, 0];
    const attributes = { route: "home", status: 200 };
    exporter.export({
      resource: { attributes: {} },
      scopeMetrics: [{
        metrics: [
          {
            descriptor: { name: "http.requests" },
            aggregationTemporality: 1,
            dataPointType: 3,
            dataPoints: [{ startTime: at, endTime: at, attributes, value: 3 }],
          },
          {
            descriptor: { name: "http.latency" },
            aggregationTemporality: 1,
            dataPointType: 0,
            dataPoints: [{
              startTime: at,
              endTime: at,
              attributes,
              value: {
                count: 3,
                sum: 307.2,
                min: 0.2,
                max: 300,
                buckets: { boundaries: bounds, counts: [1, 1, 0, 1] },
              },
            }],
          },
        ],
      }],
    }, () => {});
    await settles(exporterClient.close(), "close");

    /** metric, sorted tags and value of each line: the timestamps are the only difference allowed. */
    const series = (lines: string[]) =>
      lines.map((l) => {
        const [, metric, , value, ...tags] = l.split(" ");
        return `${metric} ${tags.sort().join(" ")} ${value}`;
      }).sort();
    assert.deepEqual(series(fresh()), series(otel.lines()));
  });
});

describe("meters: edges", () => {
  it("a close() while a flush waits for the next second writes once, and the flush settles", async () => {
    const { client, clock, fresh } = setup();
    const c = client.counter("c");
    c.inc();
    await settles(client.flush(), "flush");
    c.inc();
    const waiting = client.flush().then(() => "flushed", (e) => e);
    await settle();
    const s = await settles(client.close(), "close");
    assert.equal(await settles(waiting, "the waiting flush"), "flushed");
    await clock.advance(1000); // the wait's sleep was cut short by close(): nothing more is written
    assert.deepEqual(fresh(), [`put c ${TS} 1 host=web1`, `put c ${TS + 1} 2 host=web1`]);
    assert.equal(s.meters.reports, 2);
  });

  it("finds its meters again after the look-up cache forgets them", async () => {
    const { client, fresh } = setup({ sanitize: true, maxMeters: 1 });
    const first = client.counter("c", { v: "x_" });
    // 2,000 spellings of one tag value (a symbol, sanitised to "_"): more paths than the cache keeps.
    for (let i = 0; i < 2000; i++) {
      assert.equal(
        client.counter("c", { v: "x" + String.fromCharCode(0x2200 + i) }),
        first,
      );
    }
    assert.equal(client.counter("c", { v: "x_" }), first);
    first.inc();
    const s = await settles(client.close(), "close");
    assert.deepEqual(s.meters, { meters: 1, overflow: 0, reports: 1, lines: 1, refused: 0 });
    assert.deepEqual(fresh(), [`put c ${TS} 1 v=x_ host=web1`]);
  });

  it("times a promise that rejects, and passes the rejection on", async () => {
    const { client, clock } = setup();
    const h = client.histogram("h");
    const failing = h.time(async () => {
      await clock.sleep(30, new AbortController().signal);
      throw new Error("refused");
    });
    const outcome = failing.then(() => "resolved", (e: Error) => e.message); // handled before it settles
    await clock.advance(30);
    assert.equal(await settles(outcome, "time()"), "refused");
    assert.equal(h.count, 1);
    assert.equal(h.sum, 30);
    await settles(client.close(), "close");
  });
});

describe("meters: bounds and bad input", () => {
  it("caps distinct meters at maxMeters; the overflow works, is counted, and is never reported", async () => {
    const { client, fresh } = setup({ maxMeters: 2 });
    const a = client.counter("c", { user: "1" });
    const b = client.counter("c", { user: "2" });
    const over = client.counter("c", { user: "3" });
    const over2 = client.histogram("h");
    over.inc(5);
    over2.record(1);
    assert.equal(over.value, 5);
    assert.equal(client.counter("c", { user: "1" }), a, "existing meters are still found");
    assert.equal(client.counter("c", { user: "2" }), b);
    a.inc();
    assert.deepEqual(client.stats().meters, { meters: 2, overflow: 2, reports: 0, lines: 0, refused: 0 });
    const s = await settles(client.close(), "close");
    assert.deepEqual(fresh(), [`put c ${TS} 1 user=1 host=web1`, `put c ${TS} 0 user=2 host=web1`]);
    assert.equal(s.meters.overflow, 2);
  });

  it("throws a ValidationError at the call site for names and tags OpenTSDB rejects", async () => {
    const { client, fresh } = setup({ maxTags: 3 });
    rejects(() => client.counter("has space"), ValidationError, "INVALID_METRIC");
    rejects(() => client.counter(""), ValidationError, "INVALID_METRIC");
    rejects(() => client.gauge("g", { "a=b": "1" }), ValidationError, "INVALID_TAG");
    rejects(() => client.gauge("g", { a: "x\ny" }), ValidationError, "INVALID_TAG");
    rejects(() => client.gauge("g", { a: null as unknown as string }), ValidationError, "INVALID_TAG");
    rejects(
      () => client.counter("c", "a=1" as unknown as Record<string, string>),
      ValidationError,
      "INVALID_TAG",
    );
    rejects(
      () => client.counter("c", [["a"]] as unknown as [string, string][]),
      ValidationError,
      "INVALID_TAG",
    );
    rejects(() => client.counter("c", { a: "1", b: "2", c: "3" }), ValidationError, "INVALID_TAG"); // + host
    // A histogram's bucket lines carry `le`: one tag fewer for the caller.
    client.counter("ok", { a: "1", b: "2" });
    rejects(() => client.histogram("h", { a: "1", b: "2" }), ValidationError, "INVALID_TAG");
    rejects(() => client.histogram("h", { le: "5" }), ValidationError, "INVALID_TAG");
    rejects(() => client.counter("c", { a: "x".repeat(1000) }), ValidationError, "LINE_TOO_LONG");
    // One series, one kind.
    client.counter("k", { a: "1" });
    rejects(() => client.gauge("k", { a: "1" }), ValidationError, "INVALID_METRIC");
    rejects(() => client.histogram("k", { a: "1" }), ValidationError, "INVALID_METRIC");
    const s = await settles(client.close(), "close");
    assert.equal(s.meters.meters, 2, "nothing was made for bad input");
    assert.deepEqual(fresh(), [`put ok ${TS} 0 a=1 b=2 host=web1`, `put k ${TS} 0 a=1 host=web1`]);
  });

  it("refuses bad values, and the meter keeps its value", async () => {
    const { client } = setup();
    const c = client.counter("c");
    const g = client.gauge("g");
    const h = client.histogram("h");
    c.inc(2);
    g.set(1);
    for (const bad of [-1, NaN, Infinity, "1", 1n, null]) {
      rejects(() => c.inc(bad as number), ValidationError, "INVALID_VALUE");
    }
    for (const bad of [NaN, Infinity, -Infinity, "1", undefined]) {
      rejects(() => g.set(bad as number), ValidationError, "INVALID_VALUE");
      rejects(() => h.record(bad as number), ValidationError, "INVALID_VALUE");
    }
    rejects(() => g.inc(NaN), ValidationError, "INVALID_VALUE");
    rejects(() => g.dec(Infinity), ValidationError, "INVALID_VALUE");
    assert.equal(c.value, 2);
    assert.equal(g.value, 1);
    assert.equal(h.count, 0);
    await settles(client.close(), "close");
  });

  it("refuses bad buckets and options with an OptionsError", async () => {
    const { client } = setup();
    rejects(() => client.histogram("h", {}, { buckets: [2, 1] }), OptionsError, "INVALID_OPTION");
    rejects(() => client.histogram("h", {}, { buckets: [1, 1] }), OptionsError, "INVALID_OPTION");
    rejects(() => client.histogram("h", {}, { buckets: [1, NaN] }), OptionsError, "INVALID_OPTION");
    rejects(
      () => client.histogram("h", {}, { buckets: "1" as unknown as number[] }),
      OptionsError,
      "INVALID_OPTION",
    );
    client.histogram("h", {}, { buckets: [1, 2] });
    rejects(() => client.histogram("h", {}, { buckets: [1, 3] }), OptionsError, "INVALID_OPTION");
    await settles(client.close(), "close");
    const t = new MemoryTransport();
    for (const bad of [{ reportMs: 999 }, { reportMs: 1.5 }, { maxMeters: 0 }, { maxMeters: -1 }]) {
      rejects(
        () => new Client("h", { transport: t, hostTag: false, ...bad }),
        OptionsError,
        "INVALID_OPTION",
      );
    }
  });

  it("refuses new look-ups after close(); handles kept stay harmless", async () => {
    const { client } = setup();
    const c = client.counter("c");
    await settles(client.close(), "close");
    assert.throws(() => client.counter("c"), ClientClosedError);
    assert.throws(() => client.gauge("g"), ClientClosedError);
    assert.throws(() => client.histogram("h"), ClientClosedError);
    c.inc();
    assert.equal(c.value, 1);
  });
});
