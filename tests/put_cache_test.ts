// The encoder remembers validated metrics and tag sets; these tests check that a
// remembered result is always the same as a fresh one, and that errors still come.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PutEncoder, type Tags, ValidationError } from "../mod.ts";

const TS = 1700000000;

function rejects(fn: () => unknown, code: string) {
  assert.throws(fn, (e: unknown) => e instanceof ValidationError && e.code === code);
}

describe("PutEncoder caches", () => {
  it("gives the same line on a repeat as a fresh encoder does", () => {
    const warm = new PutEncoder({ host: "h1" });
    const sets: Tags[] = [{ a: "1", b: "2" }, { b: "2", a: "1" }, { a: "1" }, { a: "1", b: "3" }, {
      host: "x",
    }];
    for (let i = 0; i < 3; i++) {
      for (const tags of sets) {
        assert.equal(
          warm.encode("m", i, tags, TS + i),
          new PutEncoder({ host: "h1" }).encode("m", i, tags, TS + i),
        );
      }
    }
  });

  it("keeps the key order of each call and follows a changing timestamp", () => {
    const enc = new PutEncoder();
    assert.equal(enc.encode("m", 1, { a: "1", b: "2" }, TS), "put m 1700000000 1 a=1 b=2\n");
    assert.equal(enc.encode("m", 1, { b: "2", a: "1" }, TS), "put m 1700000000 1 b=2 a=1\n");
    assert.equal(enc.encode("m", 2, { a: "1", b: "2" }, TS + 1), "put m 1700000001 2 a=1 b=2\n");
    assert.equal(enc.encode("m", 3, { a: "1", b: "2" }, TS), "put m 1700000000 3 a=1 b=2\n");
    assert.equal(enc.encode("m", 4, { a: "1" }, undefined, 1700000005123), "put m 1700000005 4 a=1\n");
  });

  it("tells tag values of different types apart but writes them alike", () => {
    const enc = new PutEncoder();
    assert.equal(enc.encode("m", 1, { k: 1 }, TS), "put m 1700000000 1 k=1\n");
    assert.equal(enc.encode("m", 1, { k: "1" }, TS), "put m 1700000000 1 k=1\n");
    assert.equal(enc.encode("m", 1, { k: 1n }, TS), "put m 1700000000 1 k=1\n");
    assert.equal(enc.encode("m", 1, { k: true }, TS), "put m 1700000000 1 k=true\n");
  });

  it("still rejects bad input after good input that shares a prefix", () => {
    const enc = new PutEncoder({ maxTags: 2 });
    enc.encode("m", 1, { a: "1", b: "2" }, TS);
    rejects(() => enc.encode("m", 1, { a: "1", b: "2", c: "3" }, TS), "INVALID_TAG");
    rejects(() => enc.encode("m", 1, { a: "1", b: "no space" }, TS), "INVALID_TAG");
    rejects(() => enc.encode("m", 1, { a: "1", b: null as unknown as string }, TS), "INVALID_TAG");
    rejects(() => enc.encode("m", NaN, { a: "1", b: "2" }, TS), "INVALID_VALUE");
    rejects(() => enc.encode("m", 1, { a: "1", b: "2" }, -1), "INVALID_TIMESTAMP");
    rejects(() => enc.encode("m m", 1, { a: "1" }, TS), "INVALID_METRIC");
    rejects(() => enc.encode("m", 1, {}, TS), "INVALID_TAG");
    assert.equal(enc.encode("m", 1, { a: "1", b: "2" }, TS), "put m 1700000000 1 a=1 b=2\n");
  });

  it("checks the line length of each point, not of the cached tags alone", () => {
    const enc = new PutEncoder();
    const long = "v".repeat(990);
    assert.ok(enc.encode("m", 1, { k: long }, TS));
    rejects(() => enc.encode("m".repeat(40), 1, { k: long }, TS), "LINE_TOO_LONG");
    rejects(() => enc.encode("m", 1.2345678901234567e-300, { k: long }, TS), "LINE_TOO_LONG");
  });

  it("sanitises the same way on a repeat, duplicates included", () => {
    const enc = new PutEncoder({ sanitize: true });
    for (let i = 0; i < 2; i++) {
      assert.equal(
        enc.encode("a b", 1, { "k\n": "v=1", empty: "", x: "y" }, TS),
        "put a_b 1700000000 1 k_=v_1 x=y\n",
      );
      rejects(() => enc.encode("m", 1, { "a b": "1", "a_b": "2" }, TS), "INVALID_TAG");
    }
  });

  it("stays right past the cache limits (many metrics, many tag sets)", () => {
    const enc = new PutEncoder({ host: "h" });
    for (let i = 0; i < 40_000; i++) {
      const line = enc.encode(`m${i % 5000}`, i, { id: String(i), k: "v" }, TS);
      assert.equal(line, `put m${i % 5000} 1700000000 ${i} id=${i} k=v host=h\n`);
    }
  });
});
