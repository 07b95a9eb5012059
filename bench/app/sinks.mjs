// Discarding sinks for the service benchmark, in their own process: UDP (hot-shots)
// and HTTP (the OTLP exporter's POST /v1/metrics, answered 200 with an empty body).
// The telnet sink is bench/sink.mjs. Prints "PORTS <udp> <http>"; serves until stdin closes.
import * as dgram from "node:dgram";
import * as http from "node:http";

let datagrams = 0;
let posts = 0;
const udp = dgram.createSocket("udp4");
udp.on("message", () => datagrams++);
await new Promise((resolve) => udp.bind(0, "127.0.0.1", resolve));

const server = http.createServer((req, res) => {
  req.on("data", () => {});
  req.on("end", () => {
    posts++;
    res.setHeader("content-type", "application/json");
    res.end("{}");
  });
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));

console.log(`PORTS ${udp.address().port} ${server.address().port}`);
process.stdin.resume();
process.stdin.on("end", () => {
  console.error(`sinks: ${datagrams} datagrams, ${posts} OTLP posts`);
  udp.close();
  server.close();
  server.closeAllConnections?.();
});
