// A child process for the signal tests. Its reports go to stdout with fs.writeSync, so that
// each is out of the process before the next line of the script runs, on every runtime: a
// signal that ends the process cannot lose one.
//
// Usage: <runtime> signal_script stream <dir> <port> <mode> <count> <qsize> <heartbeatMs|default> <mps>
//   sends `signal.seq <i>` for i = 0 .. count-1 in chunks of 1,000, printing "ACCEPTED <n> <dropped>"
//   after each chunk, before it yields: signals are handled only between tasks, so the last
//   ACCEPTED line printed is the number of points the client had accepted when a signal came.
//   Then prints "DONE" and stays alive until a signal ends it.
// Usage: <runtime> signal_script own <dir> <port> <count>
//   opens a client with a spool, sends count points, listens for SIGTERM itself and prints
//   "READY". At SIGTERM it prints "HANDLED", then a task later "AFTER spool <open|closed>,
//   handled <n>", closes the client, prints "CLOSED <sent>" and ends with status 0.
// Usage: deno signal_script deno-native <dir> <port>
//   opens a client with a spool, sends 5,000 points, adds a SIGTERM listener with
//   Deno.addSignalListener and prints "READY"; at SIGTERM it closes the client, prints
//   "HANDLED, then CLOSED with <n> in the spool" and ends with status 0.
// Usage: <runtime> signal_script signal-exit <dir> <port> <before|after>
//   loads a copy of signal-exit v4's signal handling before or after opening a client with a
//   spool, sends 5,000 points, prints "READY" and waits; signal-exit prints "SIGNAL-EXIT HANDLERS"
//   when it handles SIGTERM.
// Usage: <runtime> signal_script listeners <dir> <port>
//   prints "LISTENERS <stage> <SIGINT> <SIGTERM> <SIGHUP>" (listener counts) at each stage:
//   start, a client without a spool, with a spool, a second spool, one closed, both closed; then
//   opens a client with a spool, sends 100 points to <port> (nothing listens there), prints
//   "END" and returns without close(): the process must end on its own.

import * as fs from "node:fs";
import process from "node:process";
import { Client } from "../../mod.ts";

function say(line: string): void {
  const bytes = new TextEncoder().encode(`${line}\n`);
  for (let done = 0; done < bytes.length;) {
    try {
      done += fs.writeSync(1, bytes, done);
    } catch (e) {
      // stdout may be a non-blocking pipe that the parent has not read yet: try again.
      if ((e as { code?: string }).code !== "EAGAIN") throw e;
    }
  }
}
const [what, dir] = process.argv.slice(2, 4);
const port = Number(process.argv[4]);

