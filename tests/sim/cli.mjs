#!/usr/bin/env node
// `npm run sim -- [--runtime deno|bun|node|node22|node24] [main.ts options]`: runs the
// deterministic simulation (tests/sim/main.ts) on one runtime. Node 20 runs a tsc build of the
// checkout (into a directory of the system's temp dir); Node 22 and 24 run the TypeScript sources.
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

const root = new URL("../..", import.meta.url).pathname;
const args = process.argv.slice(2);
const at = args.indexOf("--runtime");
const runtime = at >= 0 ? args[at + 1] : "node24";
const rest = at >= 0 ? [...args.slice(0, at), ...args.slice(at + 2)] : args;
const bin = (name) => join(root, "node_modules", ".bin", name);
const main = join(root, "tests", "sim", "main.ts");

let command;
if (runtime === "deno") command = [bin("deno"), ["run", "-A", "--no-check", main, ...rest]];
else if (runtime === "bun") command = [bin("bun"), [main, ...rest]];
else if (runtime === "node22" || runtime === "node24") {
  command = [join(root, "node_modules", runtime, "bin", "node"), [main, ...rest]];
} else if (runtime === "node" || runtime === "node20") {
  const out = join(tmpdir(), `potsdb-sim-build-${process.getuid?.() ?? 0}`);
  const tsc = spawnSync(bin("tsc"), [
    "-p",
    join(root, "tsconfig.json"),
    "--outDir",
    out,
    "--noEmitOnError",
    "false",
  ], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (tsc.error) throw tsc.error;
  // The machine's own Node (20): under npm, the `node` on PATH may be node_modules/.bin/node.
  command = [process.env.npm_node_execpath || process.execPath, [
    join(out, "tests", "sim", "main.js"),
    ...rest,
  ]];
} else {
  console.error(`unknown --runtime ${runtime}: deno, bun, node (20, a tsc build), node22 or node24`);
  process.exit(2);
}
const run = spawnSync(command[0], command[1], { stdio: "inherit" });
if (run.error) throw run.error;
process.exit(run.status ?? 1);
