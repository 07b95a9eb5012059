// putLinesToJson (the HTTP transport's `put` line → /api/put JSON conversion): every line gives the
// JSON object a split-and-JSON.stringify reading gives, valid JSON whatever the input, and a cell that
// does not depend on the order of the tags.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { type JsonPoint, lineOf, putLinesToJson } from "../src/transport/put_json.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

/** What the line means, read the slow and obvious way. */
function expected(line: string) {
  const words = line.split(" ");
  // As JSON.parse makes it: "__proto__" is an own key there, not the prototype.
  const tags: Record<string, string> = {};
  for (const word of words.slice(4)) {
    const eq = word.indexOf("=");
    if (eq > 0) {
      Object.defineProperty(tags, word.slice(0, eq), {
        value: word.slice(eq + 1),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  const value = words[3];
  return {
    metric: words[1],
    timestamp: Number(words[2]),
    value: JSON_NUMBER.test(value) ? Number(value) : value,
    tags,
  };
}

function convert(text: string) {
  const input = encoder.encode(text);
  const points: JsonPoint<string>[] = [];
  const json = putLinesToJson(input, "batch", points);
  const objects = points.map((p) => JSON.parse(decoder.decode(json.subarray(p.start, p.end))));
  return { input, points, json, objects };
}

// Names as the encoder allows them: ASCII letters, digits, -_./ and Unicode letters.
const name = fc.stringMatching(/^[A-Za-z0-9._\/\-éüßжλ東]{1,12}$/);
const value = fc.oneof(
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String),
);
const timestamp = fc.integer({ min: 1, max: 9_999_999_999_999 }).map(String);
const tagSet = fc.uniqueArray(fc.tuple(name, name), { maxLength: 8, selector: ([k]) => k });
const line = fc.tuple(name, timestamp, value, tagSet).map(([m, t, v, tags]) =>
  `put ${m} ${t} ${v}${tags.map(([k, x]) => ` ${k}=${x}`).join("")}`
);

describe("putLinesToJson", () => {
  it("an encoder-made line gives the object its words say", () => {
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 20 }), (lines) => {
        const { input, points, objects, json } = convert(lines.map((l) => l + "\n").join(""));
        assert.equal(points.length, lines.length);
        assert.deepEqual(objects, lines.map(expected));
        lines.forEach((l, i) => assert.equal(lineOf(input, points[i]), l));
        // The objects follow each other one comma apart: a run of them is an array's inside.
        const end = points.at(-1)!.end;
        assert.deepEqual(JSON.parse(`[${decoder.decode(json.subarray(0, end))}]`), objects);
      }),
      { numRuns: 3000 },
    );
  });

  it("any other line still gives valid JSON, through JSON.stringify", () => {
    const word = fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 8 }).filter((w) =>
      !/[ \n=]/.test(w)
    );
    const odd = fc.tuple(word, timestamp, word, fc.array(fc.tuple(word, word), { maxLength: 4 })).map((
      [m, t, v, tags],
    ) => `put ${m} ${t} ${v}${tags.map(([k, x]) => ` ${k}=${x}`).join("")}`);
    fc.assert(
      fc.property(odd, (l) => {
        const { objects } = convert(l + "\n");
        const want = expected(l);
        assert.deepEqual(objects[0], want);
      }),
      { numRuns: 3000 },
    );
    const { objects } = convert('put a.b 1700000000 1 k="quoted\\" x=\t\n');
    assert.deepEqual(objects, [{
      metric: "a.b",
      timestamp: 1700000000,
      value: 1,
      tags: { k: '"quoted\\"', x: "\t" },
    }]);
  });

  it("one cell whatever the order of its tags; another timestamp, metric or tag is another cell", () => {
    const { points } = convert(
      [
        "put m 1700000000 1 a=1 b=2 c=3",
        "put m 1700000000 9 c=3 a=1 b=2",
        "put m 1700000001 1 a=1 b=2 c=3",
        "put n 1700000000 1 a=1 b=2 c=3",
        "put m 1700000000 1 a=1 b=2 c=4",
        'put m 1700000000 1 a=1 b=2 c=3 "=x', // the slow path: the same hash for the words both share
        "",
      ].join("\n"),
    );
    const cells = points.map((p) => p.cell);
    assert.equal(cells[0], cells[1]);
    assert.equal(new Set(cells.slice(1, 5)).size, 4);
    assert.ok(cells.every((c) => Number.isInteger(c) && c >= 0 && c < 2 ** 30));
  });

  it('a tag named "__proto__" is a tag like any other', () => {
    const { objects } = convert("put _ 1 0 __proto__=0\n");
    assert.deepEqual(Object.keys(objects[0].tags), ["__proto__"]);
    assert.equal(Object.getOwnPropertyDescriptor(objects[0].tags, "__proto__")?.value, "0");
  });

  it("empty lines are skipped, and a last line without a newline counts", () => {
    const { points, objects } = convert("\nput a 1 1\n\nput b 2 2 k=v");
    assert.equal(points.length, 2);
    assert.deepEqual(objects.map((o) => o.metric), ["a", "b"]);
  });
});
