#!/usr/bin/env node
// Runs the whole suite on Deno, Bun and Node (the tsc build), prints each
// runtime's counts, and fails if any runtime fails or runs no test.
// Node 22 and 24 (from the npm packages node22/node24) run the TypeScript
// sources directly with Node's type stripping.
// Usage: node scripts/test.mjs [deno|bun|node|node22|node24 ...]
import { spawn, spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const bin = (name) => join(root, "node_modules", ".bin", name);
const all = ["deno", "bun", "node", "node22", "node24"];
const wanted = process.argv.slice(2).filter((a) => all.includes(a));
const runtimes = wanted.length ? wanted : all;
const nodeBinary = (major) => join(root, "node_modules", `node${major}`, "bin", "node");

function testFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...testFiles(p));
    else if (/_test\.(js|ts)$/.test(name)) out.push(p);
  }
  return out.sort();
}

function run(cmd, args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      process.stdout.write(d);
    });
    child.stderr.on("data", (d) => {
      out += d;
      process.stderr.write(d);
    });
    child.on("close", (code) => resolve({ code, out }));
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
  node22: (out) => parsers.node(out),
  node24: (out) => parsers.node(out),
  node: (out) => {
    const p = /^# pass (\d+)/m.exec(out);
    const f = /^# fail (\d+)/m.exec(out);
    return p && { passed: Number(p[1]), failed: f ? Number(f[1]) : 0 };
  },
};

const results = [];
for (const runtime of runtimes) {
  console.log(`\n=== ${runtime} ===`);
  let r;
  if (runtime === "deno") {
    r = await run(bin("deno"), ["test", "-A", "--no-check", "tests/"], { NO_COLOR: "1" });
  } else if (runtime === "bun") {
    r = await run(bin("bun"), ["test", "--timeout", "120000", "./tests/"]);
  } else if (runtime === "node22" || runtime === "node24") {
    let files = testFiles(join(root, "tests"));
    if (runtime === "node22") {
      // Node 22 has no native `await using`; that file runs everywhere else.
      console.log("# node22: skipping tests/await_using_test.ts (no `await using` syntax)");
      files = files.filter((f) => !f.endsWith("await_using_test.ts"));
    }
    r = await run(nodeBinary(runtime.slice(4)), ["--test", "--test-reporter=tap", ...files]);
  } else {
    const tsc = spawnSync(bin("tsc"), ["-p", "tsconfig.json", "--outDir", "build"], {
      cwd: root,
      stdio: "inherit",
    });
    if (tsc.status !== 0) {
      results.push({ runtime, passed: 0, failed: 1, code: tsc.status, note: "tsc failed" });
      continue;
    }
    r = await run(process.execPath, [
      "--test",
      "--test-reporter=tap",
      ...testFiles(join(root, "build", "tests")),
    ]);
  }
  const counts = parsers[runtime](r.out) ?? { passed: 0, failed: 0 };
  results.push({ runtime, ...counts, code: r.code });
}

console.log("\n=== summary ===");
let ok = true;
for (const { runtime, passed, failed, code, note } of results) {
  const good = code === 0 && failed === 0 && passed > 0;
  ok &&= good;
  console.log(
    `${runtime.padEnd(5)} ${passed} passed, ${failed} failed${note ? ` (${note})` : ""}${
      good ? "" : "  <-- FAILED"
    }`,
  );
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
