/**
 * `potsdb pipe`: what `nc tsd 4242` was used for, with validation, a rate
 * limit, reconnects and an account of every line.
 *
 * @module
 */

import process from "node:process";
import {
  type Client,
  type ClientEventMap,
  type ClientStats,
  FlushTimeoutError,
  ValidationError,
} from "../mod.ts";
import { LineError, MAX_INPUT_LINE, parseLine, readLines } from "./lines.ts";
import {
  CLIENT_OPTION_SPEC,
  CLIENT_OPTIONS_HELP,
  clientSettings,
  EXIT_INCOMPLETE,
  EXIT_INTERRUPTED,
  makeClient,
  parseArgs,
  UsageError,
  warn,
} from "./options.ts";

/** Help text of `potsdb pipe`. */
export const PIPE_HELP = `Usage: potsdb pipe [options] < lines

Reads points from stdin, one per line, and streams them to the server.
Each line is one of:
  put <metric> <timestamp> <value> [tag=value…]     (the OpenTSDB telnet form)
  <metric> <timestamp> <value> [tag=value…]         (the tcollector form)
  <metric> <value> [tag=value…]                     (timestamped now)
Blank lines and lines starting with # are skipped. A timestamp is whole
seconds (up to 4294967295) or 13 digits of milliseconds, as for the client:
a fraction, or 10 to 12 digits above 4294967295 (which OpenTSDB would read as
milliseconds of 1970-2001), is refused. Every point is checked
before it is queued; a bad line is reported on stderr with its number and
skipped. Points are written the way the client writes them (a value of
1e3 goes out as 1000), with the host tag added to every point that has none
(--no-host-tag to leave the tags as written).

When the queue is full, reading pauses until it has been written out, so
nothing is dropped while the server is slow or away (or --mps holds it
back); with --no-wait reading never pauses and the oldest queued points are
dropped instead, for live feeds that must never block their producer.

A point that repeats the metric, tags and second of one already sent is
dropped as a duplicate, as potsdb does (OpenTSDB keeps one value per series
and second); --no-dedup sends every line.

At the end a summary goes to stderr: read (non-blank lines), sent (written
to the connection), invalid, dropped (with how many were duplicates).

Options:
  --no-wait           never pause reading; drop the oldest points when the queue is full
  --no-dedup          send repeats of a metric, tags and second too (default: dropped)
${CLIENT_OPTIONS_HELP}

Exit status: 0 when every line was valid and sent, 1 when some line was
invalid or some point was not delivered, 2 for a bad command line, 130 after Ctrl-C.

Example:
  my-collector | potsdb pipe --tsd tsdb.example.com:4242 --mps 1000
`;

const MAX_REPORTED_SERVER_LINES = 10;
const TROUBLE_REPORT_INTERVAL_MS = 10_000;

/**
 * Runs `potsdb pipe` on `process.stdin`.
 *
 * @param argv the arguments after `pipe`
 * @returns the exit code
 * @throws {UsageError} for a bad command line
 *
 * @example
 * ```ts
 * import { pipe } from "./pipe.ts";
 *
 * process.exitCode = await pipe(["--tsd", "127.0.0.1:4242", "--mps", "100"]);
 * ```
 */
