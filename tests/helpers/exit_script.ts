// A script that sends points and ends without calling close(): the client
// must deliver what it can and then let the process exit on its own.
// Usage: <runtime> exit_script <port> <count> [connectTimeoutMs] [node|deno]
// ("node" picks the node:net transport, "deno" Deno.connect, instead of the default).
// Prints "DONE <epoch ms>" when its last send() has returned.

import process from "node:process";
import { Client } from "../../mod.ts";
import { denoTransport } from "../../src/transport/deno.ts";
import { nodeTransport } from "../../src/transport/node.ts";

const [port, count, connectTimeoutMs] = process.argv.slice(2, 5).map(Number);
const client = new Client("127.0.0.1", {
  port,
  hostTag: false,
  connectTimeoutMs: connectTimeoutMs || undefined,
  transport: process.argv[5] === "node"
    ? nodeTransport
    : process.argv[5] === "deno"
    ? denoTransport
    : undefined,
});
for (let i = 0; i < count; i++) client.send("exit.test", i, { k: "v" }, 1700000000);
process.stdout.write(`DONE ${Date.now()}\n`);
