/**
 * `potsdb send`: one point, delivered before the command exits.
 *
 * @module
 */

import process from "node:process";
import { ValidationError } from "../mod.ts";
import { LineError, parseTags, parseTimestamp, parseValue } from "./lines.ts";
import {
  CLIENT_OPTION_SPEC,
  CLIENT_OPTIONS_HELP,
  clientSettings,
  EXIT_INCOMPLETE,
  makeClient,
  parseArgs,
  stringOption,
  UsageError,
  warn,
} from "./options.ts";

/** Help text of `potsdb send`. */
export const SEND_HELP = `Usage: potsdb send <metric> <value> [tag=value…] [options]

Sends one point and waits (up to --timeout) until it is written to the server.

Options:
  --timestamp N       seconds (or 13 digits of milliseconds) since the epoch (default: now)
${CLIENT_OPTIONS_HELP}

Exit status: 0 when the point was written, 1 when it was invalid or not delivered, 2 for a bad command line.

Example:
  potsdb send sys.cpu.user 42.5 cpu=0 --tsd tsdb.example.com:4242
`;

/**
 * Runs `potsdb send`.
 *
 * @param argv the arguments after `send`
 * @returns the exit code
 * @throws {UsageError} for a bad command line
 *
 * @example
 * ```ts
 * import { send } from "./send.ts";
 *
 * const code = await send(["app.hits", "1", "route=home", "--tsd", "127.0.0.1:4242", "--timeout", "1"]);
 * console.log(code);
 * ```
 */
export async function send(argv: readonly string[]): Promise<number> {
  const { positionals, options } = parseArgs(argv, { ...CLIENT_OPTION_SPEC, timestamp: "value" });
  if (options.has("help")) {
    process.stdout.write(SEND_HELP);
    return 0;
  }
  if (positionals.length < 2) throw new UsageError("send needs <metric> <value> [tag=value…]");
  const settings = clientSettings(options, process.env);
  const [metric, valueText, ...tagWords] = positionals;
  const timestampText = stringOption(options, "timestamp");
  const client = makeClient(settings);
  try {
    const timestamp = timestampText === undefined ? undefined : parseTimestamp(timestampText);
    client.send(metric, parseValue(valueText), parseTags(tagWords), timestamp);
  } catch (e) {
    await client.close({ timeoutMs: 0 });
    if (e instanceof LineError || e instanceof ValidationError) {
      warn("send", `invalid point: ${e.message}`);
      return EXIT_INCOMPLETE;
    }
    throw e;
  }
  const stats = await client.close();
  if (stats.sent === 1) return 0;
  const why = stats.lastError ? `: ${stats.lastError.message}` : "";
  warn("send", `not delivered to ${settings.tsd.join(",")}${why}`);
  return EXIT_INCOMPLETE;
}
