// A line-counting TCP sink in its own process, so it reads while the
// process under test is busy in a synchronous loop.
// Usage: node sink.mjs  → prints "PORT <n>", then on stdin:
//   "count" → prints "COUNT <lines> <bytes> <seqLines> <seqBad>"
//   "seq"   → from now on also reads each line's value: lines of metric seq.test must
//             carry 0, 1, 2, … in order; seqBad counts those that do not (corrupt or lost)
// Exits when stdin closes.
import * as net from "node:net";

let lines = 0;
let bytes = 0;
let checkSeq = false;
let seqLines = 0;
let seqBad = 0;
let expected = 0;
let partial = "";

function readSeq(chunk) {
  const text = partial + chunk.toString("latin1");
  const parts = text.split("\n");
  partial = parts.pop();
  for (const line of parts) {
    if (!line.startsWith("put seq.test ")) continue;
    seqLines++;
    const value = Number(line.split(" ")[3]);
    if (value !== expected) seqBad++;
    expected = value + 1;
  }
}

const server = net.createServer((socket) => {
  socket.on("data", (chunk) => {
    bytes += chunk.length;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
    if (checkSeq) readSeq(chunk);
  });
  socket.on("error", () => {});
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});
process.stdin.setEncoding("utf8");
process.stdin.on("data", (d) => {
  for (const cmd of d.split("\n")) {
    if (cmd === "count") process.stdout.write(`COUNT ${lines} ${bytes} ${seqLines} ${seqBad}\n`);
    if (cmd === "seq") checkSeq = true;
  }
});
process.stdin.on("end", () => process.exit(0));
