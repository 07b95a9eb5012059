#!/usr/bin/env node
// `npm run bench`: builds with tsc, starts the line-counting sink in its own
// process, runs bench/client_bench.ts on Deno, Bun and Node (the tsc build)
// several times, interleaving the runtimes, and writes bench/results.json and
// BENCHMARKS.md (median of the runs, with min–max).
// Usage: node bench/run.mjs [deno|bun|node ...] [--runs N] [--spool] [--only cardinality|ratio]
// With --spool only the disk spool's scenario (bench/spool_bench.ts) runs; its section of
// BENCHMARKS.md (between the spool markers) and bench/spool_results.json are rewritten.
// --only runs that one scenario and prints its figures (and their medians) without writing any file;
// `--only ratio` is "client ÷ raw" alone (the two default-timestamp loops and the raw limit).
import { spawn, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import { join } from "node:path";

const machineNode = process.env.npm_node_execpath || process.execPath;

const root = new URL("..", import.meta.url).pathname;
const bin = (name) => join(root, "node_modules", ".bin", name);
const args = process.argv.slice(2);
const runsAt = args.indexOf("--runs");
const RUNS = runsAt === -1 ? 5 : Number(args[runsAt + 1]);
const onlyAt = args.indexOf("--only");
const ONLY = onlyAt === -1 ? undefined : args[onlyAt + 1];
const wanted = args.filter((a) => ["deno", "bun", "node"].includes(a));
const runtimes = wanted.length ? wanted : ["deno", "bun", "node"];
const SPOOL_ONLY = args.includes("--spool");
const WORKER_TIMEOUT_MS = 120_000;
const began = Date.now();

const commands = {
  deno: [bin("deno"), ["run", "-A", "--v8-flags=--expose-gc", "bench/client_bench.ts"]],
  bun: [bin("bun"), ["bench/client_bench.ts"]],
  // The machine's Node, not node_modules/.bin/node (a node22/node24 package) that npm puts on PATH.
  node: [machineNode, ["--expose-gc", "build/bench/client_bench.js"]],
};

function version(cmd, flag) {
  const r = spawnSync(cmd, [flag], { encoding: "utf8" });
  return (r.stdout || "").split("\n")[0].trim();
}

function startSink() {
  const child = spawn(machineNode, [join(root, "bench", "sink.mjs")], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    child.stdout.setEncoding("utf8");
    child.stdout.once("data", (d) => {
      const [, data, control] = d.trim().split(" ").map(Number);
      resolve({ data, control, close: () => child.stdin.end() });
    });
    child.once("error", reject);
  });
}

const spoolCommands = {
  deno: [bin("deno"), ["run", "-A", "bench/spool_bench.ts"]],
  bun: [bin("bun"), ["bench/spool_bench.ts"]],
  node: [machineNode, ["build/bench/spool_bench.js"]],
};

function runWorker(runtime, scenario, sink) {
  const [cmd, base] = (scenario === "spool" ? spoolCommands : commands)[runtime];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...base, scenario, String(sink.data), String(sink.control)], {
      cwd: root,
      env: { ...process.env, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => out += d);
    child.stderr.on("data", (d) => err += d);
    const timer = setTimeout(() => child.kill("SIGKILL"), WORKER_TIMEOUT_MS);
    child.on("close", (code) => {
      clearTimeout(timer);
      const line = out.split("\n").find((l) => l.startsWith("RESULT "));
      if (code !== 0 || !line) {
        reject(new Error(`${runtime} ${scenario} failed (exit ${code}):\n${err || out}`));
      } else resolve(JSON.parse(line.slice("RESULT ".length)));
    });
  });
}

// --- build, run ---------------------------------------------------------------------------

if (runtimes.includes("node")) {
  const tsc = spawnSync(bin("tsc"), ["-p", "tsconfig.json", "--outDir", "build"], {
    cwd: root,
    stdio: "inherit",
  });
  if (tsc.status !== 0) process.exit(1);
}

const machine = {
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model ?? "unknown",
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  os: `${os.type()} ${os.release()} ${os.arch()}`,
  node: version(machineNode, "--version"),
  deno: version(bin("deno"), "--version"),
  bun: version(bin("bun"), "--version"),
  loadBefore: os.loadavg().map((x) => x.toFixed(2)).join(" "),
};
console.log(`machine: ${machine.cpus} × ${machine.cpuModel}; load ${machine.loadBefore}`);

