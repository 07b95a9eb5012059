// The VictoriaMetrics an end-to-end test talks to: the one `scripts/test.mjs`
// started for the whole run (described in POTSDB_TSDB_* variables), or, when
// a test file runs alone, one of its own — never a silent skip.

import { after, before } from "node:test";
import { hostname } from "node:os";
import { type ExportedSeries, startTsdb, type TsdbApi, tsdbFromEnv } from "../../scripts/tsdb.ts";
import { sanitizeName } from "../../mod.ts";

/** A server to use, and how to let go of it. */
export interface TsdbLease {
  tsdb: TsdbApi;
  /** Whether the runner's shared server is used (else this process started one). */
  shared: boolean;
  /** Disposes the server when this process started it; a no-op for the shared one. */
  release(): Promise<void>;
}

/** The runner's server when there is one, else a fresh one of our own. */
export async function leaseTsdb(): Promise<TsdbLease> {
  const shared = tsdbFromEnv();
  if (shared) return { tsdb: shared, shared: true, release: () => Promise.resolve() };
  const own = await startTsdb();
  return { tsdb: own, shared: false, release: () => own.dispose() };
}

/**
 * The suite's server, leased in a `before` hook and released in an `after` hook; call it in a
 * `describe` body and read `.tsdb` in the tests.
 */
export function useTsdb(): { readonly tsdb: TsdbApi } {
  let lease: TsdbLease | undefined;
  before(async () => {
    lease = await leaseTsdb();
  });
  after(async () => {
    await lease?.release();
  });
  return {
    get tsdb() {
      if (lease === undefined) throw new Error("the suite's VictoriaMetrics is not up (before() failed?)");
      return lease.tsdb;
    },
  };
}

/** `deno`, `bun` or `node`: kept in metric names, since the three runs share one server. */
export const runtime: "deno" | "bun" | "node" = "Deno" in globalThis
  ? "deno"
  : "Bun" in globalThis
  ? "bun"
  : "node";

/** A prefix no other run against the same server uses. */
export function uniquePrefix(test: string): string {
  const id = Math.floor(Math.random() * 0xffffffff).toString(16).padStart(8, "0");
  return `e2e.${runtime}.${test}.${id}`;
}

/** The host tag a `Client` with `hostTag: true` adds on this machine. */
export function expectedHostTag(): string {
  return sanitizeName(hostname());
}

/** Regex-escapes a metric-name prefix for a `{__name__=~"…"}` selector. */
export function nameMatch(prefix: string): string {
  return `{__name__=~"${prefix.replace(/[.\\+*?^$()[\]{}|]/g, "\\\\$&")}\\\\..*"}`;
}

/** Samples in an export. */
export function sampleCount(series: ExportedSeries[]): number {
  return series.reduce((n, s) => n + s.values.length, 0);
}

/**
 * Exports `match` until it holds at least `count` samples or `deadlineMs`
 * passes, and returns the last export (the caller asserts on it).
 */
export async function exportWhenComplete(
  tsdb: TsdbApi,
  match: string,
  count: number,
  deadlineMs = 30_000,
): Promise<ExportedSeries[]> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const series = await tsdb.exportSeries(match);
    if (sampleCount(series) >= count || Date.now() > deadline) return series;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The sum of a counter in `/metrics` text over the series whose labels contain `labels`. */
export function counter(metricsText: string, name: string, labels = ""): number {
  let sum = 0;
  for (const line of metricsText.split("\n")) {
    if (!line.startsWith(name + "{") && !line.startsWith(name + " ")) continue;
    if (labels && !line.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

/** A key for one sample: metric, sorted tags (`__name__` excluded) and timestamp in ms. */
export function sampleKey(metric: string, tags: Record<string, string>, timestampMs: number): string {
  const t = Object.keys(tags).filter((k) => k !== "__name__").sort().map((k) => `${k}=${tags[k]}`);
  return `${metric} ${t.join(",")} ${timestampMs}`;
}
