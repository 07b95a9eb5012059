// A small fake OpenTSDB for the dead-peer tests: it takes telnet `put` lines and, when asked,
// answers the `version` command as OpenTSDB 2.x does (two lines), in order with the puts.
// In-process: `startFakeTsd({ answer })`. As a script (inside a network namespace):
//   node fake_tsd.mjs --host 0.0.0.0 --port 4242 [--answer] --out FILE
// appends every received put line to FILE and prints "listening PORT" once ready.

import * as net from "node:net";
import { appendFileSync } from "node:fs";
import process from "node:process";

export const VERSION_ANSWER = "net.opentsdb.tools 2.4.0 built at revision 1a2b3c4 (MINT)\n" +
  "Built on 2019/01/01 00:00:00 +0000 by user@host:/path\n";

/**
 * @param {{ host?: string, port?: number, answer?: boolean, onPuts?: (lines: string[]) => void }} options
 */
export function startFakeTsd(options = {}) {
  const puts = [];
  const sockets = new Set();
  let probes = 0;
  let connections = 0;
  let paused = false;
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.setEncoding("latin1");
    let partial = "";
    socket.on("data", (chunk) => {
      const text = partial + chunk;
      const end = text.lastIndexOf("\n");
      partial = text.slice(end + 1);
      if (end < 0) return;
      const got = [];
      for (const line of text.slice(0, end).split("\n")) {
        if (line === "version") {
          probes++;
          if (options.answer) socket.write(VERSION_ANSWER);
        } else if (line.startsWith("put ")) got.push(line);
      }
      puts.push(...got);
      options.onPuts?.(got);
    });
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    if (paused) socket.pause();
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      resolve({
        port: server.address().port,
        /** Every put line received, in order. */
        puts,
        get probes() {
          return probes;
        },
        get connections() {
          return connections;
        },
        /** Resets every open connection. */
        dropAll() {
          for (const s of sockets) s.resetAndDestroy?.() ?? s.destroy();
        },
        /** Stops reading: the client's writes back up, as with a hung server. */
        pause() {
          paused = true;
          for (const s of sockets) s.pause();
        },
        close() {
          for (const s of sockets) s.destroy();
          return new Promise((r) => server.close(() => r()));
        },
      });
    });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name) => {
    const i = process.argv.indexOf(name);
    return i < 0 ? undefined : process.argv[i + 1];
  };
  const out = arg("--out");
  const tsd = await startFakeTsd({
    host: arg("--host"),
    port: Number(arg("--port") ?? 0),
    answer: process.argv.includes("--answer"),
    onPuts: (lines) => lines.length > 0 && appendFileSync(out, lines.join("\n") + "\n"),
  });
  console.log(`listening ${tsd.port}`);
}