const sink = await startSink();
if (ONLY !== undefined) {
  const onlyRuns = {};
  try {
    for (let run = 1; run <= RUNS; run++) {
      for (const runtime of runtimes) {
        const result = await runWorker(runtime, ONLY, sink);
        console.log(`run ${run} ${runtime.padEnd(4)}: ${JSON.stringify(result[ONLY])}`);
        (onlyRuns[runtime] ??= []).push(result[ONLY]);
      }
    }
  } finally {
    sink.close();
  }
  // Each numeric figure's median (min–max) over the runs, per runtime.
  for (const [runtime, results] of Object.entries(onlyRuns)) {
    const cells = Object.keys(results[0]).filter((k) => typeof results[0][k] === "number").map((k) => {
      const s = stat(results.map((r) => r[k]));
      const f = (x) => (Math.abs(x) >= 100 ? x.toFixed(0) : x.toPrecision(3));
      return `${k} ${f(s.median)} (${f(s.min)}–${f(s.max)})`;
    });
    console.log(`median ${runtime.padEnd(4)}: ${cells.join(", ")}`);
  }
  process.exit(0);
}
const runs = Object.fromEntries(runtimes.map((r) => [r, []]));
const spoolRuns = Object.fromEntries(runtimes.map((r) => [r, []]));
try {
  for (let run = 1; run <= RUNS; run++) {
    for (const runtime of runtimes) {
      const load = os.loadavg()[0];
      const result = { ...(await runWorker(runtime, "spool", sink)), loadBefore: load };
      spoolRuns[runtime].push(result);
      console.log(
        `run ${run} ${runtime.padEnd(4)} spool (load ${load.toFixed(2)}): overflow ${
          mps(result.overflow.pointsPerSecond)
        }, replay ${mps(result.replay.pointsPerSecond)}, always ${mps(result.always.pointsPerSecond)} = ${
          pct(result.always.ratio)
        } of ${mps(result.always.noSpoolPointsPerSecond)} without`,
      );
    }
  }
  for (let run = 1; run <= (SPOOL_ONLY ? 0 : RUNS); run++) {
    for (const runtime of runtimes) {
      const load = os.loadavg()[0];
      const main = await runWorker(runtime, "main", sink);
      const { memory } = await runWorker(runtime, "memory", sink);
      const { baseline } = await runWorker(runtime, "baseline", sink);
      const { cardinality } = await runWorker(runtime, "cardinality", sink);
      const result = { ...main, memory, baseline, cardinality, loadBefore: load };
      runs[runtime].push(result);
      console.log(
        `run ${run} ${runtime.padEnd(4)} (load ${load.toFixed(2)}): sync ${
          mps(result.sync.metricsPerSecond)
        }, chunked ${mps(result.chunked.metricsPerSecond)}, ts passed ${
          mps(result.syncTimestamp.metricsPerSecond)
        }, raw ${mps(result.rawMetricsPerSecond)}, send ${result.sync.sendNsMedian.toFixed(0)} ns, burst ${
          pct(result.burst.delivered)
        }, heap +${result.memory.heapPeakGrowthMiB.toFixed(0)} MiB, rate ${
          result.rate.steadyRate.toFixed(0)
        }/s`,
      );
    }
  }
} finally {
  sink.close();
}
machine.loadAfter = os.loadavg().map((x) => x.toFixed(2)).join(" ");

// --- the spool's section ------------------------------------------------------------------

const spoolFigures = [
  [
    "Overflow, server down: 2,000,000 sends, spilling included (M points/s)",
    (r) => r.overflow.pointsPerSecond / 1e6,
    2,
  ],
  [
    "Replay of those 2,000,000 points by the next client (M points/s)",
    (r) => r.replay.pointsPerSecond / 1e6,
    2,
  ],
  ["End-to-end, sync loop, no spool (M points/s)", (r) => r.always.noSpoolPointsPerSecond / 1e6, 2],
  [
    "End-to-end, sync loop, always mode, fsync interval (M points/s)",
    (r) => r.always.pointsPerSecond / 1e6,
    2,
  ],
  ["Always mode ÷ no spool (%)", (r) => 100 * r.always.ratio, 0],
];
const spoolTargets = [
  ["overflow spooling ≥ 1 M points/s (median)", spoolFigures[0][0], 1],
  ["always mode ≥ 50 % of the no-spool figure (median)", spoolFigures[4][0], 50],
];

