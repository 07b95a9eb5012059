import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { DropOldestQueue } from "../mod.ts";

describe("DropOldestQueue", () => {
  it("is FIFO and joins batches", () => {
    const q = new DropOldestQueue(10);
    for (const s of ["a\n", "b\n", "c\n"]) q.push(s);
    assert.equal(q.length, 3);
    assert.equal(q.chars, 6);
    assert.deepEqual(q.take(2, 100), { text: "a\nb\n", count: 2 });
    assert.deepEqual(q.take(5, 100), { text: "c\n", count: 1 });
    assert.equal(q.take(5, 100), undefined);
    assert.equal(q.chars, 0);
  });

  it("drops the oldest when full and counts each drop", () => {
    const q = new DropOldestQueue(3);
    let dropped = 0;
    for (let i = 0; i < 10; i++) dropped += q.push(`${i}\n`);
    assert.equal(dropped, 7);
    assert.equal(q.dropped, 7);
    assert.equal(q.length, 3);
    assert.equal(q.take(10, 100)!.text, "7\n8\n9\n");
  });

  it("stops a batch before maxChars but always takes one entry", () => {
    const q = new DropOldestQueue(0);
    q.push("x".repeat(50));
    q.push("y".repeat(50));
    q.push("z");
    assert.equal(q.take(10, 10)!.count, 1);
    assert.equal(q.take(10, 51)!.text, "y".repeat(50) + "z");
  });

  it("honours maxCount (the rate limiter's tokens)", () => {
    const q = new DropOldestQueue(0);
    for (let i = 0; i < 5; i++) q.push("l\n");
    assert.equal(q.take(0, 100), undefined);
    assert.equal(q.take(3, 100)!.count, 3);
    assert.equal(q.length, 2);
  });

  it("grows without bound at capacity 0 and keeps order across wrap-around", () => {
    const q = new DropOldestQueue(0);
    for (let i = 0; i < 700; i++) q.push(`${i}\n`);
    q.take(600, 1e9);
    for (let i = 700; i < 5000; i++) q.push(`${i}\n`);
    assert.equal(q.length, 4400);
    assert.equal(q.dropped, 0);
    const all = q.take(1e9, 1e9)!.text.trim().split("\n").map(Number);
    assert.deepEqual(all, Array.from({ length: 4400 }, (_, i) => i + 600));
  });

  it("keeps order when a bounded ring grows and wraps", () => {
    const q = new DropOldestQueue(3000);
    for (let i = 0; i < 1500; i++) q.push(`${i}\n`);
    q.take(1000, 1e9);
    for (let i = 1500; i < 4000; i++) q.push(`${i}\n`);
    assert.equal(q.length, 3000);
    assert.equal(q.dropped, 0);
    for (let i = 4000; i < 4010; i++) q.push(`${i}\n`);
    assert.equal(q.dropped, 10);
    const all = q.take(1e9, 1e9)!.text.trim().split("\n").map(Number);
    assert.deepEqual(all, Array.from({ length: 3000 }, (_, i) => i + 1010));
  });

  it("clear() empties and reports the count", () => {
    const q = new DropOldestQueue(5);
    q.push("a\n");
    q.push("b\n");
    assert.equal(q.clear(), 2);
    assert.equal(q.length, 0);
    assert.equal(q.chars, 0);
  });

  it("rejects a negative or fractional capacity", () => {
    assert.throws(() => new DropOldestQueue(-1), RangeError);
    assert.throws(() => new DropOldestQueue(1.5), RangeError);
  });
});
