// A child process for the lock race of tests/spool_crash_test.ts.
// Usage: <runtime> lock_script <dir>
//   prints "READY", waits for "GO" on stdin (so that all racers start together), takes the spool lock of <dir>
//   (src/spool/lock.ts), prints "HELD <pid>" or "REFUSED <message>", then holds it until stdin
//   ends, releases it and exits.

import process from "node:process";
import { acquireLock } from "../../src/spool/lock.ts";

const dir = process.argv[2];
let input = "";
let lock: { release(): void } | undefined;
let started = false;
process.stdin.setEncoding("utf8");
process.stdin.on("data", (d: string) => {
  input += d;
  if (started || !input.includes("GO")) return;
  started = true;
  try {
    lock = acquireLock(dir);
    process.stdout.write(`HELD ${process.pid}\n`);
  } catch (e) {
    process.stdout.write(`REFUSED ${(e as Error).name}: ${(e as Error).message}\n`);
  }
});
process.stdin.on("end", () => {
  lock?.release();
  process.exit(0);
});
process.stdout.write("READY\n");