function spoolSection() {
  const stats = Object.fromEntries(
    runtimes.map((
      r,
    ) => [r, Object.fromEntries(spoolFigures.map(([label, read]) => [label, stat(spoolRuns[r].map(read))]))]),
  );
  const rows = spoolFigures.map(([label, , digits]) =>
    `| ${label} | ${runtimes.map((r) => cell(stats[r][label], digits)).join(" | ")} |`
  );
  const targetRows = spoolTargets.map(([label, figure, least]) =>
    `| ${label} | ${runtimes.map((r) => (stats[r][figure].median >= least ? "yes" : "**no**")).join(" | ")} |`
  );
  return `<!-- spool:start -->
## The disk spool

\`bench/spool_bench.ts\`, ${RUNS} runs per runtime on ${
    new Date().toISOString().slice(0, 10)
  } (load average before:
${machine.loadBefore}, after: ${machine.loadAfter}); raw figures in
[\`bench/spool_results.json\`](bench/spool_results.json). The same points as above, \`fsync: "interval"\`, the
spool in a fresh directory under the system's temporary directory.

| figure | ${runtimes.join(" | ")} |
|---|${runtimes.map(() => "---:").join("|")}|
${rows.join("\n")}

| target | ${runtimes.join(" | ")} |
|---|${runtimes.map(() => ":-:").join("|")}|
${targetRows.join("\n")}

- **Overflow**: a client pointed at a closed port, the default \`qsize\` (100,000), \`spool\` in overflow mode;
  the rate of one synchronous loop of 2,000,000 sends, in which the full queue moves its oldest 64 KiB at a time
  to disk (one framed, CRC-32-checked record and one \`writeSync\` each, ~1,900,000 points, ~126 MiB), then
  \`close()\` writes the rest. Nothing is dropped.
- **Replay**: a new client on that directory, connected to the sink, from its construction until the sink has
  counted all 2,000,000 points (read back in 256 KiB reads, delivered in order, committed as written).
- **Always mode**: a connected client, \`qsize: 0\`, 1,000,000 sends in one loop until the sink has counted them,
  without a spool and with \`spool: { mode: "always" }\`, in the same process one after the other; every point
  goes to disk before it goes to the socket (records the reader is waiting for are kept in memory, so nothing
  is read back). The ratio is per run.
<!-- spool:end -->`;
}

if (SPOOL_ONLY) {
  writeFileSync(
    join(root, "bench", "spool_results.json"),
    JSON.stringify({ date: new Date().toISOString(), machine, runs: spoolRuns }, null, 2) + "\n",
  );
  const current = readFileSync(join(root, "BENCHMARKS.md"), "utf8");
  const section = spoolSection();
  const at = current.indexOf("<!-- spool:start -->");
  const end = current.indexOf("<!-- spool:end -->");
  const updated = at === -1
    ? current.replace("\n## Method", `\n${section}\n\n## Method`)
    : current.slice(0, at) + section + current.slice(end + "<!-- spool:end -->".length);
  writeFileSync(join(root, "BENCHMARKS.md"), updated);
  spawnSync(bin("deno"), ["fmt", "-q", "BENCHMARKS.md", "bench/spool_results.json"], {
    cwd: root,
    stdio: "inherit",
  });
  console.log("\n" + section);
  process.exit(0);
}

// --- summarise ----------------------------------------------------------------------------

function mps(x) {
  return `${(x / 1e6).toFixed(2)} M/s`;
}
function pct(x) {
  return `${(x * 100).toFixed(1)} %`;
}
function stat(xs) {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return { median: s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2, min: s[0], max: s[s.length - 1] };
}

