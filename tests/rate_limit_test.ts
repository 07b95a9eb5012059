import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Client, MemoryTransport } from "../mod.ts";
import { Backoff, sleep } from "../src/backoff.ts";
import { TokenBucket } from "../src/rate_limit.ts";

describe("TokenBucket", () => {
  it("grants a second's worth at once, then the rate", () => {
    let now = 0;
    const b = new TokenBucket(1000, 1000, () => now);
    assert.equal(b.take(5000), 1000);
    assert.equal(b.take(1), 0);
    now += 250;
    assert.equal(b.available(), 250);
    assert.equal(b.take(1000), 250);
    assert.equal(b.msUntil(100), 100);
    now += 10_000;
    assert.equal(b.available(), 1000, "never more than the burst");
  });

  it("gives back unused tokens up to the burst", () => {
    const now = 0;
    const b = new TokenBucket(10, 10, () => now);
    assert.equal(b.take(10), 10);
    b.giveBack(4);
    assert.equal(b.take(10), 4);
    b.giveBack(100);
    assert.equal(b.available(), 10);
  });

  it("a clock stepping back resets the reference time: no negative refill, no stall", () => {
    let now = 10_000_000;
    const b = new TokenBucket(10, 10, () => now);
    assert.equal(b.take(10), 10);
    now -= 3_600_000; // the clock steps back an hour
    assert.equal(b.available(), 0, "a step back adds no tokens");
    assert.equal(b.msUntil(1), 100, "the wait is the rate's, not the hour's");
    now += 100;
    assert.equal(b.take(10), 1);
    now += 500;
    assert.equal(b.take(10), 5);
    now += 10_000;
    assert.equal(b.available(), 10);
  });

  it("rejects a zero rate", () => {
    assert.throws(() => new TokenBucket(0), RangeError);
  });
});

describe("mps limit in the writer (virtual clock)", () => {
  it("writes 5000 points at 1000/s in 4 virtual seconds after a 1 s burst", async () => {
    let now = 0;
    const clock = {
      now: () => now,
      sleep: async (ms: number) => {
        now += ms;
        await Promise.resolve();
      },
    };
    const transport = new MemoryTransport();
    const client = new Client("memory", { transport, mps: 1000, clock, hostTag: false, dedup: false });
    for (let i = 0; i < 5000; i++) client.send("m", i, { a: "b" }, 1700000000);
    await client.flush();
    assert.equal(transport.lines().length, 5000);
    assert.ok(now >= 4000 && now <= 4100, `virtual time ${now} ms`);
    // No write ever exceeds what the bucket allowed in that instant.
    for (const chunk of transport.chunks) assert.ok(chunk.split("\n").length - 1 <= 1000);
    await client.close();
  });

  it("keeps delivering at mps when the clock steps back an hour", async () => {
    let now = 10_000_000;
    let slept = 0;
    let stepped = false;
    const clock = {
      now: () => now,
      sleep: async (ms: number) => {
        slept += ms;
        now += ms;
        if (!stepped) {
          stepped = true;
          now -= 3_600_000;
        }
        await Promise.resolve();
      },
    };
    const transport = new MemoryTransport();
    const client = new Client("memory", { transport, mps: 10, clock, hostTag: false, dedup: false });
    for (let i = 0; i < 30; i++) client.send("m", i, { a: "b" }, 1700000000);
    await client.flush();
    assert.equal(transport.lines().length, 30);
    // 10 at once, then 20 at 10 per second: two virtual seconds of waiting, not an hour.
    assert.ok(slept >= 2000 && slept <= 2100, `slept ${slept} virtual ms`);
    await client.close();
  });

  it("no limit when mps is 0", async () => {
    let now = 0;
    const clock = { now: () => now, sleep: (ms: number) => Promise.resolve(void (now += ms)) };
    const transport = new MemoryTransport();
    const client = new Client("memory", { transport, clock, hostTag: false, dedup: false });
    for (let i = 0; i < 5000; i++) client.send("m", i, { a: "b" }, 1700000000);
    await client.flush();
    assert.equal(now, 0);
    await client.close();
  });
});

describe("Backoff", () => {
  it("doubles up to the cap with equal jitter", () => {
    const top = new Backoff({ initialMs: 100, maxMs: 1000 }, () => 0.999999);
    const low = new Backoff({ initialMs: 100, maxMs: 1000 }, () => 0);
    const highs = Array.from({ length: 6 }, () => top.next());
    const lows = Array.from({ length: 6 }, () => low.next());
    assert.deepEqual(highs, [100, 200, 400, 800, 1000, 1000]);
    assert.deepEqual(lows, [50, 100, 200, 400, 500, 500]);
    top.reset();
    assert.equal(top.next(), 100);
  });

  it("sleep() never arms a timer beyond 2^31-1 ms: a longer wait is a chain of timers", async () => {
    // A delay above 2^31-1 ms is taken as ~1 ms by every runtime: with mps 1e-7 the
    // writer would wake every millisecond. Spy on the timers instead of waiting.
    const bucket = new TokenBucket(1e-7, 1, () => 0);
    assert.equal(bucket.take(1), 1);
    const wait = bucket.msUntil(1);
    assert.equal(wait, 1e10);
    const armed: { fn: () => void; ms: number }[] = [];
    const seen: unknown[] = [];
    const realSet = globalThis.setTimeout;
    const realClear = globalThis.clearTimeout;
    let resolved = false;
    // Only microtasks run while the spies are in place: no real timer is armed meanwhile.
    globalThis.setTimeout = ((fn: () => void, ms: number) => {
      armed.push({ fn, ms });
      return { unref() {}, ref() {} };
    }) as unknown as typeof setTimeout;
    globalThis.clearTimeout = (() => {}) as typeof clearTimeout;
    try {
      const slept = sleep(wait, undefined, (timer) => seen.push(timer)).then(() => {
        resolved = true;
      });
      // Fire each timer as it comes due.
      while (!resolved && armed.length <= 10) {
        armed[armed.length - 1].fn();
        await Promise.resolve();
      }
      await slept;
    } finally {
      globalThis.setTimeout = realSet;
      globalThis.clearTimeout = realClear;
    }
    assert.ok(armed.every((t) => t.ms <= 2147483647), armed.map((t) => t.ms).join(","));
    assert.equal(armed.reduce((sum, t) => sum + t.ms, 0), 1e10, "the chain adds up to the wait");
    assert.equal(armed.length, Math.ceil(1e10 / 2147483647));
    assert.equal(seen.length, armed.length, "onTimer sees every timer of the chain (to unref it)");
  });

  it("sleep() resolves early on abort", async () => {
    // Resolved by the abort itself, so before a timer of 0 ms set after it, whatever the load.
    const beforeATimer = (p: Promise<void>) =>
      Promise.race([p.then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 0))]);
    const c = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const p = sleep(24 * 3600_000, c.signal, (t) => timer = t);
    c.abort();
    assert.equal(await beforeATimer(p), true, "the abort ends the sleep");
    // (A timer left running would hold this process for a day.)
    assert.ok(timer !== undefined);
    assert.equal(await beforeATimer(sleep(24 * 3600_000, c.signal)), true, "an aborted signal: at once");
  });
});
