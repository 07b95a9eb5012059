#!/usr/bin/env node
// Runs the whole suite on Deno, Bun and Node (the tsc build, then Node 22 and
// 24 on the TypeScript sources), side by side, prints each runtime's output
// when it ends, then the counts, the figures the tests print and each
// runtime's ten slowest tests. Fails if any runtime fails or runs no test.
//
// Side by side is safe because no assertion depends on how fast a process is
// scheduled (CONTRIBUTING.md): each test starts its own servers on free
// ports, names its own namespaces, and writes metrics under its own prefix.
//
// One VictoriaMetrics serves the end-to-end tests of all runs: it is started
// here (scripts/tsdb.ts, compiled first), described to each run in
// POTSDB_TSDB_* variables, and stopped at the end — also when tests fail or
// this runner gets SIGINT/SIGTERM. Data directories go under .tmp/ of this
// checkout (POTSDB_TSDB_TMPDIR) so that CI can find any leftover server.
//
// Usage: node scripts/test.mjs [deno|bun|node|node22|node24 ...] [--jobs N] [--quick]
//   --jobs N   how many runtimes run at once (default: all of them)
// Each runtime's output goes to .tmp/test-logs/<runtime>.log as it runs.
//   --quick    the edit loop: unit tests only (no end-to-end, process or
//              namespace tests, no server), on Node 24, files in parallel
import { spawn, spawnSync } from "node:child_process";
import { createWriteStream, mkdirSync, readdirSync, statSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";

const root = new URL("..", import.meta.url).pathname;
const bin = (name) => join(root, "node_modules", ".bin", name);
const all = ["deno", "bun", "node", "node22", "node24"];
const args = process.argv.slice(2);
const quick = args.includes("--quick");
const jobsAt = args.indexOf("--jobs");
const wanted = args.filter((a) => all.includes(a));
const runtimes = wanted.length ? wanted : quick ? ["node24"] : all;
const jobs = jobsAt >= 0 ? Math.max(1, Number(args[jobsAt + 1]) || 1) : runtimes.length;
const nodeBinary = (major) => join(root, "node_modules", `node${major}`, "bin", "node");
// The machine's own Node (20 here) runs the tsc build. Under `npm test` the `node` on PATH is
// node_modules/.bin/node (the node22/node24 packages link one), so take the Node that runs npm.
const machineNode = process.env.npm_node_execpath || process.execPath;
const started = performance.now();
const seconds = (ms) => `${(ms / 1000).toFixed(0)} s`;

// Files the quick loop leaves out: they start real servers or processes, or make namespaces.
const SLOW =
  /(^|\/)(e2e\/|partition_test|cli_test|exit_test|signal_test|spool_crash_test|require_test|sockets_test)/;

function testFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...testFiles(p));
    else if (/_test\.(js|ts)$/.test(name)) out.push(p);
  }
  return out.sort().filter((f) => !quick || !SLOW.test(relative(root, f)));
}

const children = new Set(); // runtime processes still running

function run(cmd, args, env, logFile) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      // A process group of its own, so that a signal can end it together with
      // the servers its tests started.
      detached: true,
    });
    children.add(child);
    // The log fills as the runtime goes (tail it to watch); the output is printed when it ends.
    const log = createWriteStream(logFile);
    let out = "";
    const take = (d) => {
      out += d;
      log.write(d);
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("close", (code) => {
      children.delete(child);
      log.end();
      resolve({ code, out, ms: performance.now() - t0 });
    });
  });
}

