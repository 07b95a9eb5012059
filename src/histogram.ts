/**
 * The histogram meter: counts, sum, min, max and bucket counts of recorded
 * values, kept in memory and written by the meters' report (see
 * `src/meters.ts`) under the OpenTelemetry exporter's names: `.count`,
 * `.sum`, `.min`, `.max`, and `.bucket` with an `le` tag.
 *
 * @module
 */

import { OptionsError, ValidationError } from "./errors.ts";
import { sanitizeName, type TagValue } from "./put.ts";

/** Tags as the meters keep them: a copy of the caller's, in the caller's order. */
export type Pairs = readonly (readonly [string, TagValue])[];

/** The start of a metric's lines, `put <metric> `, and its bytes with the last report's timestamp. */
export interface Head {
  /** `put <metric> `, as the encoder wrote it. */
  readonly text: string;
  /** The timestamp `bytes` were made for. */
  ts: number;
  /** `put <metric> <ts> ` as UTF-8. */
  bytes: Uint8Array;
}

/** One line of a meter, encoded when the meter was made: its metric's head, and its tags (` k=v…\n`). */
export interface Line {
  readonly head: Head;
  /** The tags, default and host tags included, and the newline, as UTF-8. */
  readonly tail: Uint8Array;
}

/** The lines of a histogram. */
export interface HistogramLines {
  count: Line;
  sum: Line;
  min: Line;
  max: Line;
  /** One per bound, then `le=inf`. */
  buckets: Line[];
}

/** Where a report writes one put: a meter's line, with this value. */
export type Emit = (line: Line, value: number) => void;

/**
 * OpenTelemetry's default bucket bounds (its SDK's and so its exporter's), in
 * milliseconds as the timers record: a dashboard reads both the same way.
 */
export const DEFAULT_BUCKETS: readonly number[] = Object.freeze([
  0,
  5,
  10,
  25,
  50,
  75,
  100,
  250,
  500,
  750,
  1000,
  2500,
  5000,
  7500,
  10000,
]);

/** Most bounds of one histogram: each is one more line in every report. */
export const MAX_BUCKETS = 100;

/**
 * Options of `client.histogram()`.
 *
 * @example
 * ```ts
 * import type { HistogramOptions } from "@x/potsdb";
 *
 * const seconds: HistogramOptions = { buckets: [0.01, 0.1, 1, 10] };
 * console.assert(seconds.buckets!.length === 4);
 * ```
 */
export interface HistogramOptions {
  /**
   * Upper bounds of the buckets, increasing: bucket `i` counts the values in
   * (`buckets[i-1]`, `buckets[i]`], and one more bucket (`le=inf`) the values
   * above the last. Fixed when the histogram is made. Default OpenTelemetry's
   * (0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000),
   * meant for milliseconds.
   */
  buckets?: readonly number[];
}

/**
 * Checks bucket bounds.
 *
 * @param buckets what the caller passed (frozen: kept by the histogram)
 * @returns a frozen copy
 * @throws {OptionsError} when they are not finite increasing numbers, or too many
 */
export function checkBuckets(buckets: readonly number[]): readonly number[] {
  if (!Array.isArray(buckets) || buckets.length > MAX_BUCKETS) {
    throw new OptionsError(`buckets must be an array of at most ${MAX_BUCKETS} numbers`);
  }
  for (let i = 0; i < buckets.length; i++) {
    const b = buckets[i];
    if (typeof b !== "number" || !Number.isFinite(b) || (i > 0 && !(b > buckets[i - 1]))) {
      throw new OptionsError(`buckets must be finite and increasing, got [${buckets.join(", ")}]`);
    }
  }
  return Object.freeze([...buckets]);
}

