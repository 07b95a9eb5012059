// The deterministic simulation's command line (`npm run sim -- …`).
//   --runs N        scenarios to run (default 1000)
//   --budget S      stop after S seconds of wall time (default: none)
//   --first SEED    the first seed (default: from the time; printed)
//   --seed SEED     run this one seed only (with --keep: only these operations), and print it
//   --keep-going    go on after a violation (one report per invariant)
//   --no-shrink     report failures as found

import process from "node:process";
import { drawScenario, setDebug } from "./scenario.ts";
import { formatSummary, replayCommand, runMany, runSeed, runtimeName } from "./run.ts";

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const value = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

if (flag("--debug")) setDebug((m) => console.log(`    ${m}`));
if (value("--seed") !== undefined) {
  const seed = Number(value("--seed"));
  const keepArg = value("--keep");
  const keep = keepArg === undefined ? undefined : keepArg === "none" ? [] : keepArg.split(",").map(Number);
  const scenario = drawScenario(seed);
  console.log(JSON.stringify(scenario.drawn));
  scenario.ops.forEach((op, i) => {
    if (keep === undefined || keep.includes(i) || i === scenario.ops.length - 1) {
      console.log(`  op ${i}: ${JSON.stringify(op)}`);
    }
  });
  const o = await runSeed(seed, keep);
  if (o.violation) {
    console.log(`VIOLATION ${o.violation.invariant} at step ${o.violation.step}: ${o.violation.message}`);
    console.log(`replay: ${replayCommand(seed, keep)}`);
    process.exitCode = 1;
  } else {console.log(
      `seed ${seed} (${runtimeName}): no violation, ${o.steps} steps, ${
        (o.virtualMs / 1000).toFixed(1)
      } virtual s`,
    );}
} else {
  const first = Number(value("--first") ?? (Date.now() % 1_000_000_007));
  const runs = Number(value("--runs") ?? 1000);
  const budgetMs = value("--budget") === undefined ? Infinity : Number(value("--budget")) * 1000;
  console.log(`sim on ${runtimeName}: seeds from ${first}, up to ${runs} scenarios`);
  const summary = await runMany({
    first,
    runs,
    budgetMs,
    keepGoing: flag("--keep-going"),
    shrinkFailures: !flag("--no-shrink"),
    onFound: (f) =>
      console.log(
        `VIOLATION ${f.violation.invariant} (seed ${f.seed}, after ${f.after} scenarios, shrunk to ${f.keep.length} ops): ${f.violation.message}\n  replay: ${f.command}`,
      ),
    onProgress: (s) => console.log(`  … ${formatSummary(s)}`),
  });
  console.log(formatSummary(summary));
  if (summary.found.length > 0) process.exitCode = 1;
}
