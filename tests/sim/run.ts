// Runs scenarios: many seeds for a number or a time budget, shrinking a failure to the fewest
// operations that still break the same invariant, and the one-line command that replays it.

import { drawScenario, type Outcome, runScenario, type Violation } from "./scenario.ts";

export interface Found {
  seed: number;
  /** Scenarios run up to and including this one. */
  after: number;
  violation: Violation;
  keep: number[];
  command: string;
}

export interface Summary {
  runtime: string;
  scenarios: number;
  steps: number;
  virtualMs: number;
  lines: number;
  processes: number;
  wallMs: number;
  found: Found[];
}

export const runtimeName = "Deno" in globalThis
  ? "deno"
  : "Bun" in globalThis
  ? "bun"
  : `node${
    (globalThis as unknown as { process: { versions: { node: string } } }).process.versions.node.split(".")[0]
  }`;

function keepSet(keep: readonly number[] | undefined): Set<number> | undefined {
  return keep === undefined ? undefined : new Set(keep);
}

/** Runs one seed (or the given operations of it). */
export function runSeed(seed: number, keep?: readonly number[]): Promise<Outcome> {
  const scenario = drawScenario(seed);
  return runScenario(scenario, keepSet(keep));
}

/** The fewest operations (delta debugging) with which the seed still breaks the same invariant. */
export async function shrink(
  seed: number,
  invariant: string,
  budget = 300,
  deadline = Infinity,
): Promise<number[]> {
  const scenario = drawScenario(seed);
  let current = scenario.ops.map((_, i) => i).slice(0, -1); // the final close always runs
  let runs = 0;
  const fails = async (keep: number[]) => {
    runs++;
    const o = await runScenario(scenario, new Set(keep));
    return o.violation?.invariant === invariant;
  };
  let chunks = 2;
  const more = () => runs < budget && performance.now() < deadline;
  while (current.length > 0 && more()) {
    const size = Math.ceil(current.length / chunks);
    let reduced = false;
    for (let start = 0; start < current.length && more(); start += size) {
      const candidate = [...current.slice(0, start), ...current.slice(start + size)];
      if (await fails(candidate)) {
        current = candidate;
        chunks = Math.max(chunks - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (size === 1) break;
      chunks = Math.min(current.length, chunks * 2);
    }
  }
  return current;
}

export function replayCommand(seed: number, keep: readonly number[] | undefined): string {
  const k = keep === undefined ? "" : ` --keep ${keep.length === 0 ? "none" : keep.join(",")}`;
  return `npm run sim -- --runtime ${
    runtimeName.startsWith("node") ? runtimeName.replace(/^node20$/, "node") : runtimeName
  } --seed ${seed}${k}`;
}

/** Runs seeds `first`, `first + 1`, … until `runs` or `budgetMs` is reached. */
export async function runMany(options: {
  first: number;
  runs: number;
  budgetMs: number;
  keepGoing?: boolean;
  shrinkFailures?: boolean;
  /** Most wall time spent shrinking one failure, in ms. */
  shrinkMs?: number;
  onFound?: (f: Found) => void;
  onProgress?: (s: Summary) => void;
}): Promise<Summary> {
  const began = performance.now();
  const summary: Summary = {
    runtime: runtimeName,
    scenarios: 0,
    steps: 0,
    virtualMs: 0,
    lines: 0,
    processes: 0,
    wallMs: 0,
    found: [],
  };
  const seen = new Set<string>();
  let lastProgress = began;
  for (let i = 0; i < options.runs && performance.now() - began < options.budgetMs; i++) {
    const seed = (options.first + i) >>> 0;
    const o = await runSeed(seed);
    summary.scenarios++;
    summary.steps += o.steps;
    summary.virtualMs += o.virtualMs;
    summary.lines += o.lines;
    summary.processes += o.processes;
    if (o.violation !== undefined) {
      const v = o.violation;
      const keep = options.shrinkFailures === false
        ? undefined
        : await shrink(seed, v.invariant, 300, performance.now() + (options.shrinkMs ?? Infinity));
      const f: Found = {
        seed,
        after: summary.scenarios,
        violation: v,
        keep: keep ?? [],
        command: replayCommand(seed, keep),
      };
      if (!seen.has(v.invariant)) {
        seen.add(v.invariant);
        summary.found.push(f);
        options.onFound?.(f);
      }
      if (!options.keepGoing) break;
    }
    if (options.onProgress && performance.now() - lastProgress > 10_000) {
      lastProgress = performance.now();
      summary.wallMs = performance.now() - began;
      options.onProgress(summary);
    }
  }
  summary.wallMs = performance.now() - began;
  return summary;
}

export function formatSummary(s: Summary): string {
  return `${s.runtime}: ${s.scenarios.toLocaleString("en")} scenarios, ${
    s.steps.toLocaleString("en")
  } steps, ` +
    `${(s.virtualMs / 3_600_000).toFixed(1)} virtual hours, ${s.lines.toLocaleString("en")} points, ` +
    `${s.processes.toLocaleString("en")} processes, ${(s.wallMs / 1000).toFixed(1)} s wall; ` +
    `${s.found.length === 0 ? "no violation" : `${s.found.length} invariant(s) broken`}`;
}
