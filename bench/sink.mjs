// The benchmark's line-counting TCP sink, in its own process so that it reads
// while the process under test is busy in a synchronous loop.
//
// Usage: node bench/sink.mjs → prints "PORTS <data> <control>" and serves until stdin closes.
// Data port: counts the lines ("\n") of everything it receives, on any connection.
// Control port, one command per line, each answered with one line:
//   reset    → "OK"                      (counters back to 0)
//   count    → "COUNT <lines> <bytes>"
//   wait <n> → "DONE <lines>"            as soon as <n> lines have been counted
import * as net from "node:net";

let lines = 0;
let bytes = 0;
/** @type {{ target: number, socket: net.Socket }[]} */
let waiters = [];

function settle() {
  if (waiters.length === 0) return;
  const still = [];
  for (const w of waiters) {
    if (lines >= w.target) w.socket.write(`DONE ${lines}\n`);
    else still.push(w);
  }
  waiters = still;
}

const data = net.createServer((socket) => {
  socket.on("data", (chunk) => {
    bytes += chunk.length;
    // A plain byte loop beats indexOf per line for ~60-byte lines.
    let n = 0;
    for (let i = 0; i < chunk.length; i++) if (chunk[i] === 10) n++;
    lines += n;
    settle();
  });
  socket.on("error", () => {});
});

const control = net.createServer((socket) => {
  socket.setEncoding("utf8");
  socket.setNoDelay(true);
  let buffered = "";
  socket.on("data", (d) => {
    buffered += d;
    for (let i = buffered.indexOf("\n"); i !== -1; i = buffered.indexOf("\n")) {
      const [cmd, arg] = buffered.slice(0, i).split(" ");
      buffered = buffered.slice(i + 1);
      if (cmd === "reset") {
        lines = 0;
        bytes = 0;
        socket.write("OK\n");
      } else if (cmd === "count") {
        socket.write(`COUNT ${lines} ${bytes}\n`);
      } else if (cmd === "wait") {
        waiters.push({ target: Number(arg), socket });
        settle();
      } else {
        socket.write(`ERR unknown command ${cmd}\n`);
      }
    }
  });
  socket.on("error", () => {});
  socket.on("close", () => waiters = waiters.filter((w) => w.socket !== socket));
});

data.listen(0, "127.0.0.1", () => {
  control.listen(0, "127.0.0.1", () => {
    process.stdout.write(`PORTS ${data.address().port} ${control.address().port}\n`);
  });
});
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
