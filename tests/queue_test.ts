import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { OptionsError, PutEncoder, ValidationError } from "../mod.ts";
import { type Batch, DropOldestQueue } from "../src/queue.ts";

const utf8 = new TextDecoder();
const text = (batch: Batch | undefined) => batch === undefined ? undefined : utf8.decode(batch.data);

/** Takes batches until the queue is empty; returns their lines in order. */
function drain(q: DropOldestQueue, maxCount = 1e9, maxBytes = 1e9): string[] {
  const lines: string[] = [];
  for (let batch = q.take(maxCount, maxBytes); batch; batch = q.take(maxCount, maxBytes)) {
    const got = utf8.decode(batch.data).split("\n").slice(0, -1);
    assert.equal(got.length, batch.count, "a batch's count is the lines it holds");
    lines.push(...got);
  }
  return lines;
}

describe("DropOldestQueue", () => {
  it("is FIFO and joins batches", () => {
    const q = new DropOldestQueue(10);
    for (const s of ["a\n", "b\n", "c\n"]) q.push(s);
    assert.equal(q.length, 3);
    assert.equal(q.bytes, 6);
    const first = q.take(2, 100)!;
    assert.equal(first.count, 2);
    assert.equal(text(first), "a\nb\n");
    assert.equal(text(q.take(5, 100)), "c\n");
    assert.equal(q.take(5, 100), undefined);
    assert.equal(q.bytes, 0);
  });

  it("drops the oldest when full and counts each drop", () => {
    const q = new DropOldestQueue(3);
    let dropped = 0;
    for (let i = 0; i < 10; i++) dropped += q.push(`${i}\n`);
    assert.equal(dropped, 7);
    assert.equal(q.dropped, 7);
    assert.equal(q.length, 3);
    assert.deepEqual(drain(q), ["7", "8", "9"]);
  });

  it("stops a batch before maxBytes but always takes one line", () => {
    const q = new DropOldestQueue(0);
    q.push("x".repeat(50));
    q.push("y".repeat(50));
    q.push("z");
    assert.equal(q.take(10, 10)!.count, 1);
    assert.equal(text(q.take(10, 51)), "y".repeat(50) + "z");
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
    for (let i = 700; i < 50_000; i++) q.push(`${i}\n`);
    assert.equal(q.length, 49_400);
    assert.equal(q.dropped, 0);
    assert.deepEqual(
      drain(q).map(Number),
      Array.from({ length: 49_400 }, (_, i) => String(i + 600)).map(Number),
    );
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
    assert.deepEqual(drain(q).map(Number), Array.from({ length: 3000 }, (_, i) => i + 1010));
  });

  it("holds lines as UTF-8, multi-byte characters included", () => {
    const q = new DropOldestQueue(0);
    q.push("put m 1 1 k=é中\n");
    q.push("put m 1 1 k=\u{1F600}\n");
    assert.equal(q.bytes, 18 + 17); // é 2 bytes, 中 3, 😀 4
    assert.deepEqual(drain(q), ["put m 1 1 k=é中", "put m 1 1 k=\u{1F600}"]);
  });

  it("takes the parts PutEncoder.encodeTo gives it, and nothing for an invalid point", () => {
    const q = new DropOldestQueue(0);
    const encoder = new PutEncoder({ host: "wéb" });
    assert.equal(encoder.encodeTo(q, "m", 1.5, { k: "v" }, 1700000000), 0);
    assert.throws(() => encoder.encodeTo(q, "m", 1, { k: "a b" }, 1700000000));
    assert.equal(q.length, 1);
    assert.deepEqual(drain(q), [encoder.encode("m", 1.5, { k: "v" }, 1700000000).slice(0, -1)]);
  });

  it("clear() empties and reports the count", () => {
    const q = new DropOldestQueue(5);
    q.push("a\n");
    q.push("b\n");
    assert.equal(q.clear(), 2);
    assert.equal(q.length, 0);
    assert.equal(q.bytes, 0);
    assert.equal(q.take(10, 100), undefined);
  });

  it("rejects a negative or fractional capacity, and an empty line", () => {
    assert.throws(() => new DropOldestQueue(-1), OptionsError);
    assert.throws(() => new DropOldestQueue(1.5), OptionsError);
    assert.throws(() => new DropOldestQueue(1).push(""), ValidationError);
  });

  it("behaves as an array that drops its oldest, for any mix of pushes and takes", () => {
    // Lines of 1..3000 bytes so the byte ring wraps, grows and shrinks back.
    const op = fc.oneof(
      fc.record({ push: fc.integer({ min: 1, max: 3000 }), times: fc.integer({ min: 1, max: 200 }) }),
      fc.record({ take: fc.integer({ min: 1, max: 300 }), maxBytes: fc.integer({ min: 1, max: 200_000 }) }),
      fc.constant({ clear: true }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 500 }), fc.array(op, { maxLength: 60 }), (capacity, ops) => {
        const q = new DropOldestQueue(capacity);
        const model: string[] = [];
        let dropped = 0;
        let n = 0;
        for (const o of ops) {
          if ("push" in o) {
            for (let i = 0; i < o.times; i++) {
              const id = String(n++);
              const line: string = id + " " + "x".repeat(Math.max(0, o.push - id.length - 2)) + "\n";
              model.push(line);
              let expected = 0;
              if (capacity !== 0 && model.length > capacity) {
                model.shift();
                expected = 1;
                dropped++;
              }
              assert.equal(q.push(line), expected);
            }
          } else if ("take" in o) {
            const batch = q.take(o.take, o.maxBytes);
            if (model.length === 0) {
              assert.equal(batch, undefined);
              continue;
            }
            assert.ok(batch !== undefined && batch.count >= 1 && batch.count <= o.take);
            const lines = model.splice(0, batch.count);
            assert.equal(utf8.decode(batch.data), lines.join(""));
            if (batch.count > 1) assert.ok(batch.data.length <= o.maxBytes);
            // As many as the limits allow: a batch does not stop early (at the ring's wrap, say).
            if (batch.count < o.take && model.length > 0) {
              assert.ok(batch.data.length + model[0].length > o.maxBytes, "the batch stopped early");
            }
          } else {
            assert.equal(q.clear(), model.length);
            model.length = 0;
          }
          assert.equal(q.length, model.length);
          assert.equal(q.bytes, model.reduce((sum, l) => sum + l.length, 0));
          assert.equal(q.dropped, dropped);
        }
        assert.equal(drain(q).join("\n") + (model.length ? "\n" : ""), model.join(""));
      }),
      { numRuns: 300 },
    );
  });
});
