// Fault fixtures beyond tests/helpers/servers.ts: a listener that never
// completes a connect, and process-wide counters of errors that escaped.

import * as net from "node:net";
import process from "node:process";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export interface Blackhole {
  port: number;
  /** Kills the listener process; its port is then free (connects are refused). */
  close(): Promise<void>;
  /** Filler connections that occupy the accept queue. */
  fillers: net.Socket[];
}

/**
 * A loopback port whose accept queue is full and never drained: a new
 * connect stays in SYN-SENT, so only the client's connect timeout ends it.
 */
export async function startBlackhole(): Promise<Blackhole> {
  const script = fileURLToPath(new URL("./blackhole.mjs", helperDir()));
  const child = spawn("node", [script], { stdio: ["ignore", "pipe", "inherit"] });
  child.stdout!.setEncoding("utf8");
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once("data", (d: string) => resolve(Number(d.trim().split(" ")[1])));
    child.once("exit", (code) => reject(new Error(`blackhole exited with ${code}`)));
  });
  // Fill the accept queue (backlog 1 holds two) and wait until they are in it.
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 2; i++) {
    const s = net.connect({ port, host: "127.0.0.1" });
    s.on("error", () => {});
    fillers.push(s);
    await new Promise<void>((resolve) => {
      s.once("connect", () => resolve());
      s.once("close", () => resolve());
    });
  }
  return {
    port,
    fillers,
    async close() {
      for (const s of fillers) s.destroy();
      child.kill("SIGKILL");
      await exited;
    },
  };
}

/** Counts unhandled rejections and uncaught exceptions while installed. */
export function escapeCounter(): { rejections: unknown[]; exceptions: unknown[]; dispose(): void } {
  const rejections: unknown[] = [];
  const exceptions: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);
  const onException = (error: unknown) => exceptions.push(error);
  process.on("unhandledRejection", onRejection);
  process.on("uncaughtException", onException);
  return {
    rejections,
    exceptions,
    dispose() {
      process.off("unhandledRejection", onRejection);
      process.off("uncaughtException", onException);
    },
  };
}

// blackhole.mjs sits in tests/helpers/; the compiled copy of this file does not.
export function helperDir(): URL {
  const here = new URL(".", import.meta.url);
  return here.pathname.includes("/build/") ? new URL(here.href.replace("/build/tests/", "/tests/")) : here;
}
