// stunnel4 in the foreground: TLS on a free loopback port in front of a
// plain TCP port (a TSD's telnet port). Its config lives in a directory under
// POTSDB_TSDB_TMPDIR, so a CI script finds a leftover one by its command line.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { accepts } from "../../scripts/influxdb.ts";
import { freePort } from "../../scripts/tsdb.ts";

export interface Stunnel {
  /** The TLS port. */
  port: number;
  /** Stops it (SIGTERM, then SIGKILL); the port stays reserved for `start()`. */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
}

/** The binary, or undefined when stunnel is not installed. */
export function stunnelBinary(): string | undefined {
  for (const name of ["stunnel4", "stunnel"]) {
    const found = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
    if (found.status === 0 && found.stdout.trim()) return found.stdout.trim();
  }
  return undefined;
}

/**
 * Starts stunnel with its config in `dir` (the certificates' directory):
 * TLS with `certFile`/`keyFile` on a free port, forwarding to `target`.
 */
export async function startStunnel(
  dir: string,
  target: { host: string; port: number },
  certFile: string,
  keyFile: string,
): Promise<Stunnel> {
  const binary = stunnelBinary();
  if (!binary) throw new Error("stunnel4 is not installed; as root: apt-get install -y stunnel4");
  const port = await freePort();
  const config = join(dir, "stunnel.conf");
  writeFileSync(
    config,
    [
      "foreground = yes",
      "pid =",
      "syslog = no",
      "debug = 3",
      "[tsd]",
      `accept = 127.0.0.1:${port}`,
      `connect = ${target.host}:${target.port}`,
      `cert = ${certFile}`,
      `key = ${keyFile}`,
      "",
    ].join("\n"),
  );
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let log = "";
  const tunnel: Stunnel = {
    port,
    async start() {
      const proc = spawn(binary, [config], { stdio: ["ignore", "ignore", "pipe"] });
      child = proc;
      proc.stderr!.setEncoding("utf8");
      proc.stderr!.on("data", (d: string) => log = (log + d).slice(-4000));
      exited = new Promise((resolve) => proc.once("exit", () => resolve()));
      const deadline = Date.now() + 20_000;
      for (;;) {
        if (proc.exitCode !== null) throw new Error(`stunnel exited with ${proc.exitCode}: ${log}`);
        if (await accepts("127.0.0.1", port)) return;
        if (Date.now() > deadline) {
          proc.kill("SIGKILL");
          throw new Error(`stunnel did not listen on ${port}: ${log}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async stop() {
      const proc = child;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
  await tunnel.start();
  return tunnel;
}
