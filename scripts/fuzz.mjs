#!/usr/bin/env node
// Runs the hostile-input properties (tests/property_test.ts) for much longer
// than the test suite does: POTSDB_FUZZ_RUNS cases per property (default
// 2,000,000), on one runtime (default deno), with a fresh seed that is printed
// so a failure can be replayed with POTSDB_FUZZ_SEED.
// Usage: node scripts/fuzz.mjs [deno|bun|node] [runs]
import { spawnSync } from "node:child_process";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const bin = (name) => join(root, "node_modules", ".bin", name);
const runtime = process.argv.find((a) => ["deno", "bun", "node"].includes(a)) ?? "deno";
const runs = process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? process.env.POTSDB_FUZZ_RUNS ?? "2000000";
const seed = process.env.POTSDB_FUZZ_SEED ?? String(Math.floor(Math.random() * 2 ** 31));
const env = { ...process.env, POTSDB_FUZZ_RUNS: runs, POTSDB_FUZZ_SEED: seed, NO_COLOR: "1" };
console.log(`fuzz on ${runtime}: ${runs} cases per property, seed ${seed}`);

const run = (cmd, args) => spawnSync(cmd, args, { cwd: root, env, stdio: "inherit" }).status;
let status;
if (runtime === "deno") {
  status = run(bin("deno"), ["test", "-A", "--no-check", "tests/property_test.ts"]);
} else if (runtime === "bun") {
  status = run(bin("bun"), ["test", "--timeout", "0", "./tests/property_test.ts"]);
} else {
  status = run(bin("tsc"), ["-p", "tsconfig.json", "--outDir", "build"]) ||
    run(process.execPath, ["--test", "--test-timeout=0", join(root, "build", "tests", "property_test.js")]);
}
if (status !== 0) {
  console.log(`replay with: POTSDB_FUZZ_SEED=${seed} node scripts/fuzz.mjs ${runtime} ${runs}`);
}
process.exit(status ?? 1);
