// A line-counting TCP sink in its own process, so it reads while the
// process under test is busy in a synchronous loop.
// Usage: node sink.mjs  → prints "PORT <n>", then on each "count\n" on stdin
// prints "COUNT <lines> <bytes>"; exits when stdin closes.
import * as net from "node:net";

let lines = 0;
let bytes = 0;
const server = net.createServer((socket) => {
  socket.on("data", (chunk) => {
    bytes += chunk.length;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
  });
  socket.on("error", () => {});
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});
process.stdin.setEncoding("utf8");
process.stdin.on("data", (d) => {
  for (const cmd of d.split("\n")) {
    if (cmd === "count") process.stdout.write(`COUNT ${lines} ${bytes}\n`);
  }
});
process.stdin.on("end", () => process.exit(0));