const parsers = {
  deno: (out) => {
    const m = /(ok|FAILED) \| (\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed/.exec(out);
    return m && { passed: Number(m[3] ?? m[2]), failed: Number(m[4]) };
  },
  bun: (out) => {
    const p = /^\s*(\d+) pass/m.exec(out);
    const f = /^\s*(\d+) fail/m.exec(out);
    return p && { passed: Number(p[1]), failed: f ? Number(f[1]) : 0 };
  },
  node: (out) => {
    const p = /^# pass (\d+)/m.exec(out);
    const f = /^# fail (\d+)/m.exec(out);
    return p && { passed: Number(p[1]), failed: f ? Number(f[1]) : 0 };
  },
};

// Each test's own time (leaves only: a describe block's time is its tests' sum).
const durations = {
  deno: (out) => {
    const parents = new Set([...out.matchAll(/^\s*(.+) \.\.\.$/gm)].map((m) => m[1].trim()));
    return [...out.matchAll(/^\s*(.+?) \.\.\. (?:ok|FAILED)[^(\n]*\((\d+(?:\.\d+)?)(ms|s|m)\)$/gm)]
      .filter((m) => !parents.has(m[1].trim()))
      .map((m) => ({
        name: m[1].trim(),
        ms: Number(m[2]) * (m[3] === "s" ? 1000 : m[3] === "m" ? 60000 : 1),
      }));
  },
  bun: (out) =>
    [...out.matchAll(/^\((?:pass|fail)\) (.+) \[(\d+(?:\.\d+)?)(ms|s)\]$/gm)]
      .map((m) => ({ name: m[1], ms: Number(m[2]) * (m[3] === "s" ? 1000 : 1) })),
  node: (out) => {
    const found = [];
    const re = /^\s*(?:not )?ok \d+ - (.+)\n\s*---\n((?:\s+.*\n)*?)\s*\.\.\./gm;
    for (const m of out.matchAll(re)) {
      if (/type: 'suite'/.test(m[2])) continue;
      const d = /duration_ms: ([\d.]+)/.exec(m[2]);
      if (d && !/\.(js|ts)$/.test(m[1])) found.push({ name: m[1], ms: Number(d[1]) });
    }
    return found;
  },
};

// Top-level end-to-end tests (tests/e2e/, named "e2e … (runtime)") in each runner's output.
const e2ePatterns = {
  deno: { passed: /^e2e .* \(deno\) \.\.\. ok/gm, failed: /^e2e .* \(deno\) \.\.\. FAILED/gm },
  bun: { passed: /^\(pass\) e2e [^>]* \(bun\) > /gm, failed: /^\(fail\) e2e [^>]* \(bun\) > /gm },
  node: { passed: /^ok \d+ - e2e .* \(node\)$/gm, failed: /^not ok \d+ - e2e .* \(node\)$/gm },
};

// The figures the tests print, as `<what> (<runtime>): …` (loss at a restart, failover times…).
const FIGURE = /^(?:# )*([a-z][a-z0-9 -]{1,40} \((?:deno|bun|node)\): .*)$/gm;

process.env.POTSDB_TSDB_TMPDIR ||= join(root, ".tmp");
mkdirSync(process.env.POTSDB_TSDB_TMPDIR, { recursive: true });
const logDir = join(process.env.POTSDB_TSDB_TMPDIR, "test-logs");
mkdirSync(logDir, { recursive: true });

function compile() {
  // tsc --outDir build: Node 20 runs it, and this runner needs build/scripts/tsdb.js. tsc
  // rewrites every file it emits; a test file removed from tests/ would linger there, so the
  // runner lists tests from the sources and runs the compiled copy of each.
  console.log("=== tsc ===");
  const tsc = spawnSync(bin("tsc"), ["-p", "tsconfig.json", "--outDir", "build"], {
    cwd: root,
    stdio: "inherit",
  });
  // The npm build too: the require() and Worker-bundle tests load the package by its name.
  const dist = tsc.status === 0 && !quick &&
    spawnSync(bin("tsc"), ["-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" });
  return tsc.status === 0 && (quick || dist.status === 0);
}

const needsBuild = !quick || runtimes.includes("node");
if (needsBuild && !compile()) {
  console.log("\n=== summary ===\ntsc failed\n0 passed, 1 failed");
  process.exit(1);
}

let tsdb;
let env = {};
if (!quick) {
  const { startTsdb, tsdbEnv } = await import(pathToFileURL(join(root, "build", "scripts", "tsdb.js")).href);
  try {
    // Tests send it what it logs as errors on purpose (probes, bad lines): only fatal ones here.
    tsdb = await startTsdb({ flags: ["-loggerLevel=FATAL"] });
  } catch (e) {
    console.error(`cannot start VictoriaMetrics for the end-to-end tests: ${e.message}`);
    console.log("\n=== summary ===\nVictoriaMetrics did not start\n0 passed, 1 failed");
    process.exit(1);
  }
  console.log(
    `VictoriaMetrics: http=${tsdb.url} telnet=${tsdb.telnetPort} opentsdb-http=${tsdb.opentsdbHttpPort}`,
  );
  env = tsdbEnv(tsdb);
}

let stopping;
function stopTsdb() {
  stopping ??= tsdb?.dispose().catch((e) => console.error(`stopping VictoriaMetrics: ${e.message}`));
  return stopping;
}
for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]]) {
  process.once(signal, async () => {
    console.error(`\n${signal}: stopping the tests and VictoriaMetrics`);
    for (const child of children) {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        // already gone
      }
    }
    await stopTsdb();
    process.exit(code);
  });
}

// The hostile-input properties (tests/property_test.ts) check one encoder: each runtime runs
// its own share of cases with its own seed, so that the run covers as many distinct cases as
// one runtime with POTSDB_FUZZ_RUNS=100000 did (the quick loop runs 5,000). `npm run fuzz` runs millions.
const fuzzRuns = String(quick ? 5_000 : Math.ceil(100_000 / runtimes.length));