/** Whether two bound lists are the same. */
export function sameBuckets(a: readonly number[], b: readonly number[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** An `le` tag's value, as the OpenTelemetry exporter writes it. */
export function leText(bound: number | undefined): string {
  return bound === undefined ? "inf" : sanitizeName(String(bound));
}

/** Throws the error of a value that is not a finite number (kept out of the hot paths). */
export function notFinite(what: string, value: unknown): never {
  throw new ValidationError(
    "INVALID_VALUE",
    "value",
    `${what} must be a finite number, got ${typeof value === "number" ? value : typeof value}`,
  );
}

let report: (h: Histogram, emit: Emit) => void;
let changed: (h: Histogram) => boolean;

/**
 * A histogram bound to one name and tag set, from `client.histogram()`.
 * `record()` adds a value to in-memory totals and costs a few nanoseconds.
 * Each report writes, at one timestamp:
 * - `<name>.count` and `<name>.sum`: cumulative since the histogram was made
 *   (OpenTSDB's `rate` turns them into per-second figures, and a lost report
 *   loses no counts);
 * - `<name>.min` and `<name>.max`: of the values recorded since the previous
 *   report, only when there were some;
 * - `<name>.bucket` with `le=<bound>` for every bound and `le=inf`: the
 *   cumulative count of values at most that bound.
 *
 * These are the names and tags of the OpenTelemetry exporter
 * (`OpenTsdbMetricExporter` with `buckets: true`), so one dashboard reads both;
 * its `.min`/`.max` under cumulative temporality cover the whole run instead.
 *
 * @example
 * ```ts
 * import { Client, MemoryTransport } from "@x/potsdb";
 *
 * const metrics = new Client("localhost", { transport: new MemoryTransport(), hostTag: "web1" });
 * const latency = metrics.histogram("http.latency", { route: "home" }, { buckets: [10, 100] });
 * latency.record(12.5);
 * const stop = latency.startTimer();
 * stop(); // records the milliseconds since startTimer()
 * await latency.time(() => new Promise((resolve) => setTimeout(resolve, 5)));
 * console.assert(latency.count === 3);
 * await metrics.close(); // reports http.latency.count, .sum, .min, .max and .bucket
 * ```
 */
export class Histogram {
  readonly #name: string;
  readonly #buckets: readonly number[];
  readonly #bounds: Float64Array;
  /** Per bucket (not cumulative): values in (bound[i-1], bound[i]]; the last one above every bound. */
  readonly #counts: Float64Array;
  /** The report's lines, encoded once. */
  readonly #lines: HistogramLines;
  readonly #time: () => number;
  #count = 0;
  #sum = 0;
  #min = Infinity;
  #max = -Infinity;
  #reportedCount = -1;

  /**
   * Made by `client.histogram()`; not by hand.
   *
   * @ignore
   */
  constructor(name: string, buckets: readonly number[], lines: HistogramLines, time: () => number) {
    this.#name = name;
    this.#buckets = buckets;
    this.#bounds = Float64Array.from(buckets);
    this.#counts = new Float64Array(buckets.length + 1);
    this.#lines = lines;
    this.#time = time;
  }

  /**
   * Adds one value.
   *
   * @param value a finite number (milliseconds for the default buckets)
   * @throws {ValidationError} `INVALID_VALUE` for anything else; nothing changes
   */
  record(value: number): void {
    // `v - v` is 0 for finite numbers only (NaN and ±Infinity give NaN).
    if (typeof value !== "number" || value - value !== 0) notFinite("a recorded value", value);
    this.#count++;
    this.#sum += value;
    if (value < this.#min) this.#min = value;
    if (value > this.#max) this.#max = value;
    const bounds = this.#bounds;
    let lo = 0;
    let hi = bounds.length;
    // The first bound >= value, by halves: the default 15 bounds take 4 steps.
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (bounds[mid] < value) lo = mid + 1;
      else hi = mid;
    }
    this.#counts[lo]++;
  }

  /**
   * Starts timing; the function it returns records the milliseconds elapsed
   * (from `performance.now()`, or the client's `clock`) and returns them.
   * Call it once.
   *
   * @returns the function that stops the timer
   */
  startTimer(): () => number {
    const time = this.#time;
    const start = time();
    return () => {
      const ms = time() - start;
      this.record(ms);
      return ms;
    };
  }

  /**
   * Runs `fn` and records how long it took in milliseconds; for a function
   * that returns a promise, until the promise settles. Errors pass through
   * (and are timed too).
   *
   * @param fn the work to time
   * @returns what `fn` returns
   */
  time<T>(fn: () => T): T {
    const stop = this.startTimer();
    let result: T;
    try {
      result = fn();
    } catch (e) {
      stop();
      throw e;
    }
    const then = (result as { then?: unknown } | null)?.then;
    if (typeof then !== "function") {
      stop();
      return result;
    }
    return (result as PromiseLike<unknown>).then((v) => {
      stop();
      return v;
    }, (e) => {
      stop();
      throw e;
    }) as T;
  }

  /** Values recorded since the histogram was made. */
  get count(): number {
    return this.#count;
  }

  /** Their sum. */
  get sum(): number {
    return this.#sum;
  }

  /** The metric name its lines start with. */
  get name(): string {
    return this.#name;
  }

  /** Its bucket bounds (frozen). */
  get buckets(): readonly number[] {
    return this.#buckets;
  }

  static {
    changed = (h) => h.#count !== h.#reportedCount;
    report = (h, emit) => {
      const lines = h.#lines;
      emit(lines.count, h.#count);
      emit(lines.sum, h.#sum);
      if (h.#min !== Infinity) {
        emit(lines.min, h.#min);
        emit(lines.max, h.#max);
      }
      const counts = h.#counts;
      let cumulative = 0;
      for (let i = 0; i < counts.length; i++) {
        cumulative += counts[i];
        emit(lines.buckets[i], cumulative);
      }
      h.#min = Infinity;
      h.#max = -Infinity;
      h.#reportedCount = h.#count;
    };
  }
}

/**
 * Writes a histogram's lines and starts its next min/max interval.
 *
 * @param h the histogram
 * @param emit where the lines go
 */
export function reportHistogram(h: Histogram, emit: Emit): void {
  report(h, emit);
}

/**
 * Whether a histogram recorded anything since its last report.
 *
 * @param h the histogram
 * @returns true when it did, or was never reported
 */
export function histogramChanged(h: Histogram): boolean {
  return changed(h);
}
