// CellCounts (the HTTP transport's cells in requests out) against a Map that does the same.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { CellCounts } from "../src/transport/cell_counts.ts";

describe("CellCounts", () => {
  it("agrees with a Map of counts through any adds and removes, colliding slots included", () => {
    // Cells that share their low bits land in one run of slots, so deletion must shift entries back.
    const cell = fc.integer({ min: 0, max: 200 }).map((x) => ((x * 4096 + (x % 7)) & 0x3fffffff));
    const op = fc.tuple(fc.constantFrom("add", "add", "remove"), cell);
    fc.assert(
      fc.property(
        fc.array(op, { minLength: 20, maxLength: 400, size: "max" }),
        fc.integer({ min: 1, max: 64 }),
        (ops, capacity) => {
          const counts = new CellCounts(capacity);
          const model = new Map<number, number>();
          for (const [what, c] of ops) {
            if (what === "add") {
              counts.add(c);
              model.set(c, (model.get(c) ?? 0) + 1);
            } else {
              counts.remove(c);
              const n = model.get(c);
              if (n === 1) model.delete(c);
              else if (n !== undefined) model.set(c, n - 1);
            }
            assert.equal(counts.size, model.size);
          }
          for (let x = 0; x <= 200; x++) {
            const c = (x * 4096 + (x % 7)) & 0x3fffffff;
            assert.equal(counts.has(c), model.has(c), `cell ${c}`);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("takes the whole 30-bit range, and empties on clear()", () => {
    const counts = new CellCounts();
    for (const c of [0, 1, 0x3fffffff, 0x20000000]) counts.add(c);
    assert.equal(counts.size, 4);
    assert.ok(counts.has(0x3fffffff) && counts.has(0) && !counts.has(2));
    counts.clear();
    assert.equal(counts.size, 0);
    assert.ok(!counts.has(0));
  });
});