function command(runtime) {
  const own = { ...env, NO_COLOR: "1", POTSDB_FUZZ_RUNS: process.env.POTSDB_FUZZ_RUNS ?? fuzzRuns };
  const nodeArgs = [
    "--test",
    "--test-reporter=tap",
    // Files one at a time unless quick: the end-to-end files share one VictoriaMetrics, and
    // the five runtimes already run side by side.
    `--test-concurrency=${quick ? Math.max(2, availableParallelism()) : 1}`,
  ];
  if (runtime === "deno") {
    return [bin("deno"), ["test", "-A", "--no-check", ...testFiles(join(root, "tests"))], own];
  }
  if (runtime === "bun") {
    return [bin("bun"), [
      "test",
      "--timeout",
      "120000",
      ...testFiles(join(root, "tests")).map((f) => "./" + relative(root, f)),
    ], own];
  }
  if (runtime === "node22" || runtime === "node24") {
    let files = testFiles(join(root, "tests"));
    // Node 22 has no native `await using`; that file runs everywhere else.
    if (runtime === "node22") files = files.filter((f) => !f.endsWith("await_using_test.ts"));
    return [nodeBinary(runtime.slice(4)), [...nodeArgs, ...files], own];
  }
  // The tsc build of each test in tests/ (see compile()).
  const files = testFiles(join(root, "tests")).map((f) =>
    join(root, "build", relative(root, f)).replace(/\.ts$/, ".js")
  );
  return [machineNode, [...nodeArgs, ...files], own];
}

async function runRuntime(runtime) {
  const [cmd, argv, own] = command(runtime);
  const r = await run(cmd, argv, own, join(logDir, `${runtime}.log`));
  const kind = runtime.startsWith("node") ? "node" : runtime; // node22/node24 print as Node does
  let header = `\n=== ${runtime} (${seconds(r.ms)}) ===`;
  if (runtime === "node") {
    const version = spawnSync(machineNode, ["--version"], { encoding: "utf8" }).stdout.trim();
    header += `\n# node ${version} (${machineNode}) on the tsc build`;
  }
  if (runtime === "node22") {
    header += "\n# node22: tests/await_using_test.ts skipped (no `await using` syntax)";
  }
  console.log(header);
  process.stdout.write(r.out.endsWith("\n") ? r.out : r.out + "\n");
  const counts = parsers[kind](r.out) ?? { passed: 0, failed: 0 };
  const out = r.out.replace(/\\#/g, "#"); // TAP escapes '#'
  const figures = [...new Set([...out.matchAll(FIGURE)].map((m) => m[1]))];
  const e2e = {
    passed: (out.match(e2ePatterns[kind].passed) ?? []).length,
    failed: (out.match(e2ePatterns[kind].failed) ?? []).length,
  };
  const slowest = durations[kind](out).sort((a, b) => b.ms - a.ms).slice(0, 10);
  return { runtime, ...counts, code: r.code, figures, e2e, slowest, ms: r.ms };
}

const results = [];
try {
  const queue = [...runtimes];
  await Promise.all(
    Array.from({ length: Math.min(jobs, queue.length) }, async () => {
      for (let r = queue.shift(); r !== undefined; r = queue.shift()) results.push(await runRuntime(r));
    }),
  );
} finally {
  await stopTsdb();
}
results.sort((a, b) => runtimes.indexOf(a.runtime) - runtimes.indexOf(b.runtime));

console.log("\n=== slowest tests ===");
for (const { runtime, slowest } of results) {
  console.log(`${runtime}:`);
  for (const t of slowest) console.log(`  ${(t.ms / 1000).toFixed(1).padStart(6)} s  ${t.name}`);
}

console.log(
  `\n=== summary (${quick ? "quick: unit tests" : "all tests"}, ${
    seconds(performance.now() - started)
  } wall) ===`,
);
let ok = true;
for (const { runtime, passed, failed, code, figures, e2e, ms } of results) {
  // The end-to-end tests must have run too: a runtime that skipped them is not green.
  const good = code === 0 && failed === 0 && passed > 0 && (quick || e2e.passed > 0);
  ok &&= good;
  console.log(
    `${runtime.padEnd(6)} ${passed} passed, ${failed} failed ` +
      (quick ? "" : `(end-to-end: ${e2e.passed} passed, ${e2e.failed} failed) `) +
      `in ${seconds(ms)}${good ? "" : "  <-- FAILED"}`,
  );
  for (const figure of figures) console.log(`      ${figure}`);
}
const total = results.reduce(
  (a, r) => ({
    passed: a.passed + r.passed,
    failed: a.failed + r.failed + (r.code !== 0 && r.failed === 0 ? 1 : 0),
  }),
  { passed: 0, failed: 0 },
);
console.log(`${total.passed} passed, ${total.failed} failed`);
process.exit(ok ? 0 : 1);
