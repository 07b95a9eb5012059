/**
 * `potsdb demo`: starts a local VictoriaMetrics, streams this machine's own
 * metrics plus a burst of synthetic series through the client for a few
 * seconds while showing progress, reads everything back and prints a
 * per-series summary. Stops the server on the way out, also on Ctrl-C.
 *
 * @module
 */

import os from "node:os";
import process from "node:process";
import { startTsdb, type Tsdb } from "../scripts/tsdb.ts";
import { type Client, type ClientStats, sanitizeName, type Tags } from "../mod.ts";
import {
  CLIENT_OPTION_SPEC,
  CLIENT_OPTIONS_HELP,
  clientSettings,
  EXIT_INCOMPLETE,
  EXIT_INTERRUPTED,
  makeClient,
  numberOption,
  parseArgs,
  stringOption,
  UsageError,
  warn,
} from "./options.ts";
import { groupDigits, type SeriesRow, seriesTable } from "./report.ts";

/** Help text of `potsdb demo`. */
export const DEMO_HELP = `Usage: potsdb demo [options]

Starts a local VictoriaMetrics (installing the victoria-metrics package when
run as root and it is missing), streams this machine's metrics (CPU, memory,
load average, event-loop lag) and a burst of synthetic series to it for a
few seconds, reads everything back and prints a summary per series. The
server is stopped at the end, on errors and on Ctrl-C.

With --tsd (or $POTSDB_TSD) the points go to that server instead and none is
started; they are read back only when --http names a VictoriaMetrics HTTP API.

Options:
  --seconds N         how long to stream (default 10)
  --http HOST:PORT    VictoriaMetrics HTTP API to read back from when using --tsd
${CLIENT_OPTIONS_HELP}

Every point carries a run=<id> tag, so runs against a shared server stay apart.
`;

const TICK_MS = 1000;
const LAG_PROBE_MS = 50;
const BURST_SERIES = 8;
const BURST_SECONDS = 1800;
const READ_BACK_PATIENCE_MS = 5000;

/** One series as VictoriaMetrics' `/api/v1/export` returns it. */
interface ExportedSeries {
  metric: Record<string, string>;
  values: number[];
  timestamps: number[];
}

/**
 * Runs `potsdb demo`.
 *
 * @param argv the arguments after `demo`
 * @returns the exit code
 * @throws {UsageError} for a bad command line
 *
 * @example
 * ```ts
 * import { demo } from "./demo.ts";
 *
 * process.exitCode = await demo(["--seconds", "3"]);
 * ```
 */
