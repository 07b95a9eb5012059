/**
 * Command-line options of `potsdb`: a small parser (numbers such as `-5`
 * stay positional, which `util.parseArgs` of Node 20 cannot do) and the
 * client options every command shares.
 *
 * @module
 */

import process from "node:process";
import { Client, type ClientOptions } from "../mod.ts";

/** Default server when neither `--tsd` nor `POTSDB_TSD` is given. */
export const DEFAULT_TSD = "localhost:4242";

/** Exit code for a command line that cannot be run (unknown option, missing argument). */
export const EXIT_USAGE = 2;
/** Exit code when some input was invalid or some points were not delivered. */
export const EXIT_INCOMPLETE = 1;
/** Exit code after Ctrl-C (128 + SIGINT). */
export const EXIT_INTERRUPTED = 130;

/**
 * A command line that cannot be run; reported with the command's usage hint
 * and exit code {@linkcode EXIT_USAGE}.
 *
 * @example
 * ```ts
 * import { UsageError } from "./options.ts";
 *
 * const e = new UsageError("unknown option --foo");
 * console.assert(e.message === "unknown option --foo");
 * ```
 */
export class UsageError extends Error {
  /** @param message what is wrong with the command line */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Which options a command takes: names without `--`, and whether each takes a value. */
export type OptionSpec = Readonly<Record<string, "value" | "flag">>;

/** A parsed command line. */
export interface ParsedArgs {
  /** Arguments that are not options, in order. */
  positionals: string[];
  /** Option values by name (without `--`); flags are `true`. */
  options: Map<string, string | true>;
}

// A leading "-" followed by a digit or a dot is a negative number, not an option.
const NEGATIVE_NUMBER = /^-(?:\d|\.\d)/;

/**
 * Parses `argv` against `spec`. Accepts `--name value`, `--name=value`,
 * flags, `-h` for `--help`, and `--` to end options.
 *
 * @param argv the arguments after the command name
 * @param spec the options this command takes
 * @returns positionals and options
 * @throws {UsageError} for an unknown option, a missing value, or a value given to a flag
 *
 * @example
 * ```ts
 * import { parseArgs } from "./options.ts";
 *
 * const { positionals, options } = parseArgs(["cpu", "-5", "--tsd=h:1"], { tsd: "value" });
 * console.assert(positionals.join(" ") === "cpu -5" && options.get("tsd") === "h:1");
 * ```
 */
export function parseArgs(argv: readonly string[], spec: OptionSpec): ParsedArgs {
  const positionals: string[] = [];
  const options = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === "-h") {
      options.set("help", true);
      continue;
    }
    if (!arg.startsWith("-") || arg === "-" || NEGATIVE_NUMBER.test(arg)) {
      positionals.push(arg);
      continue;
    }
    if (!arg.startsWith("--")) throw new UsageError(`unknown option ${arg}`);
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    const kind = name === "help" ? "flag" : spec[name];
    if (kind === undefined) throw new UsageError(`unknown option --${name}`);
    if (kind === "flag") {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`);
      options.set(name, true);
    } else if (eq !== -1) {
      options.set(name, arg.slice(eq + 1));
    } else {
      const value = argv[i + 1];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
      options.set(name, value);
      i++;
    }
  }
  return { positionals, options };
}

/** The options of {@linkcode ClientOptions} every command accepts on its command line. */
export const CLIENT_OPTION_SPEC: OptionSpec = {
  tsd: "value",
  "host-tag": "value",
  "no-host-tag": "flag",
  qsize: "value",
  mps: "value",
  timeout: "value",
  sanitize: "flag",
};

/** Help text of the options in {@linkcode CLIENT_OPTION_SPEC}. */
export const CLIENT_OPTIONS_HELP = `  --tsd HOST:PORT     server, or several comma-separated for failover
                      (default: $POTSDB_TSD, else ${DEFAULT_TSD})
  --host-tag NAME     host tag added to points without one (default: this machine's name)
  --no-host-tag       add no host tag
  --qsize N           most points waiting to be written (default 100000, 0 = unbounded)
  --mps N             most metrics written per second (default 0 = unlimited)
  --timeout SECONDS   how long to keep trying to deliver at exit (default 10)
  --sanitize          replace characters OpenTSDB rejects with _ instead of refusing the point
  -h, --help          show this help`;

/** What the shared options resolve to. */
export interface ClientSettings {
  /** The server addresses, as given. */
  tsd: string[];
  /** Options for the {@linkcode Client}. */
  clientOptions: ClientOptions;
}

/**
 * Resolves the shared options: server (`--tsd`, else `POTSDB_TSD`, else
 * localhost:4242), host tag, queue size, rate limit, exit deadline.
 *
 * @param options parsed options
 * @param env the environment (`process.env`)
 * @returns the server list and client options
 * @throws {UsageError} for a value that is not a number, or conflicting host tag options
 *
 * @example
 * ```ts
 * import { clientSettings, parseArgs, CLIENT_OPTION_SPEC } from "./options.ts";
 *
 * const { options } = parseArgs(["--tsd", "a:1,b:2", "--no-host-tag"], CLIENT_OPTION_SPEC);
 * const { tsd, clientOptions } = clientSettings(options, {});
 * console.assert(tsd.length === 2 && clientOptions.hostTag === false);
 * ```
 */
export function clientSettings(
  options: Map<string, string | true>,
  env: Record<string, string | undefined>,
): ClientSettings {
  const raw = stringOption(options, "tsd") ?? (env.POTSDB_TSD || undefined) ?? DEFAULT_TSD;
  const tsd = raw.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (tsd.length === 0) throw new UsageError("--tsd needs at least one HOST:PORT");
  const clientOptions: ClientOptions = {};
  const hostTag = stringOption(options, "host-tag");
  if (hostTag !== undefined && options.has("no-host-tag")) {
    throw new UsageError("--host-tag and --no-host-tag exclude each other");
  }
  if (hostTag !== undefined) clientOptions.hostTag = hostTag;
  if (options.has("no-host-tag")) clientOptions.hostTag = false;
  const qsize = numberOption(options, "qsize");
  if (qsize !== undefined) clientOptions.qsize = qsize;
  const mps = numberOption(options, "mps");
  if (mps !== undefined) clientOptions.mps = mps;
  const timeout = numberOption(options, "timeout");
  if (timeout !== undefined) {
    if (timeout < 0) throw new UsageError(`--timeout must be >= 0, got ${timeout}`);
    clientOptions.closeTimeoutMs = Math.round(timeout * 1000);
  }
  if (options.has("sanitize")) clientOptions.sanitize = true;
  return { tsd, clientOptions };
}

/**
 * Makes the client, turning a bad option into a {@linkcode UsageError}.
 *
 * @param settings from {@linkcode clientSettings}
 * @returns a client that has not connected yet
 * @throws {UsageError} when the client rejects an option (a bad port, a bad host tag, …)
 *
 * @example
 * ```ts
 * import { makeClient } from "./options.ts";
 *
 * const client = makeClient({ tsd: ["127.0.0.1:4242"], clientOptions: { hostTag: false } });
 * await client.close({ timeoutMs: 0 });
 * ```
 */
export function makeClient(settings: ClientSettings): Client {
  try {
    return new Client(settings.tsd, settings.clientOptions);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/**
 * The value of an option that takes one, if given.
 *
 * @param options parsed options
 * @param name option name without `--`
 * @returns its text, or undefined
 *
 * @example
 * ```ts
 * import { stringOption } from "./options.ts";
 *
 * console.assert(stringOption(new Map([["tsd", "h:1"]]), "tsd") === "h:1");
 * ```
 */
export function stringOption(options: Map<string, string | true>, name: string): string | undefined {
  const value = options.get(name);
  return typeof value === "string" ? value : undefined;
}

/**
 * The numeric value of an option, if given.
 *
 * @param options parsed options
 * @param name option name without `--`
 * @returns the number, or undefined
 * @throws {UsageError} when the text is not a finite number
 *
 * @example
 * ```ts
 * import { numberOption } from "./options.ts";
 *
 * console.assert(numberOption(new Map([["mps", "100"]]), "mps") === 100);
 * ```
 */
export function numberOption(options: Map<string, string | true>, name: string): number | undefined {
  const text = stringOption(options, name);
  if (text === undefined) return undefined;
  const n = text.trim() === "" ? NaN : Number(text);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} needs a number, got ${JSON.stringify(text)}`);
  return n;
}

/**
 * Writes one message line to stderr, prefixed with `potsdb`.
 *
 * @param command the command name, or "" for none
 * @param message the text
 *
 * @example
 * ```ts
 * import { warn } from "./options.ts";
 *
 * warn("pipe", "connected to localhost:4242");
 * ```
 */
export function warn(command: string, message: string): void {
  process.stderr.write(`potsdb${command ? " " + command : ""}: ${message}\n`);
}
