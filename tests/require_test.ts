// CommonJS applications load the package with require(): no module in it may use top-level
// await (Node's require(esm) refuses those with ERR_REQUIRE_ASYNC_MODULE). Each entry is loaded
// by its package name from a .cjs file, through package.json's exports, in a child process of
// this runtime — the npm build in dist/, which `npm test` makes first.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

// The checkout: the sources' parent, or the build's (build/tests/) grandparent.
let root = dirname(fileURLToPath(import.meta.url));
while (!existsSync(join(root, "deno.json"))) root = dirname(root);
const isDeno = "Deno" in globalThis;
const entries = Object.keys(JSON.parse(readFileSync(join(root, "package.json"), "utf8")).exports)
  .map((key) => key === "." ? "@x/potsdb" : `@x/potsdb/${key.slice(2)}`);

describe("require() from CommonJS", { skip: isDeno && "Deno runs no CommonJS file by default" }, () => {
  it("loads every entry of the package by name, with no flag", () => {
    assert.ok(existsSync(join(root, "dist", "mod.js")), "dist/ is missing: run npm run build:dist");
    mkdirSync(join(root, ".tmp"), { recursive: true });
    // Inside the package's folder, so that `@x/potsdb` resolves to the package itself.
    const dir = mkdtempSync(join(root, ".tmp", "require-"));
    try {
      const script = join(dir, "load.cjs");
      writeFileSync(
        script,
        `const out = {};
for (const name of ${JSON.stringify(entries)}) out[name] = Object.keys(require(name)).sort();
const { Client, MemoryTransport } = require("@x/potsdb");
const client = new Client("memory", { transport: new MemoryTransport(), hostTag: "h" });
client.send("m", 1, { t: "v" }, 1700000000);
client.close().then((stats) => console.log(JSON.stringify({ out, sent: stats.sent })));
`,
      );
      const text = execFileSync(process.execPath, [script], { cwd: dir, encoding: "utf8" });
      const { out, sent } = JSON.parse(text);
      assert.equal(sent, 1);
      assert.deepEqual(Object.keys(out), entries);
      assert.ok(out["@x/potsdb"].includes("Client") && out["@x/potsdb"].includes("autoTransport"));
      assert.deepEqual(out["@x/potsdb/web"], out["@x/potsdb"], "the Worker entry has the same API");
      assert.ok(out["@x/potsdb/sockets"].includes("socketsTransport"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
