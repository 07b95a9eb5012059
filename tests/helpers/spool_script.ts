// A child process for the spool tests.
// Usage: <runtime> spool_script send <dir> <port> <mode> <count> <close|exit> [qsize]
//   sends `spool.seq <i>` for i = 0 .. count-1 in chunks of 5,000 with a yield after each,
//   printing "ACCEPTED <accepted> <spooled> <sent>" after each yield, then "DONE"; with
//   "close" it closes the client, with "exit" it just ends (no close()), with "wait" it stays
//   alive until killed.
// Usage: <runtime> spool_script hold <dir>
//   opens a client on the spool, prints "READY <pid>" and waits until stdin closes.
// Usage: <runtime> spool_script web <dir>
//   imports the Workers entry (web.ts) and prints the error that a spool option gets there.

import process from "node:process";
import { setImmediate } from "node:timers";

const [what, dir] = process.argv.slice(2, 4);

if (what === "web") {
  const { Client, MemoryTransport } = await import("../../web.ts");
  try {
    new Client("x", { dedup: false, transport: new MemoryTransport(), hostTag: false, spool: { dir } });
    process.stdout.write("NO ERROR\n");
  } catch (e) {
    process.stdout.write(`${(e as Error).name} ${(e as Error).message}\n`);
  }
} else if (what === "hold") {
  const { Client } = await import("../../mod.ts");
  const client = new Client("127.0.0.1", { dedup: false, port: 1, hostTag: false, spool: { dir } });
  process.stdout.write(`READY ${process.pid}\n`);
  process.stdin.resume();
  process.stdin.on("end", () => client.close({ timeoutMs: 0 }).then(() => process.exit(0)));
} else {
  const { Client } = await import("../../mod.ts");
  const port = Number(process.argv[4]);
  const count = Number(process.argv[6]);
  const mode = process.argv[5] as "always" | "overflow";
  const ending = process.argv[7];
  const qsize = Number(process.argv[8] ?? 100_000);
  const client = new Client("127.0.0.1", {
    dedup: false,
    port,
    hostTag: false,
    qsize,
    lingerMs: 200,
    reconnect: { initialMs: 50, maxMs: 200 },
    spool: { dir, mode, fsync: "never" },
  });
  client.addEventListener("error", (e) => {
    if (e.detail.code === "SPOOL_FAILED") process.stderr.write(`spool error: ${e.detail.message}\n`);
  });
  const yieldNow = () => new Promise((resolve) => setImmediate(resolve));
  for (let i = 0; i < count;) {
    for (const end = Math.min(count, i + 5000); i < end; i++) {
      client.send("spool.seq", i, { k: "v" }, 1700000000);
    }
    await yieldNow();
    const s = client.stats();
    process.stdout.write(`ACCEPTED ${s.accepted} ${s.spooled} ${s.sent}\n`);
  }
  process.stdout.write("DONE\n");
  if (ending === "close") {
    const s = await client.close({ timeoutMs: 0 });
    process.stdout.write(`CLOSED ${JSON.stringify(s)}\n`);
  } else if (ending === "wait") setInterval(() => {}, 1000);
}
