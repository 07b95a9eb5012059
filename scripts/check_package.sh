#!/usr/bin/env bash
# Packs the npm package and imports it, as a user would, from Node, Bun and
# Deno: the published build must work on each runtime, not only the sources.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$root"
tarball=$(npm pack --silent --pack-destination "$tmp" | tail -n 1)
mkdir -p "$tmp/app/node_modules/@x/potsdb"
tar -xzf "$tmp/$tarball" -C "$tmp/app/node_modules/@x/potsdb" --strip-components=1
cat > "$tmp/app/package.json" <<'JSON'
{ "name": "app", "private": true, "type": "module", "dependencies": { "@x/potsdb": "*" } }
JSON
cat > "$tmp/app/main.js" <<'JS'
import { Client, MemoryTransport } from "@x/potsdb";
import { nodeTransport } from "@x/potsdb/node";
const transport = new MemoryTransport();
const client = new Client("memory", { transport, hostTag: "app" });
client.send("pkg.check", 1, { runtime: typeof Deno !== "undefined" ? "deno" : typeof Bun !== "undefined" ? "bun" : "node" }, 1700000000);
await client.close();
if (typeof nodeTransport.connect !== "function") throw new Error("no node transport");
console.log(transport.lines()[0]);
JS
# A CommonJS application: require() of the ESM build (no top-level await anywhere).
cat > "$tmp/app/main.cjs" <<'JS'
const { Client, MemoryTransport } = require("@x/potsdb");
const { socketsTransport } = require("@x/potsdb/sockets");
const transport = new MemoryTransport();
const client = new Client("memory", { transport, hostTag: "app" });
client.send("pkg.check", 1, { loader: "require" }, 1700000000);
client.close().then(() => console.log(transport.lines()[0], typeof socketsTransport));
JS
cd "$tmp/app"
node main.js
node main.cjs
"$root/node_modules/.bin/bun" main.js
"$root/node_modules/.bin/deno" run -A main.js
# The CLI as npm installs it (the bin entry).
node node_modules/@x/potsdb/dist/cli/potsdb.js --help | head -n 3
