// The deterministic simulation (tests/sim/) inside the suite: a fixed range of seeds for a fixed
// budget on each runtime, every invariant checked after every step. A failure names the
// invariant and the one-line command that replays its seed, shrunk. `npm run sim` runs more.
//
// The five runtimes run side by side, each from its own first seed (300 apart), so that one run
// of the suite covers about five times the seeds one runtime does in its budget; the same
// runtime always starts at the same seed.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { formatSummary, runMany, runSeed } from "./run.ts";

const SCENARIOS = 300;
const BUDGET_MS = 6_000;
const versions = (globalThis as { process?: { versions?: Record<string, string> } }).process?.versions;
const lane = "Deno" in globalThis
  ? 0
  : "Bun" in globalThis
  ? 1
  : ({ "20": 2, "22": 3, "24": 4 } as Record<string, number>)[versions?.node?.split(".")[0] ?? ""] ?? 2;
const FIRST = 1 + lane * SCENARIOS;

describe("deterministic simulation", () => {
  it("a seed decides everything: the same seed runs the same way twice", { timeout: 120_000 }, async () => {
    for (const seed of [7, 1234, 99_001]) {
      const a = await runSeed(seed);
      const b = await runSeed(seed);
      assert.equal(a.fingerprint, b.fingerprint, `seed ${seed}`);
      assert.deepEqual(a.violation, b.violation, `seed ${seed}`);
    }
  });

  it("close-keeps asks only of servers that answer within stallTimeoutMs: a later answer is none", {
    timeout: 120_000,
  }, async () => {
    // Seed 2688: a server that answers in 5 s with stallTimeoutMs 500; the client takes it for
    // silent before the answer comes, and lets what it kept go as unconfirmed, as it must.
    const outcome = await runSeed(2688, [9, 15, 22, 23]);
    assert.equal(outcome.violation, undefined, JSON.stringify(outcome.violation));
  });

  it(`holds every invariant over seeds ${FIRST}.. (up to ${SCENARIOS}, ${BUDGET_MS / 1000} s budget)`, {
    timeout: 300_000,
  }, async () => {
    const summary = await runMany({
      first: FIRST,
      runs: SCENARIOS,
      budgetMs: BUDGET_MS,
      keepGoing: true,
      shrinkMs: 3000,
    });
    console.log(`# sim: ${formatSummary(summary)}`);
    assert.ok(summary.scenarios > 0 && summary.steps > 0, "scenarios ran");
    const found = summary.found.map((f) =>
      `${f.violation.invariant}: ${f.violation.message}\n    (seed ${f.seed}, after ${f.after} scenarios) replay: ${f.command}`
    );
    assert.deepEqual(found, [], found.join("\n"));
  });
});