export async function demo(argv: readonly string[]): Promise<number> {
  const { positionals, options } = parseArgs(argv, {
    ...CLIENT_OPTION_SPEC,
    seconds: "value",
    http: "value",
  });
  if (options.has("help")) {
    process.stdout.write(DEMO_HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`demo takes no arguments, got ${positionals[0]}`);
  const seconds = numberOption(options, "seconds") ?? 10;
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 3600) {
    throw new UsageError(`--seconds must be an integer in 1..3600, got ${seconds}`);
  }
  const external = stringOption(options, "tsd") ?? (process.env.POTSDB_TSD || undefined);
  const http = stringOption(options, "http");
  if (http !== undefined && external === undefined) {
    throw new UsageError("--http is for reading back from a server given with --tsd");
  }
  clientSettings(options, process.env); // bad options fail before a server is started

  const interrupt = new AbortController();
  const onSignal = () => {
    if (interrupt.signal.aborted) process.exit(EXIT_INTERRUPTED);
    say("interrupted: stopping (Ctrl-C again to quit at once)");
    interrupt.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  let tsdb: Tsdb | undefined;
  let client: Client | undefined;
  try {
    if (external === undefined) {
      say("starting VictoriaMetrics …");
      try {
        tsdb = await startTsdb();
      } catch (e) {
        say(`cannot start VictoriaMetrics: ${(e as Error).message}`);
        return EXIT_INCOMPLETE;
      }
      say(`VictoriaMetrics ready: telnet ${tsdb.host}:${tsdb.telnetPort}, http ${tsdb.url}`);
      options.set("tsd", `${tsdb.host}:${tsdb.telnetPort}`);
      if (interrupt.signal.aborted) return EXIT_INTERRUPTED;
    }
    const settings = clientSettings(options, process.env);
    client = makeClient(settings);
    const runId = Math.floor(Math.random() * 0xffffff).toString(16).padStart(6, "0");
    const hostTag = settings.clientOptions.hostTag;
    const host = hostTag === false
      ? undefined
      : typeof hostTag === "string"
      ? hostTag
      : sanitizeName(os.hostname());
    say(
      `sending this machine's metrics for ${seconds} s to ${settings.tsd.join(",")} ` +
        `(every point tagged run=${runId}${host ? ` host=${host}` : ""})`,
    );

    const recorder = new Recorder(client, runId);
    const streamed = await stream(client, recorder, seconds, interrupt.signal);
    if (streamed === undefined) return EXIT_INTERRUPTED;
    const { stats, burstMs } = streamed;
    say(
      `${groupDigits(stats.sent)} of ${groupDigits(stats.accepted)} points sent, ` +
        `${groupDigits(stats.dropped.total)} dropped, ${stats.reconnects} reconnects; ` +
        `the burst's ${groupDigits(BURST_SERIES * BURST_SECONDS)} send() calls took ${burstMs.toFixed(1)} ms`,
    );
    if (stats.sent < stats.accepted && stats.lastError) say(`last error: ${stats.lastError.message}`);

    const match = `{__name__=~"demo[.].+",run="${runId}"}`;
    let exported: ExportedSeries[] | undefined;
    let readFailed = false;
    if (tsdb !== undefined || http !== undefined) {
      const source = tsdb?.url ?? `http://${http}`;
      say(`reading back ${match} from ${source}`);
      const read = tsdb ? (m: string) => tsdb!.exportSeries(m) : (m: string) => exportFrom(source, m);
      try {
        exported = await readBack(read, match, stats.sent, interrupt.signal);
      } catch (e) {
        if (interrupt.signal.aborted) return EXIT_INTERRUPTED;
        readFailed = true;
        say(`cannot read back from ${source}: ${(e as Error).message}; showing what was sent`);
      }
    } else {
      say(
        "not reading back: add --http HOST:PORT (a VictoriaMetrics HTTP API) for that; showing what was sent",
      );
    }

    const rows = recorder.rows(exported);
    process.stdout.write("\n" + seriesTable(rows, exported !== undefined));
    const stored = rows.reduce((n, r) => n + r.values.length, 0);
    if (exported === undefined) {
      process.stdout.write(`\n${rows.length} series, ${groupDigits(stats.accepted)} points sent\n`);
      return readFailed ? EXIT_INCOMPLETE : 0;
    }
    process.stdout.write(
      `\n${exported.length} series read back: ${groupDigits(stored)} points stored, ` +
        `${groupDigits(stats.sent)} sent\n`,
    );
    return stored >= stats.sent ? 0 : EXIT_INCOMPLETE;
  } finally {
    await client?.close({ timeoutMs: 0 });
    if (tsdb !== undefined) {
      await tsdb.dispose();
      say("stopped VictoriaMetrics");
    }
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

function say(message: string): void {
  warn("demo", message);
}

/** Sends points and remembers, per series, what was sent. */
class Recorder {
  readonly #client: Client;
  readonly #runId: string;
  readonly #series = new Map<string, { sent: number; values: number[] }>();

  constructor(client: Client, runId: string) {
    this.#client = client;
    this.#runId = runId;
  }

  /** A sender for one series: its name and tags are worked out once, not per point. */
  series(metric: string, tags: Record<string, string>): (value: number, timestamp: number) => void {
    const name = seriesName(metric, tags);
    const sentTags: Tags = { ...tags, run: this.#runId };
    let series = this.#series.get(name);
    if (series === undefined) this.#series.set(name, series = { sent: 0, values: [] });
    const entry = series;
    const client = this.#client;
    return (value, timestamp) => {
      client.send(metric, value, sentTags, timestamp);
      entry.sent++;
      entry.values.push(value);
    };
  }

  send(metric: string, value: number, tags: Record<string, string>, timestamp: number): void {
    this.series(metric, tags)(value, timestamp);
  }

  /** Rows for the table: the exported values when there are some, else the sent ones. */
  rows(exported: ExportedSeries[] | undefined): SeriesRow[] {
    const stored = new Map<string, number[]>();
    for (const s of exported ?? []) {
      const { __name__: metric, ...labels } = s.metric;
      const order = s.timestamps.map((_, i) => i).sort((a, b) => s.timestamps[a] - s.timestamps[b]);
      stored.set(seriesName(metric, labels), order.map((i) => s.values[i]));
    }
    const names = new Set([...this.#series.keys(), ...stored.keys()]);
    return [...names]
      .sort((a, b) => a.localeCompare(b, "en", { numeric: true }))
      .map((name) => ({
        name,
        sent: this.#series.get(name)?.sent ?? 0,
        values: exported ? stored.get(name) ?? [] : this.#series.get(name)?.values ?? [],
      }));
  }
}

/** `metric{k=v,…}` without the host and run tags, which every series shares. */
function seriesName(metric: string, tags: Record<string, string>): string {
  const shown = Object.keys(tags).filter((k) => k !== "host" && k !== "run").sort();
  return `${metric}{${shown.map((k) => `${k}=${tags[k]}`).join(",")}}`;
}

/**
 * Streams for `seconds`: system metrics and waves once a second, the burst
 * with the first sample. Returns the client's final stats and how long the
 * burst's `send()` calls took, or undefined when interrupted.
 */
async function stream(
  client: Client,
  recorder: Recorder,
  seconds: number,
  signal: AbortSignal,
): Promise<{ stats: ClientStats; burstMs: number } | undefined> {
  const start = Date.now();
  let cpuBefore = cpuTimes();
  let lagMax = 0;
  let expected = performance.now() + LAG_PROBE_MS;
  const lagProbe = setInterval(() => {
    const now = performance.now();
    lagMax = Math.max(lagMax, now - expected);
    expected = now + LAG_PROBE_MS;
  }, LAG_PROBE_MS);
  const progress = new Progress(client, start);
  let lastTs = 0;
  let burstMs = 0;
  try {
    // Samples at the middle of each second, so the progress line (on the second) sees them sent.
    for (let tick = 1; tick <= seconds; tick++) {
      await sleepUntil(start + tick * TICK_MS - TICK_MS / 2, signal);
      let ts = Math.floor(Date.now() / 1000);
      if (ts <= lastTs) ts = lastTs + 1; // one point per series and second
      lastTs = ts;

      const cpuNow = cpuTimes();
      const total = cpuNow.total - cpuBefore.total || 1;
      const percent = (v: number) => Math.round((v / total) * 1000) / 10;
      recorder.send("demo.cpu.percent", percent(cpuNow.user - cpuBefore.user), { mode: "user" }, ts);
      recorder.send("demo.cpu.percent", percent(cpuNow.system - cpuBefore.system), { mode: "system" }, ts);
      recorder.send("demo.cpu.percent", percent(cpuNow.idle - cpuBefore.idle), { mode: "idle" }, ts);
      cpuBefore = cpuNow;
      const free = os.freemem();
      recorder.send("demo.mem.bytes", os.totalmem() - free, { state: "used" }, ts);
      recorder.send("demo.mem.bytes", free, { state: "free" }, ts);
      const memory = process.memoryUsage();
      recorder.send("demo.process.memory_bytes", memory.rss, { kind: "rss" }, ts);
      recorder.send("demo.process.memory_bytes", memory.heapUsed, { kind: "heap" }, ts);
      const [load1, load5, load15] = os.loadavg();
      recorder.send("demo.load.average", load1, { period: "1m" }, ts);
      recorder.send("demo.load.average", load5, { period: "5m" }, ts);
      recorder.send("demo.load.average", load15, { period: "15m" }, ts);
      recorder.send(
        "demo.eventloop.lag_ms",
        Math.round(Math.max(0, lagMax) * 100) / 100,
        { stat: "max" },
        ts,
      );
      lagMax = 0;

      const phase = (tick % 10) / 10;
      const round = (v: number) => Math.round(v * 100) / 100;
      recorder.send(
        "demo.synthetic.wave",
        round(50 + 50 * Math.sin(2 * Math.PI * phase)),
        { shape: "sine" },
        ts,
      );
      recorder.send("demo.synthetic.wave", phase < 0.5 ? 100 : 0, { shape: "square" }, ts);
      recorder.send("demo.synthetic.wave", round(100 * phase), { shape: "sawtooth" }, ts);
      recorder.send(
        "demo.synthetic.wave",
        round(200 * Math.min(phase, 1 - phase)),
        { shape: "triangle" },
        ts,
      );

      // The burst: the last half hour of eight random walks at once, as a backfill would.
      if (tick === 1) {
        const begin = performance.now();
        for (let s = 0; s < BURST_SERIES; s++) {
          const walk = recorder.series("demo.synthetic.walk", { series: String(s) });
          let value = 100;
          for (let i = BURST_SECONDS; i >= 1; i--) {
            value = Math.max(0, value + (Math.random() - 0.5) * 10);
            walk(round(value), ts - i);
          }
        }
        burstMs = performance.now() - begin;
      }
    }
    await sleepUntil(start + seconds * TICK_MS, signal);
  } catch (e) {
    if (signal.aborted) return undefined;
    throw e;
  } finally {
    clearInterval(lagProbe);
    progress.stop();
  }
  const stats = await client.close();
  progress.print(stats, true);
  return { stats, burstMs };
}

function cpuTimes(): { user: number; system: number; idle: number; total: number } {
  let user = 0, system = 0, idle = 0;
  for (const cpu of os.cpus()) {
    user += cpu.times.user + cpu.times.nice;
    system += cpu.times.sys + cpu.times.irq;
    idle += cpu.times.idle;
  }
  return { user, system, idle, total: user + system + idle };
}

function sleepUntil(time: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, Math.max(0, time - Date.now()));
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** The live progress line: rewritten in place on a terminal, one line a second otherwise. */
class Progress {
  readonly #start: number;
  readonly #tty = process.stderr.isTTY === true;
  readonly #timer: ReturnType<typeof setInterval>;
  // (time, sent) samples of about the last second: sent/s is measured over a second
  // even when the line is redrawn four times a second.
  #history: { time: number; sent: number }[];

  constructor(client: Client, start: number) {
    this.#start = start;
    this.#history = [{ time: start, sent: 0 }];
    this.#timer = setInterval(() => this.print(client.stats(), false), this.#tty ? 250 : 1000);
  }

  print(stats: ClientStats, final: boolean): void {
    const now = Date.now();
    const history = this.#history;
    while (history.length > 1 && history[1].time <= now - 1000) history.shift();
    const oldest = history[0];
    const rate = (stats.sent - oldest.sent) / Math.max(0.001, (now - oldest.time) / 1000);
    history.push({ time: now, sent: stats.sent });
    let line = `${((now - this.#start) / 1000).toFixed(1).padStart(5)} s  sent ${groupDigits(stats.sent)}` +
      ` (${groupDigits(rate)}/s)  queued ${groupDigits(stats.queued)}  dropped ${
        groupDigits(stats.dropped.total)
      }  reconnects ${stats.reconnects}`;
    if (!stats.connected && stats.connectFailures > 0 && stats.lastError) {
      line += `  (not connected: ${stats.lastError.message})`;
    }
    if (final) line += "  done";
    if (this.#tty) process.stderr.write(`\r${line}\x1b[K${final ? "\n" : ""}`);
    else process.stderr.write(line + "\n");
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** Exports until the server has at least `expected` points (ingestion lags the socket a little). */
async function readBack(
  read: (match: string) => Promise<ExportedSeries[]>,
  match: string,
  expected: number,
  signal: AbortSignal,
): Promise<ExportedSeries[]> {
  const deadline = Date.now() + READ_BACK_PATIENCE_MS;
  for (;;) {
    const series = await read(match);
    const points = series.reduce((n, s) => n + s.values.length, 0);
    if (points >= expected || Date.now() > deadline) return series;
    await sleepUntil(Date.now() + 200, signal);
  }
}

/** `/api/v1/export` of a VictoriaMetrics given as `host:port` (or a URL), after a flush. */
async function exportFrom(base: string, match: string): Promise<ExportedSeries[]> {
  const url = base.includes("://") ? base : `http://${base}`;
  // Makes just-ingested points visible; a cluster or proxy may not offer it, which is fine.
  await fetch(`${url}/internal/force_flush`).then((r) => r.arrayBuffer()).catch(() => {});
  const response = await fetch(`${url}/api/v1/export?match[]=${encodeURIComponent(match)}`);
  const text = await response.text();
  if (!response.ok) throw new Error(`HTTP ${response.status} ${text.slice(0, 200)}`);
  return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as ExportedSeries);
}
