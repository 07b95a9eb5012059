// A script of tests/helpers (its .js twin in the tsc build) run as a child process of the runtime
// under test, with its stdout read a line at a time: the signal, crash and lock tests' real processes.

import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** A running script. */
export interface ScriptChild extends ChildProcess {
  /** The lines it prints, until its stdout closes. */
  lines: AsyncIterableIterator<string>;
  /** How it ended. Not from exitCode/signalCode: Deno sets signalCode when kill() is called. */
  ended: Promise<{ code: number | null; signal: string | null }>;
  /** What it wrote to stderr so far. */
  stderrText(): string;
}

/**
 * Starts `tests/helpers/<name>` with `args` on the runtime running the test.
 *
 * @param name the script's name, without extension
 * @param args its arguments
 * @param hangGuardMs killed after this long: a hang guard, not a timing assertion
 * @returns the child, its lines and its end
 */
export function startScript(name: string, args: (string | number)[], hangGuardMs: number): ScriptChild {
  const path = fileURLToPath(
    new URL(`./${name}.${import.meta.url.endsWith(".js") ? "js" : "ts"}`, import.meta.url),
  );
  const runtimeArgs = "Deno" in globalThis ? ["run", "-A", "--no-check", path] : [path];
  const child = spawn(process.execPath, [...runtimeArgs, ...args.map(String)], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  const ended = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal }))
  );
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => stderr += d);
  const queue: string[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  let buffered = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => {
    buffered += d;
    for (let i = buffered.indexOf("\n"); i !== -1; i = buffered.indexOf("\n")) {
      queue.push(buffered.slice(0, i));
      buffered = buffered.slice(i + 1);
    }
    wake?.();
  });
  // "close" comes after the last of stdout is read (where "exit" may come before it).
  child.once("close", () => {
    closed = true;
    wake?.();
  });
  const killer = setTimeout(() => child.kill("SIGKILL"), hangGuardMs);
  child.once("exit", () => clearTimeout(killer));
  async function* lines(): AsyncGenerator<string> {
    for (;;) {
      if (queue.length > 0) {
        yield queue.shift()!;
        continue;
      }
      if (closed) return;
      await new Promise<void>((resolve) => wake = resolve);
      wake = undefined;
    }
  }
  return Object.assign(child, { lines: lines(), ended, stderrText: () => stderr });
}
