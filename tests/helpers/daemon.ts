// One server process that a test starts, stops and starts again on the same
// ports: spawned in the foreground, ready when `ready()` says so, stopped by
// PID (SIGTERM, then SIGKILL after a grace period). The topology helpers (HAProxy,
// vmagent, a restartable InfluxDB) are built on it.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { TSDB_TMPDIR_ENV } from "../../scripts/tsdb.ts";

/**
 * A new directory named `<prefix>XXXXXX` under POTSDB_TSDB_TMPDIR (or the system's temp dir),
 * where .ci/run looks for leftover servers by their command lines.
 */
export function serverDir(prefix: string): string {
  const parent = process.env[TSDB_TMPDIR_ENV] || tmpdir();
  mkdirSync(parent, { recursive: true });
  return mkdtempSync(join(parent, prefix));
}

/** A server process that can be stopped and started again. */
export interface Daemon {
  /** Starts it and waits until it is ready; throws (after killing it) when it exits or never gets ready. */
  start(): Promise<void>;
  /** Stops it (SIGTERM, then SIGKILL after `stopGraceMs`) and waits for the exit; a no-op when not running. */
  stop(): Promise<void>;
  /** Whether the process runs. */
  readonly running: boolean;
  /** The end of its stderr and stdout, for error messages. */
  log(): string;
  /** Stops it and removes its directory (`dir`), if it has one. */
  dispose(): Promise<void>;
}

/** What to run, and how to tell that it is ready. */
export interface DaemonOptions {
  /** For messages, e.g. "haproxy". */
  name: string;
  binary: string;
  args: string[];
  /** Polled every 50 ms after the spawn; errors count as "not yet". */
  ready(): Promise<boolean>;
  /** A hang guard, not a speed bound. Default 30000 ms. */
  readyTimeoutMs?: number;
  /** How long `stop()` waits after SIGTERM before SIGKILL. Default 10000 ms. */
  stopGraceMs?: number;
  /** Its config, data or queue directory, removed by `dispose()`. */
  dir?: string;
}

/**
 * A daemon that is not started yet.
 *
 * Signals go through `process.kill(pid)`: Deno's `child.kill` takes the first
 * signal for the end of the process and ignores every later one (the SIGKILL
 * that follows a SIGTERM included).
 */
export function daemon(options: DaemonOptions): Daemon {
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let log = "";
  const alive = () => child !== undefined && child.exitCode === null && child.signalCode === null;
  const signal = (name: "SIGTERM" | "SIGKILL") => {
    try {
      if (child?.pid !== undefined && alive()) process.kill(child.pid, name);
    } catch {
      // gone in between
    }
  };
  const self: Daemon = {
    get running() {
      return alive();
    },
    log: () => log,
    async start() {
      if (alive()) return;
      const proc = spawn(options.binary, options.args, { stdio: ["ignore", "pipe", "pipe"] });
      child = proc;
      for (const stream of [proc.stdout!, proc.stderr!]) {
        stream.setEncoding("utf8");
        stream.on("data", (d: string) => log = (log + d).slice(-8000));
      }
      exited = new Promise((resolve) => proc.once("exit", () => resolve()));
      const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
      for (;;) {
        if (!alive()) {
          throw new Error(`${options.name} exited with ${proc.exitCode ?? proc.signalCode}: ${log}`);
        }
        let ok = false;
        try {
          ok = await options.ready();
        } catch {
          // not listening yet
        }
        if (ok) return;
        if (Date.now() > deadline) {
          await self.stop();
          throw new Error(`${options.name} did not get ready: ${log}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async stop() {
      if (!alive()) return;
      signal("SIGTERM");
      const timer = setTimeout(() => signal("SIGKILL"), options.stopGraceMs ?? 10_000);
      await exited;
      clearTimeout(timer);
    },
    async dispose() {
      await self.stop();
      if (options.dir !== undefined) rmSync(options.dir, { recursive: true, force: true });
    },
  };
  return self;
}

/** A daemon, started; when it does not get ready it is disposed of and the error thrown. */
export async function launch(options: DaemonOptions): Promise<Daemon> {
  const d = daemon(options);
  try {
    await d.start();
  } catch (e) {
    await d.dispose();
    throw e;
  }
  return d;
}
