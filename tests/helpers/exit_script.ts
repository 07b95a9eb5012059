// A script that sends points and ends without calling close(): the client
// must deliver what it can and then let the process exit on its own.
// Usage: <runtime> exit_script <port> <count> [connectTimeoutMs] [deno|bun|default] [lingerMs]
// ("deno" picks Deno.connect, "bun" Bun.connect, instead of the default node:net;
// 0 or a missing number keeps the client's default).
// Prints "DONE <epoch ms>" when its last send() has returned.

import process from "node:process";
import { Client } from "../../mod.ts";
import { bunTransport } from "../../src/transport/bun.ts";
import { denoTransport } from "../../src/transport/deno.ts";

const [port, count, connectTimeoutMs] = process.argv.slice(2, 5).map(Number);
const lingerMs = Number(process.argv[6] ?? 0);
const client = new Client("127.0.0.1", {
  port,
  hostTag: false,
  dedup: false, // the same point, many times
  connectTimeoutMs: connectTimeoutMs || undefined,
  lingerMs: lingerMs || undefined,
  transport: process.argv[5] === "deno"
    ? denoTransport
    : process.argv[5] === "bun"
    ? bunTransport
    : undefined,
});
for (let i = 0; i < count; i++) client.send("exit.test", i, { k: "v" }, 1700000000);
process.stdout.write(`DONE ${Date.now()}\n`);
