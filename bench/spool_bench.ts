/**
 * The disk spool's figures on the runtime that executes it (Deno, Bun, or
 * Node on the tsc build). Started by `bench/run.mjs` with the sink's ports;
 * prints one line `RESULT <json>`.
 *
 * - overflow: a client pointed at a closed port (`qsize` 100,000, `spool`
 *   in overflow mode, fsync "interval"), 2,000,000 sends in one loop: the
 *   rate of the loop, spilling to disk included, then `close()`.
 * - replay: a new client on that directory, connected to the sink: the rate
 *   at which it delivers the 2,000,000 points it finds.
 * - always: 1,000,000 sends in one loop to a connected client, until the sink
 *   has counted them all, without a spool and with `spool` in always mode
 *   (fsync "interval"); the ratio of the two.
 *
 * The points repeat 32 (metric, tags) pairs within each second, so every
 * client here runs with `dedup: false` (as the other figures do).
 *
 * Usage: <runtime> bench/spool_bench.ts spool <dataPort> <controlPort>
 *
 * @module
 */

import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Client } from "../mod.ts";
import { closedPort, HOST, openSinkControl, sendPoint } from "./sink_control.ts";

const OVERFLOW_POINTS = 2_000_000;
const ALWAYS_POINTS = 1_000_000;

const [dataPort, controlPort] = process.argv.slice(-2).map(Number);
if (!(dataPort > 0 && controlPort > 0)) throw new Error("usage: spool_bench spool <dataPort> <controlPort>");

const control = await openSinkControl(controlPort);
const waitForLines = (n: number, timeoutMs = 120_000) => control.waitForLines(n, timeoutMs);

async function overflowAndReplay(dir: string) {
  const down = await closedPort();
  const client = new Client(HOST, {
    port: down,
    hostTag: false,
    dedup: false,
    spool: { dir, mode: "overflow" },
  });
  const start = performance.now();
  for (let i = 0; i < OVERFLOW_POINTS; i++) sendPoint(client, i);
  const seconds = (performance.now() - start) / 1000;
  const loop = client.stats();
  const closed = await client.close({ timeoutMs: 0 });
  if (closed.dropped.total !== 0 || closed.spooled !== OVERFLOW_POINTS) {
    throw new Error(`overflow: ${JSON.stringify(closed)}`);
  }
  const bytes = fs.readdirSync(dir).reduce((n, f) => n + fs.statSync(join(dir, f)).size, 0);

  await control.reset();
  const replayStart = performance.now();
  const replay = await Client.connect(HOST, { port: dataPort, hostTag: false, dedup: false, spool: { dir } });
  await waitForLines(OVERFLOW_POINTS);
  const replaySeconds = (performance.now() - replayStart) / 1000;
  const done = await replay.close();
  if (done.sent !== OVERFLOW_POINTS) throw new Error(`replay: ${JSON.stringify(done)}`);
  return {
    overflow: {
      pointsPerSecond: OVERFLOW_POINTS / seconds,
      spooledAtLoopEnd: loop.spooled,
      mebibytes: bytes / 2 ** 20,
    },
    replay: { pointsPerSecond: OVERFLOW_POINTS / replaySeconds },
  };
}

async function endToEnd(dir: string | undefined): Promise<number> {
  const client = await Client.connect(HOST, {
    port: dataPort,
    hostTag: false,
    dedup: false,
    qsize: 0,
    ...(dir && { spool: { dir, mode: "always" as const } }),
  });
  await control.reset();
  const start = performance.now();
  for (let i = 0; i < ALWAYS_POINTS; i++) sendPoint(client, i);
  await waitForLines(ALWAYS_POINTS);
  const seconds = (performance.now() - start) / 1000;
  const stats = await client.close();
  if (stats.sent !== ALWAYS_POINTS || stats.spooled !== 0) {
    throw new Error(`always: ${JSON.stringify(stats)}`);
  }
  return ALWAYS_POINTS / seconds;
}

const dirs: string[] = [];
const temp = () => {
  const dir = fs.mkdtempSync(join(tmpdir(), "potsdb-spool-bench-"));
  dirs.push(dir);
  return dir;
};
try {
  const { overflow, replay } = await overflowAndReplay(temp());
  const plain = await endToEnd(undefined);
  const always = await endToEnd(temp());
  const result = {
    overflow,
    replay,
    always: { pointsPerSecond: always, noSpoolPointsPerSecond: plain, ratio: always / plain },
  };
  console.log(`RESULT ${JSON.stringify(result)}`);
} finally {
  control.close();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
}
