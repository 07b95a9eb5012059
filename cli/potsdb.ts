#!/usr/bin/env node
/**
 * `potsdb`: send points to OpenTSDB from the command line, in place of `nc`.
 *
 * ```sh
 * potsdb send sys.cpu.user 42.5 cpu=0 --tsd tsdb:4242
 * my-collector | potsdb pipe --mps 1000
 * potsdb demo
 * ```
 *
 * Runs on Node (`node build/cli/potsdb.js`, or the `potsdb` bin of the npm
 * package), Deno (`deno run -A cli/potsdb.ts`) and Bun (`bun cli/potsdb.ts`).
 *
 * @module
 */

import { realpathSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { demo, DEMO_HELP } from "./demo.ts";
import { EXIT_INTERRUPTED, EXIT_USAGE, UsageError, warn } from "./options.ts";
import { pipe, PIPE_HELP } from "./pipe.ts";
import { send, SEND_HELP } from "./send.ts";

/** Help text of `potsdb` itself. */
export const MAIN_HELP = `Usage: potsdb <command> [options]

Sends metrics to OpenTSDB (or anything that speaks its telnet put protocol,
such as VictoriaMetrics) from the command line.

Commands:
  send <metric> <value> [tag=value…]   send one point
  pipe                                 stream points read from stdin (replaces nc)
  demo                                 stream this machine's metrics to a local VictoriaMetrics
                                       and show what was stored
  help [command]                       show help

The server is --tsd HOST:PORT, else $POTSDB_TSD, else localhost:4242.
Run potsdb <command> --help for a command's options.
`;

const COMMANDS: Record<string, { run: (argv: readonly string[]) => Promise<number>; help: string }> = {
  send: { run: send, help: SEND_HELP },
  pipe: { run: pipe, help: PIPE_HELP },
  demo: { run: demo, help: DEMO_HELP },
};

/**
 * Runs one `potsdb` command line.
 *
 * @param argv the arguments after the program name, e.g. `["send", "cpu", "1", "a=b"]`
 * @returns the exit code: 0 done, 1 some input invalid or not delivered, 2 bad command line, 130 interrupted
 *
 * @example
 * ```ts
 * import { main } from "./potsdb.ts";
 *
 * const code = await main(["send", "--help"]);
 * console.assert(code === 0);
 * ```
 */
export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    const topic = name === "help" ? COMMANDS[rest[0] ?? ""] : undefined;
    const out = name === undefined ? process.stderr : process.stdout;
    out.write(topic?.help ?? MAIN_HELP);
    return name === undefined ? EXIT_USAGE : 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    warn("", `unknown command ${JSON.stringify(name)}; run potsdb --help`);
    return EXIT_USAGE;
  }
  try {
    return await command.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      warn(name, `${e.message}; run potsdb ${name} --help`);
      return EXIT_USAGE;
    }
    warn(name, (e as Error).stack ?? String(e));
    return 1;
  }
}

function isMain(): boolean {
  const meta = import.meta as ImportMeta & { main?: boolean };
  if (typeof meta.main === "boolean") return meta.main;
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

/** Runs this process's command line and sets its exit code. */
async function run(): Promise<void> {
  const code = await main(process.argv.slice(2));
  process.exitCode = code;
  if (code === EXIT_INTERRUPTED) {
    // A read of stdin may still be pending (Deno cannot cancel it): leave once the output is out.
    await new Promise((resolve) => process.stdout.write("", resolve));
    await new Promise((resolve) => process.stderr.write("", resolve));
    process.exit(code);
  }
}

// No top-level await: `require()` (Node's require(esm)) can load this module, and importing
// it runs nothing. main() reports its own failures, so run() does not reject.
if (isMain()) void run();