/** The figures of the table: label, how to read one run, how to print a number. */
const figures = [
  ["End-to-end, one sync loop (M metrics/s)", (r) => r.sync.metricsPerSecond / 1e6, 2],
  ["End-to-end, chunks of 1,000 + yield (M metrics/s)", (r) => r.chunked.metricsPerSecond / 1e6, 2],
  ["Raw socket limit (M lines/s)", (r) => r.rawMetricsPerSecond / 1e6, 2],
  ["Client ÷ raw, sync loop (%)", (r) => (100 * r.sync.metricsPerSecond) / r.rawMetricsPerSecond, 0],
  ["Client ÷ raw, chunked (%)", (r) => (100 * r.chunked.metricsPerSecond) / r.rawMetricsPerSecond, 0],
  ["send() median, sync loop (ns/call)", (r) => r.sync.sendNsMedian, 0],
  ["send() median, chunked (ns/call)", (r) => r.chunked.sendNsMedian, 0],
  ["Timestamp passed: end-to-end, sync loop (M metrics/s)", (r) => r.syncTimestamp.metricsPerSecond / 1e6, 2],
  [
    "Timestamp passed: client ÷ raw (%)",
    (r) => (100 * r.syncTimestamp.metricsPerSecond) / r.rawMetricsPerSecond,
    0,
  ],
  ["Timestamp passed: send() median (ns/call)", (r) => r.syncTimestamp.sendNsMedian, 0],
  ["Burst delivery, 1 M sends, qsize 100,000 (%)", (r) => 100 * r.burst.delivered, 1],
  ["Server down: heap growth, peak (MiB)", (r) => r.memory.heapPeakGrowthMiB, 1],
  ["Server down: heap growth, retained (MiB)", (r) => r.memory.heapRetainedGrowthMiB, 1],
  ["Server down: RSS growth (MiB)", (r) => r.memory.rssGrowthMiB, 1],
  ["Same loop, no client: heap growth, peak (MiB)", (r) => r.baseline.heapPeakGrowthMiB, 1],
  ["Same loop, no client: RSS growth (MiB)", (r) => r.baseline.rssGrowthMiB, 1],
  [
    "Server down: RSS growth, the client's share (MiB)",
    (r) => r.memory.rssGrowthMiB - r.baseline.rssGrowthMiB,
    1,
  ],
  ["Server down: dropped (of 5,000,000)", (r) => r.memory.dropped, 0],
  ["High cardinality: send(), a tag set seen before (ns/call)", (r) => r.cardinality.repeatedNs, 0],
  ["High cardinality: send(), a request_id never seen (ns/call)", (r) => r.cardinality.neverSeenNs, 0],
  [
    "High cardinality: never seen ÷ seen before (×)",
    (r) => r.cardinality.neverSeenNs / r.cardinality.repeatedNs,
    1,
  ],
  ["High cardinality: never seen, dedup on (ns/call)", (r) => r.cardinality.neverSeenDedupNs, 0],
  [
    "High cardinality: 1 M distinct tag sets, heap growth, peak (MiB)",
    (r) => r.cardinality.heapPeakGrowthMiB,
    1,
  ],
  [
    "High cardinality: 1 M distinct tag sets, heap growth, retained (MiB)",
    (r) => r.cardinality.heapRetainedGrowthMiB,
    1,
  ],
  ["Rate limit 50,000/s: steady-state rate (/s)", (r) => r.rate.steadyRate, 0],
  ["Rate limit 50,000/s: 250,000 points took (s)", (r) => r.rate.totalSeconds, 2],
];

const summary = {};
for (const runtime of runtimes) {
  summary[runtime] = {};
  for (const [label, read] of figures) summary[runtime][label] = stat(runs[runtime].map(read));
}