export async function pipe(argv: readonly string[]): Promise<number> {
  const { positionals, options } = parseArgs(argv, {
    ...CLIENT_OPTION_SPEC,
    "no-wait": "flag",
    "no-dedup": "flag",
  });
  if (options.has("help")) {
    process.stdout.write(PIPE_HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`pipe takes no arguments, got ${positionals[0]}`);
  const settings = clientSettings(options, process.env);
  const wait = !options.has("no-wait");
  if (options.has("no-dedup")) settings.clientOptions.dedup = false;
  const qsize = settings.clientOptions.qsize ?? 100_000;
  const client = makeClient(settings);
  const stopReporting = reportTrouble(client, settings.tsd.join(","));

  let interrupted = false;
  const stop = new AbortController();
  const stopped = new Promise<"stopped">((resolve) =>
    stop.signal.addEventListener("abort", () => resolve("stopped"), { once: true })
  );
  const onSignal = () => {
    if (interrupted) process.exit(EXIT_INTERRUPTED);
    interrupted = true;
    warn("pipe", "interrupted: delivering what is queued (Ctrl-C again to quit at once)");
    stop.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  let read = 0;
  let invalid = 0;
  let room = qsize; // points that fit before the queue must be checked again
  const lines = readLines(process.stdin)[Symbol.asyncIterator]();
  try {
    for (;;) {
      // A pending read of stdin cannot be cancelled on every runtime: stop waiting for it instead.
      const next = await Promise.race([lines.next(), stopped]);
      if (next === "stopped" || next.done) break;
      const line = next.value;
      const text = line.text.trim();
      if (text === "" || text.startsWith("#")) continue;
      read++;
      if (line.tooLong) {
        invalid++;
        warn("pipe", `line ${line.number}: longer than ${MAX_INPUT_LINE} characters: ${line.text}…`);
        continue;
      }
      if (wait && qsize > 0 && room <= 0) {
        room = await roomInQueue(client, qsize, stop.signal);
        if (stop.signal.aborted) break;
      }
      try {
        const point = parseLine(text);
        client.send(point.metric, point.value, point.tags, point.timestamp);
        room--;
      } catch (e) {
        if (!(e instanceof LineError || e instanceof ValidationError)) throw e;
        invalid++;
        warn("pipe", `line ${line.number}: ${e.message}: ${clip(text)}`);
      }
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    if (interrupted) process.stdin.destroy();
  }
  const stats = await client.close();
  stopReporting();
  warn("pipe", summary(read, invalid, stats));
  const undelivered = stats.accepted - stats.sent;
  if (undelivered > 0 && stats.lastError) warn("pipe", `last error: ${stats.lastError.message}`);
  if (interrupted) return EXIT_INTERRUPTED;
  return invalid > 0 || undelivered > 0 || stats.serverErrors > 0 ? EXIT_INCOMPLETE : 0;
}

/** Waits until the queue has room, and returns how much. */
async function roomInQueue(client: Client, qsize: number, signal: AbortSignal): Promise<number> {
  for (;;) {
    const room = qsize - client.stats().queued;
    if (room > 0 || signal.aborted) return room;
    try {
      await client.flush({ timeoutMs: 1000, signal });
    } catch (e) {
      if (!(e instanceof FlushTimeoutError) && !signal.aborted) throw e;
    }
  }
}

function summary(read: number, invalid: number, stats: ClientStats): string {
  let text = `${read} read, ${stats.sent} sent, ${invalid} invalid, ${stats.dropped.total} dropped`;
  const duplicates = stats.dropped.duplicate;
  if (duplicates > 0) text += ` (${duplicates} duplicate${duplicates === 1 ? "" : "s"}: see --no-dedup)`;
  if (stats.reconnects > 0) text += `, ${stats.reconnects} reconnect${stats.reconnects === 1 ? "" : "s"}`;
  if (stats.serverErrors > 0) text += `, ${stats.serverErrors} server error line(s)`;
  return text;
}

function clip(text: string): string {
  return text.length > 120 ? text.slice(0, 120) + "…" : text;
}

/**
 * Tells stderr when the server cannot be reached (at most every 10 s), when
 * it is reached again, and what it answers (OpenTSDB's error lines).
 */
function reportTrouble(client: Client, where: string): () => void {
  let lastReport = -Infinity;
  let failing = false;
  let serverLines = 0;
  const onError = (event: ClientEventMap["error"]) => {
    failing = true;
    const now = Date.now();
    if (now - lastReport < TROUBLE_REPORT_INTERVAL_MS) return;
    lastReport = now;
    warn("pipe", `cannot reach ${where}: ${event.detail.message} (retrying)`);
  };
  const onConnect = () => {
    if (failing) warn("pipe", `connected to ${where}`);
    failing = false;
  };
  const onServerError = (event: ClientEventMap["server-error"]) => {
    if (++serverLines > MAX_REPORTED_SERVER_LINES) return;
    warn("pipe", event.detail.message);
  };
  client.addEventListener("error", onError);
  client.addEventListener("connect", onConnect);
  client.addEventListener("server-error", onServerError);
  return () => {
    client.removeEventListener("error", onError);
    client.removeEventListener("connect", onConnect);
    client.removeEventListener("server-error", onServerError);
  };
}
