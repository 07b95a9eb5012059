#!/usr/bin/env node
// Runs the whole suite on Deno, Bun and Node (the tsc build), prints each
// runtime's counts, and fails if any runtime fails or runs no test.
//
// One VictoriaMetrics serves the end-to-end tests of all three runs: it is
// started here (scripts/tsdb.ts, compiled first), described to each run in
// POTSDB_TSDB_* variables, and stopped at the end — also when tests fail or
// this runner gets SIGINT/SIGTERM. Data directories go under .tmp/ of this
// checkout (POTSDB_TSDB_TMPDIR) so that CI can find any leftover server.
//
// Node 22 and 24 (the npm packages node22/node24) run the TypeScript sources
// directly with Node's type stripping.
//
// Usage: node scripts/test.mjs [deno|bun|node|node22|node24 ...]
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const root = new URL("..", import.meta.url).pathname;
const bin = (name) => join(root, "node_modules", ".bin", name);
const all = ["deno", "bun", "node", "node22", "node24"];
const wanted = process.argv.slice(2).filter((a) => all.includes(a));
const runtimes = wanted.length ? wanted : all;
const nodeBinary = (major) => join(root, "node_modules", `node${major}`, "bin", "node");
// The machine's own Node (20 here) runs the tsc build. Under `npm test` the `node` on PATH is
// node_modules/.bin/node (the node22/node24 packages link one), so take the Node that runs npm.
const machineNode = process.env.npm_node_execpath || process.execPath;

function testFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...testFiles(p));
    else if (/_test\.(js|ts)$/.test(name)) out.push(p);
  }
  return out.sort();
}

let current; // the runtime's process while it runs

function run(cmd, args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      // A process group of its own, so that a signal can end it together with
      // the servers its tests started.
      detached: true,
    });
    current = child;
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      process.stdout.write(d);
    });
    child.stderr.on("data", (d) => {
      out += d;
      process.stderr.write(d);
    });
    child.on("close", (code) => {
      current = undefined;
      resolve({ code, out });
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

// Top-level end-to-end tests (tests/e2e/, named "e2e … (runtime)") in each runner's output.
const e2ePatterns = {
  deno: { passed: /^e2e .* \(deno\) \.\.\. ok/gm, failed: /^e2e .* \(deno\) \.\.\. FAILED/gm },
  bun: { passed: /^\(pass\) e2e [^>]* \(bun\) > /gm, failed: /^\(fail\) e2e [^>]* \(bun\) > /gm },
  node: { passed: /^ok \d+ - e2e .* \(node\)$/gm, failed: /^not ok \d+ - e2e .* \(node\)$/gm },
};

process.env.POTSDB_TSDB_TMPDIR ||= join(root, ".tmp");
mkdirSync(process.env.POTSDB_TSDB_TMPDIR, { recursive: true });

// Compiled once: Node runs the build, and this runner needs build/scripts/tsdb.js.
console.log("=== tsc ===");
rmSync(join(root, "build"), { recursive: true, force: true }); // no stale compiled tests
const tsc = spawnSync(bin("tsc"), ["-p", "tsconfig.json", "--outDir", "build"], {
  cwd: root,
  stdio: "inherit",
});
// The npm build too: the require() and Worker-bundle tests load the package by its name.
const dist = tsc.status === 0 &&
  spawnSync(bin("tsc"), ["-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" });
if (tsc.status !== 0 || dist.status !== 0) {
  console.log("\n=== summary ===\ntsc failed\n0 passed, 1 failed");
  process.exit(1);
}

const { startTsdb, tsdbEnv } = await import(
  pathToFileURL(join(root, "build", "scripts", "tsdb.js")).href
);
let tsdb;
try {
  tsdb = await startTsdb();
} catch (e) {
  console.error(`cannot start VictoriaMetrics for the end-to-end tests: ${e.message}`);
  console.log("\n=== summary ===\nVictoriaMetrics did not start\n0 passed, 1 failed");
  process.exit(1);
}
console.log(
  `VictoriaMetrics: http=${tsdb.url} telnet=${tsdb.telnetPort} opentsdb-http=${tsdb.opentsdbHttpPort}`,
);

let stopping;
function stopTsdb() {
  stopping ??= tsdb.dispose().catch((e) => console.error(`stopping VictoriaMetrics: ${e.message}`));
  return stopping;
}
for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]]) {
  process.once(signal, async () => {
    console.error(`\n${signal}: stopping the tests and VictoriaMetrics`);
    if (current?.pid) {
      try {
        process.kill(-current.pid, "SIGTERM");
      } catch {
        // already gone
      }
    }
    await stopTsdb();
    process.exit(code);
  });
}

const env = tsdbEnv(tsdb);
const results = [];
try {
  for (const runtime of runtimes) {
    console.log(`\n=== ${runtime} ===`);
    let r;
    if (runtime === "deno") {
      r = await run(bin("deno"), ["test", "-A", "--no-check", "tests/"], { ...env, NO_COLOR: "1" });
    } else if (runtime === "bun") {
      r = await run(bin("bun"), ["test", "--timeout", "120000", "./tests/"], env);
    } else if (runtime === "node22" || runtime === "node24") {
      let files = testFiles(join(root, "tests"));
      if (runtime === "node22") {
        // Node 22 has no native `await using`; that file runs everywhere else.
        console.log("# node22: skipping tests/await_using_test.ts (no `await using` syntax)");
        files = files.filter((f) => !f.endsWith("await_using_test.ts"));
      }
      r = await run(nodeBinary(runtime.slice(4)), ["--test", "--test-reporter=tap", ...files], env);
    } else {
      const version = spawnSync(machineNode, ["--version"], { encoding: "utf8" }).stdout.trim();
      console.log(`# node ${version} (${machineNode}) on the tsc build`);
      r = await run(machineNode, [
        "--test",
        "--test-reporter=tap",
        ...testFiles(join(root, "build", "tests")),
      ], env);
    }
    const kind = runtime.startsWith("node") ? "node" : runtime; // node22/node24 print as Node does
    const counts = parsers[kind](r.out) ?? { passed: 0, failed: 0 };
    // The figures the tests print (loss at a restart, rate-limited delivery time, spool outage, kill -9).
    const out = r.out.replace(/\\#/g, "#"); // TAP escapes '#'
    const figures = [
      ...new Set(
        out.match(
          /(?:restart|rate limit|spool outage|kill -9|partition answering|partition silent|fleet) \((?:deno|bun|node)\): .*/g,
        ) ?? [],
      ),
    ];
    const e2e = {
      passed: (out.match(e2ePatterns[kind].passed) ?? []).length,
      failed: (out.match(e2ePatterns[kind].failed) ?? []).length,
    };
    results.push({ runtime, ...counts, code: r.code, figures, e2e });
  }
} finally {
  await stopTsdb();
}

console.log("\n=== summary ===");
let ok = true;
for (const { runtime, passed, failed, code, figures, e2e } of results) {
  // The end-to-end tests must have run too: a runtime that skipped them is not green.
  const good = code === 0 && failed === 0 && passed > 0 && e2e.passed > 0;
  ok &&= good;
  console.log(
    `${runtime.padEnd(6)} ${passed} passed, ${failed} failed ` +
      `(end-to-end: ${e2e.passed} passed, ${e2e.failed} failed)${good ? "" : "  <-- FAILED"}`,
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