function cell(s, digits) {
  const f = (x) =>
    x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return s.min === s.max ? f(s.median) : `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
}

const table = [
  `| figure | ${runtimes.join(" | ")} |`,
  `|---|${runtimes.map(() => "---:").join("|")}|`,
  ...figures.map(([label, , digits]) =>
    `| ${label} | ${runtimes.map((r) => cell(summary[r][label], digits)).join(" | ")} |`
  ),
].join("\n");

// Targets, read from the medians.
const med = (r, label) => summary[r][label].median;
const targets = [
  ["≥ 2 M metrics/s end-to-end (best of sync/chunked)", (r) =>
    Math.max(
      med(r, "End-to-end, one sync loop (M metrics/s)"),
      med(r, "End-to-end, chunks of 1,000 + yield (M metrics/s)"),
    ) >= 2],
  [
    "≥ 50 % of the raw limit (best of sync/chunked)",
    (r) => Math.max(med(r, "Client ÷ raw, sync loop (%)"), med(r, "Client ÷ raw, chunked (%)")) >= 50,
  ],
  [
    "≥ 50 % of the raw limit with the timestamp passed (sync loop)",
    (r) => med(r, "Timestamp passed: client ÷ raw (%)") >= 50,
  ],
  ["send() ≤ 300 ns median (sync loop)", (r) => med(r, "send() median, sync loop (ns/call)") <= 300],
  ["burst delivery ≥ 99 %", (r) => med(r, "Burst delivery, 1 M sends, qsize 100,000 (%)") >= 99],
  [
    "server down: drops exactly 4,900,000 and retained heap growth ≤ 64 MiB",
    (r) => runs[r].every((x) => x.memory.dropped === 4_900_000 && x.memory.heapRetainedGrowthMiB <= 64),
  ],
  [
    "server down: peak heap growth ≤ 64 MiB (garbage included)",
    (r) => runs[r].every((x) => x.memory.heapPeakGrowthMiB <= 64),
  ],
  [
    "server down: RSS growth ≤ 64 MiB (the caller's loop included)",
    (r) => runs[r].every((x) => x.memory.rssGrowthMiB <= 64),
  ],
  [
    "server down: RSS growth less the same loop without a client ≤ 64 MiB",
    (r) => runs[r].every((x) => x.memory.rssGrowthMiB - x.baseline.rssGrowthMiB <= 64),
  ],
  [
    "high cardinality: a never-seen tag set costs ≤ 4 × a repeated one (dedup off and on)",
    (r) =>
      med(r, "High cardinality: never seen ÷ seen before (×)") <= 4 &&
      med(r, "High cardinality: never seen, dedup on (ns/call)") <=
        4 * med(r, "High cardinality: send(), a tag set seen before (ns/call)"),
  ],
  [
    "high cardinality: retained heap growth after 1 M distinct tag sets ≤ 16 MiB",
    (r) => runs[r].every((x) => x.cardinality.heapRetainedGrowthMiB <= 16),
  ],
  [
    "rate within ± 5 % of 50,000/s",
    (r) => runs[r].every((x) => Math.abs(x.rate.steadyRate - 50_000) <= 2_500),
  ],
];
const targetTable = [
  `| target | ${runtimes.join(" | ")} |`,
  `|---|${runtimes.map(() => ":-:").join("|")}|`,
  ...targets.map(([label, ok]) =>
    `| ${label} | ${runtimes.map((r) => (ok(r) ? "yes" : "**no**")).join(" | ")} |`
  ),
].join("\n");

const elapsed = (Date.now() - began) / 1000;
writeFileSync(
  join(root, "bench", "spool_results.json"),
  JSON.stringify({ date: new Date().toISOString(), machine, runs: spoolRuns }, null, 2) + "\n",
);
writeFileSync(
  join(root, "bench", "results.json"),
  JSON.stringify(
    { date: new Date().toISOString(), elapsedSeconds: elapsed, machine, summary, runs },
    null,
    2,
  ) +
    "\n",
);

const markdown = `# Benchmarks

Generated by \`npm run bench\` (\`bench/run.mjs\`) on ${new Date().toISOString().slice(0, 10)}; raw figures of
every run are in [\`bench/results.json\`](bench/results.json). Each cell is the median of ${RUNS} runs, with
min–max in brackets (a single number when they agree).

Machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, ${machine.os}; Node ${machine.node}
(runs the tsc build), ${machine.deno.replace("deno ", "Deno ")}, Bun ${machine.bun}. Load average
(1, 5, 15 min) before: ${machine.loadBefore}, after: ${machine.loadAfter}. The machine is shared, so figures
are noisy; the whole run took ${elapsed.toFixed(0)} s.

${table}

## Targets

${targetTable}

${spoolSection()}

## Method

- **Sink**: \`bench/sink.mjs\`, a Node process of its own that counts the newlines it receives on
  127.0.0.1 and answers "have you counted N lines yet" on a second port, so it keeps reading while
  the process under test is busy in a synchronous loop. It shares the two cores with the client.
- **Points**: \`send(metric, i * 0.5, { host: "web01", dc: "eu-west-1", cpu })\` — four metric names,
  eight \`cpu\` values, a fresh tags object per call (as callers write it), half the values
  fractional, the default timestamp (now), \`hostTag: false\`: three tags, ~64-byte lines.
- **End-to-end**: a client made with \`Client.connect()\` (so connected, as in a running service)
  and \`qsize: 0\` (unbounded: nothing may drop for this figure; none did). The clock runs from the
  first \`send()\` until the sink has counted all 1,000,000 lines. "Sync loop" sends all of them in
  one synchronous loop; "chunks" sends 1,000 and then yields with \`setImmediate\` (not
  \`setTimeout(0)\`: Node clamps that to 1 ms, which alone would cap 1,000 chunks at 1 s).
- **send() cost**: the same two loops, timed per 1,000 calls; the median sample ÷ 1,000. In the sync
  loop this includes the batch writes that \`send()\` makes itself when a full batch is ready and the
  socket takes it at once (the default transport, \`node:net\`, writes synchronously on all three).
- **Timestamp passed**: the sync loop again, with a timestamp read once before it and passed to every
  \`send()\` (what README advises for hot loops): the figure without the per-call clock read.
- **Raw limit**: the same 1,000,000 lines, pre-formatted, joined into ≤ 64 KiB chunks and encoded to
  bytes before the clock starts, then written to the same sink with the runtime's own socket API
  (\`Deno.connect\` + \`write\`, \`Bun.connect\` + \`write\`/\`drain\`, \`node:net\`), until the sink has
  counted every line. "Client ÷ raw" divides the end-to-end figure by this one, per run.
- **Burst delivery**: a connected client with the default \`qsize\` (100,000), 1,000,000 sends in one
  synchronous loop, then \`close()\`; the fraction the sink counted.
- **Memory bound**: in a fresh process, a client pointed at a closed port, \`qsize: 100000\`,
  5,000,000 sends in one loop. Heap growth = \`heapUsed\` after the loop (peak, sampled every 250,000
  sends, garbage included) or after a forced GC (retained), minus \`heapUsed\` after a forced GC
  before the loop; RSS growth = \`rss\` after minus before. Drops are \`stats().dropped.queueFull\`.
  The queue holds its lines as bytes in one ring (~8 MiB for 100,000 lines of ~64 bytes, outside
  the JavaScript heap), so a dropped line leaves no garbage; each \`send()\` still makes its value's
  string, and the caller makes a tags object. **Same loop, no client** runs that loop — the fresh
  tags objects and values — in a process of its own without a client, so that the client's share of
  the RSS growth can be told apart: the ring, its copy while it doubles, and the heap the runtime
  reserves for the extra allocation.
- **High cardinality**: in a fresh process, a client whose transport never connects (\`qsize: 10000\`, so
  the queue drops its oldest; \`hostTag: "web01"\`), 1,000,000 sends of
  \`send("http.requests", i, { route: "home", request_id: "r" + x, dc: "eu" }, ts)\` with one timestamp,
  timed per 1,000 calls (median). "Seen before": \`x\` is always 7, \`dedup: false\` (with it, all but the
  first would be duplicates). "Never seen": \`x = i\`, so each tag set is new, with \`dedup\` off and on. The
  id strings of each 1,000 are made before their timing starts, alike for both. Then, with \`dedup\` on, heap growth over 1,000,000 distinct tag sets
  (peak, sampled every 100,000 sends; retained, after a forced GC), from \`heapUsed\` after a forced GC.
- **Points of the other figures** repeat 32 (metric, tags) pairs within each second, so they are sent with
  \`dedup: false\`: with the duplicate check on, all but those 32 a second would be dropped.
- **Rate limit**: \`mps: 50000\`, 250,000 points queued at once (\`qsize: 0\`). The token bucket lets
  one second's worth (50,000) go at once, so the steady-state rate is measured by the sink: its
  count is polled every 50 ms, and the rate is (250,000 − the first count ≥ 55,000) ÷ the time
  between those two polls. A perfect limiter needs (250,000 − 50,000) ÷ 50,000 = 4.0 s in total.

## Where the time goes, and what was tried

\`bench/send_bench.ts\` times \`send()\` alone, into a transport that confirms and discards every write at once
(1,000,000 calls timed per 1,000, the median, best of 6 rounds; \`deno run -A bench/send_bench.ts\`,
\`bun bench/send_bench.ts\`, \`node build/bench/send_bench.js\`). The benchmark's point (\`i * 0.5\`, three tags,
the default timestamp) costs 135–136 ns on Deno, 116–123 on Bun and 138–145 on Node 20; it cost 154–163,
146–160 and 180–196 before the change below (measured interleaved with it, on the same busy machine). Of that:

- **The clock**, \`Date.now()\`: 35 ns on Bun, 48 on Node 20, 55 on Deno, a third of the call. A V8 profile
  on Deno (\`--prof\`) puts 18 % of the loop's ticks in the kernel's vDSO (\`kvm-clock\` on this VM) and most
  of the runtime's own C++ ticks behind it. \`performance.now()\` is no cheaper (39, 51, 94 ns), and any clock
  read less often than once per call is stale in a synchronous loop, so it stays. Each metric's line start
  (\`put <metric> <seconds> \`) is already rebuilt only when the second changes.
- **The tags**: ~10–13 ns per tag (\`for…in\`, the trie step, a \`Map\` lookup when the value differs
  from the last one at that step); ~30–40 ns for three.
- **Copying the line into the queue**: the cached start and end are two \`Uint8Array.set\` calls, 18–24 ns
  together (a byte loop or 4-byte \`DataView\` copies are slower on V8; only Bun is faster with the latter).
- **The value's text** was 45 ns on Deno and Bun and 63 ns on Node 20 (\`JSON.stringify\`) plus its copy into
  the queue, and is now ~10 ns for a short decimal: see below.

With the timestamp passed the same point costs 100–104 ns on Deno, 87–94 on Bun and 108–115 on Node 20.
Writing costs about what the raw figure costs per line (~110–125 ns, mostly the kernel's loopback work), so
"client ÷ raw" is about raw ÷ (raw + the \`send()\` cost as the end-to-end loops see it). Measured with
\`node bench/run.mjs --only ratio --runs 5\`, alternating the code before and after the change twice while
another benchmark kept one of the two cores busy, the better of sync and chunked, the two medians of 5 runs:
Deno 34–35 % → 41–42 %, Bun 38–39 % → 44–45 %, Node 20 28–29 % → 37 % (\`send()\` in the chunked loop
192–200 → 164–168 ns on Deno, 181–186 → 147–149 on Bun, 238 → 178–179 on Node 20).
On this loaded machine no runtime reached 50 % in those runs; the table above
is the latest full run's, with its load average.
What is left above the 50 % line is the clock (35–55 ns) and the tag walk and copies (~60 ns), which are the
line itself.

Kept:
- Lines queued as UTF-8 in one ring buffer (\`DropOldestQueue\`), written into it from cached byte forms of
  the metric's line start and of the tag set (\`PutEncoder.encodeTo\`): no string per line, no join per
  batch, no encoding by the socket; a batch is copied into a reused 64 KiB write buffer.
- The default transport is \`node:net\` on all three runtimes. Deno's, given bytes (not strings), writes
  them synchronously, so a synchronous loop's batches leave while it runs (burst delivery 10 % → 100 %, sync
  loop ~2 → ~4 M/s); Bun's is as fast as \`Bun.connect\` (3.6–5.0 M/s for both in a sync loop) and can
  cancel a connect, which \`Bun.connect\` cannot.
- Floats are formatted with \`JSON.stringify\`, not \`String()\`: the same text, but V8 keeps every
  \`String(number)\` result in its number-to-string cache long enough to promote it, so each float sent
  became old-generation garbage (server-down peak heap growth ~35 → ~16 MiB on Deno and Node).
- Short decimals written as digits straight into the queue (\`fixedPoint\` in \`src/put.ts\`,
  \`writeDecimal\` in \`src/queue.ts\`): an integer below 2^49, or a fraction with at most six digits after
  the point (0.5, 12.375), whose text is JavaScript's own (the proof is in \`fixedPoint\`'s comment;
  \`tests/put_test.ts\` checks it against \`formatValue\` for arbitrary doubles, short decimals and their
  neighbours). No string is made; the digits come from int32 arithmetic below 2^31, where a division by 10
  is a multiplication — in floating point it cost 20 ns on Deno and 45 on Bun against 10–15, which is why
  the earlier attempt below was slower. A value with more digits (a mean, a ratio) is turned away by one
  multiplication and goes through \`JSON.stringify\` as before (within 10 ns of its old cost).
  \`send()\` with the default timestamp: Deno 154–163 → 135–136 ns, Bun 146–160 → 116–123, Node 20
  180–196 → 138–145; integers 145–150 → 131–137, 140–144 → 120–130, 149–167 → 140–149.
- A cache of validated metric names and tag sets (a bounded trie, with the last value of each step in
  front of its map), and each metric's line start rebuilt once per second.
- High-cardinality keys (more than 1,024 values after one prefix) are neither looked up nor cached: hashing a
  string never seen before for a \`Map\` or \`Set\` lookup costs ~400 ns on Deno, and each new value was hashed
  twice (the trie and the valid-name set) and then given a trie node with its own \`TextEncoder.encode\`
  buffer (~1 µs on Deno). Their tags are written straight into a scratch buffer from a node made at an
  allocation site of its own (V8 had pretenured the shared one, making each such node old-generation
  garbage). Never seen ÷ seen before: 22 → 4.2 on Deno, 9 → 4 on Bun, 19 → 3.2 on Node 20.

Tried and dropped:
- Writing integer values' digits straight into the ring, in floating-point arithmetic: slower (Deno 172 →
  200 ns, Bun 172 → 240 ns). Kept since in int32 arithmetic, above.
- The short-decimal check as a loop over 1 to 6 digits after the point: a 17-digit value paid ~50 ns more for
  the six failed tries; one multiplication now turns it away.
- The last tag step inlined into the \`for…in\` loop, \`Date.now\` called directly rather than through the
  client's clock field, a byte loop or \`DataView\` words instead of \`Uint8Array.set\` for the cached line
  parts: no difference, or slower, on V8.
- A clock kept by another thread in shared memory (a worker updating the current second): cheap to read, but
  it is a coarse clock all the same — on two busy cores the worker can be descheduled for longer than a
  second — and the core names no runtime's worker API. Not built.
- A worker thread owning the socket on Deno (a shared ring; the main thread never waits): 3.1–3.8 M/s in a
  sync loop against 3.8–4.6 through \`node:net\` — on two cores the worker competes with the sink.
- Reading the clock once per batch of sends or per event-loop turn: a point sent after a long synchronous
  stretch would carry the time from before it.
- Hand-written float formatting, \`+=\`-built batches, replacing \`for…in\` over the tags (~15 ns for three).
`;
// Sections written by hand (a before/after record between the table and the targets, and
// whole sections after "Where the time goes", such as bench:app's) are kept as they are.
const previous = readFileSync(join(root, "BENCHMARKS.md"), "utf8");
const between = (text, from, to) => {
  const at = text.indexOf(from);
  const end = at === -1 ? -1 : text.indexOf(to, at + from.length);
  return end === -1 ? "" : text.slice(at, end);
};
const records = between(previous, "\n### ", "\n## Targets");
const whereAt = previous.indexOf("\n## Where the time goes");
const nextAt = whereAt === -1 ? -1 : previous.indexOf("\n## ", whereAt + 1);
const after = nextAt === -1 ? "" : previous.slice(nextAt);
writeFileSync(
  join(root, "BENCHMARKS.md"),
  markdown.replace("\n## Targets", `${records}\n## Targets`).trimEnd() + "\n" + after,
);
// Keep the generated files as `deno fmt` wants them, so its check stays clean.
spawnSync(bin("deno"), ["fmt", "-q", "BENCHMARKS.md", "bench/results.json", "bench/spool_results.json"], {
  cwd: root,
  stdio: "inherit",
});
console.log("\n" + table + "\n\n" + targetTable);
console.log(`\nwrote bench/results.json and BENCHMARKS.md in ${elapsed.toFixed(0)} s`);