if (what === "stream") {
  const mode = process.argv[5] as "always" | "overflow";
  const count = Number(process.argv[6]);
  const qsize = Number(process.argv[7] ?? 100_000);
  const heartbeatMs = process.argv[8] === "default" ? undefined : Number(process.argv[8]);
  const mps = Number(process.argv[9] ?? 0);
  const client = new Client("127.0.0.1", {
    dedup: false,
    port,
    hostTag: false,
    qsize,
    heartbeatMs,
    mps,
    reconnect: { initialMs: 50, maxMs: 200 },
    spool: { dir, mode, fsync: "never" },
  });
  client.addEventListener("error", (e) => {
    if (e.detail.code === "SPOOL_FAILED") process.stderr.write(`spool error: ${e.detail.message}\n`);
  });
  // A timer, not setImmediate: Deno runs immediates before it polls sockets, and would not connect.
  const yieldNow = () => new Promise((resolve) => setTimeout(resolve, 0));
  for (let i = 0; i < count;) {
    for (const end = Math.min(count, i + 1000); i < end; i++) {
      client.send("signal.seq", i, { k: "v" }, 1700000000);
    }
    const s = client.stats();
    say(`ACCEPTED ${s.accepted} ${s.dropped.total}`);
    await yieldNow();
  }
  say("DONE");
  setInterval(() => {}, 1000);
} else if (what === "own") {
  const count = Number(process.argv[5]);
  const client = new Client("127.0.0.1", { dedup: false, port, hostTag: false, spool: { dir } });
  for (let i = 0; i < count; i++) client.send("signal.own", i, { k: "v" }, 1700000000);
  const alive = setTimeout(() => {}, 60_000); // until the signal's handler has closed the client
  // Added after the client's: the client's listener runs first, and must see this one.
  let handled = 0;
  process.on("SIGTERM", () => {
    handled++;
    say("HANDLED");
    // A task later, every SIGTERM listener has run: the spool is still open unless one closed it.
    setTimeout(async () => {
      say(`AFTER spool ${client.stats().spool!.active ? "open" : "closed"}, handled ${handled}`);
      const s = await client.close({ timeoutMs: 60_000 });
      say(`CLOSED ${s.sent}`);
      clearTimeout(alive);
    }, 0);
  });
  say("READY");
} else if (what === "deno-native") {
  // A Deno program's own SIGTERM handler, added the Deno way: process.listeners() does not list it.
  const deno = (globalThis as unknown as {
    Deno: { addSignalListener(signal: string, listener: () => void): void };
  }).Deno;
  const client = new Client("127.0.0.1", { dedup: false, port, hostTag: false, spool: { dir } });
  for (let i = 0; i < 5000; i++) client.send("signal.seq", i, { k: "v" }, 1700000000);
  let handled = 0;
  const alive = setTimeout(() => {}, 60_000);
  deno.addSignalListener("SIGTERM", () => {
    if (handled++ > 0) return;
    setTimeout(async () => {
      const s = await client.close({ timeoutMs: 0 });
      say(`HANDLED, then CLOSED with ${s.spooled} in the spool`);
      clearTimeout(alive);
    }, 0);
  });
  say("READY");
} else if (what === "signal-exit") {
  // signal-exit v4's way, as published: one emitter per process, shared through a global symbol,
  // counting its loaded copies; its listener acts only when every SIGTERM listener is one of its
  // own, and then raises the signal again.
  const order = process.argv[5]; // "before" or "after" the client
  const emitter = { count: 0 };
  (globalThis as Record<symbol, unknown>)[Symbol.for("signal-exit emitter")] = emitter;
  const signalExit = () => {
    if (process.listeners("SIGTERM").length !== emitter.count) return;
    process.off("SIGTERM", signalExit);
    emitter.count--;
    say("SIGNAL-EXIT HANDLERS");
    process.kill(process.pid, "SIGTERM");
  };
  const load = () => {
    emitter.count++;
    process.on("SIGTERM", signalExit);
  };
  if (order === "before") load();
  const client = new Client("127.0.0.1", { dedup: false, port, hostTag: false, spool: { dir } });
  if (order === "after") load();
  for (let i = 0; i < 5000; i++) client.send("signal.seq", i, { k: "v" }, 1700000000);
  say("READY");
  setInterval(() => {}, 1000);
} else if (what === "listeners") {
  const stage = (name: string) =>
    say(
      `LISTENERS ${name} ${["SIGINT", "SIGTERM", "SIGHUP"].map((s) => process.listenerCount(s)).join(" ")}`,
    );
  stage("start");
  const plain = new Client("127.0.0.1", { dedup: false, port, hostTag: false });
  stage("no-spool");
  const a = new Client("127.0.0.1", { dedup: false, port, hostTag: false, spool: { dir: `${dir}/a` } });
  stage("one-spool");
  const b = new Client("127.0.0.1", { dedup: false, port, hostTag: false, spool: { dir: `${dir}/b` } });
  stage("two-spools");
  await a.close({ timeoutMs: 0 });
  stage("one-closed");
  await b.close({ timeoutMs: 0 });
  stage("both-closed");
  await plain.close({ timeoutMs: 0 });
  const left = new Client("127.0.0.1", {
    dedup: false,
    port,
    hostTag: false,
    lingerMs: 100,
    spool: { dir: `${dir}/c` },
  });
  for (let i = 0; i < 100; i++) left.send("signal.left", i, { k: "v" }, 1700000000);
  stage("left-open");
  say("END");
}
