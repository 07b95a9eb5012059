/**
 * The client's meters: a registry that finds or makes them by name and tags,
 * bounded by `maxMeters`, and writes them all as one report every `reportMs`
 * and on `flush()` and `close()`.
 *
 * @module
 */

import { sleep } from "./backoff.ts";
import { OptionsError, ValidationError } from "./errors.ts";
import {
  checkBuckets,
  DEFAULT_BUCKETS,
  type Emit,
  type Head,
  Histogram,
  type HistogramLines,
  type HistogramOptions,
  leText,
  type Line,
  type Pairs,
  sameBuckets,
} from "./histogram.ts";
import { MeterLookup, toPairs } from "./meter_lookup.ts";
import { Counter, Gauge, type Meter, reporter } from "./meters.ts";
import { integer } from "./options.ts";
import {
  type EncoderOptions,
  formatTimestamp,
  formatValue,
  MAX_MILLISECONDS,
  MAX_SECONDS,
  PutEncoder,
  type Tags,
} from "./put.ts";
import type { LineSink } from "./queue.ts";
import { MAX_TIMER_MS, unrefTimer } from "./runtime.ts";
import { type Clock, elapsedOf } from "./writer.ts";

/**
 * What the meters did, in {@linkcode ClientStats.meters}.
 *
 * @example
 * ```ts
 * import { Client, MemoryTransport, type MeterStats } from "@x/potsdb";
 *
 * const metrics = new Client("localhost", { transport: new MemoryTransport(), hostTag: "web1", maxMeters: 1 });
 * metrics.counter("a").inc();
 * metrics.counter("b").inc(); // over maxMeters: counted, never reported
 * const meters: MeterStats = (await metrics.close()).meters;
 * console.assert(meters.meters === 1 && meters.overflow === 1 && meters.lines === 1);
 * ```
 */
export interface MeterStats {
  /** Meters made: one per name and tag set (a histogram counts once, though it writes several lines). */
  meters: number;
  /**
   * Look-ups of a new name and tag set refused because `maxMeters` meters
   * exist: each got a meter of its own that works but is never reported.
   */
  overflow: number;
  /** Reports written. */
  reports: number;
  /** Lines they wrote (each an accepted point of `stats()`). */
  lines: number;
  /**
   * Lines a report could not write: a value past ±1.8e308 (a counter that
   * overflowed), or a clock outside what OpenTSDB takes.
   */
  refused: number;
}

/**
 * The client's options for its meters (part of `ClientOptions`).
 *
 * @example
 * ```ts
 * import { Client, MemoryTransport } from "@x/potsdb";
 *
 * const metrics = new Client("localhost", { transport: new MemoryTransport(), reportMs: 60_000, maxMeters: 1000 });
 * await metrics.close();
 * ```
 */
export interface MeterOptions {
  /**
   * How often the meters are reported, in ms (at least 1000: a report's
   * timestamp is a whole second). Reports also happen on `flush()` and
   * `close()`. Default 10000.
   */
  reportMs?: number;
  /**
   * Most meters (a name and tag set each; a histogram counts once). A new one
   * past it still works but is never reported, and is counted in
   * `stats().meters.overflow`: a tag with unbounded values (a user id) cannot
   * grow memory or the report without bound. Default 10000.
   */
  maxMeters?: number;
}

/** What the client hands its registry. */
export interface MeterRegistryOptions extends MeterOptions {
  /** The client's encoder options: each meter's lines are encoded with them when it is made. */
  encoder: EncoderOptions;
  /** Where report lines go: the client's writer. */
  sink: LineSink;
  /** The client's time, in ms since the epoch. */
  now: () => number;
  /** The client's `clock` option, for the report interval's sleeps and the timers. */
  clock: Clock | undefined;
  /** Told how many older lines a report pushed out of a full queue. */
  dropped(count: number): void;
}

const DEFAULT_REPORT_MS = 10_000;
const DEFAULT_MAX_METERS = 10_000;
/** The longest value text a report may write (24 characters), to check a meter's lines once, when made. */
const WIDEST_VALUE = -1.2345678901234567e-300;
const COUNT = ".count";
const EMPTY = new Uint8Array(0);
const utf8 = new TextEncoder();

/**
 * The client's meters: finds or makes them by name and tags, and writes them
 * all as one report every `reportMs`, and on `flush()` and `close()`.
 *
 * Each report has one timestamp (whole seconds, or milliseconds with the
 * client's `milliseconds` option), never one an earlier report used: a report
 * asked for in the same second as the previous one is skipped when no meter
 * changed since, and otherwise written when that second is over (so `flush()`
 * may wait up to a second); only `close()` writes at once, one second ahead.
 * So the server never gets two values of a series for one timestamp.
 *
 * @example
 * ```ts
 * import { MeterRegistry } from "./meter_registry.ts";
 * import { DropOldestQueue } from "./queue.ts";
 *
 * const queue = new DropOldestQueue(100);
 * const meters = new MeterRegistry({
 *   encoder: {}, sink: queue, now: () => 1700000000000, clock: undefined,
 *   reportMs: undefined, maxMeters: undefined, dropped: () => {},
 * });
 * meters.counter("jobs", { kind: "mail" }).inc(3);
 * meters.close();
 * const batch = queue.take(10, 4096)!;
 * console.assert(new TextDecoder().decode(batch.data) === "put jobs 1700000000 3 kind=mail\n");
 * ```
 */
export class MeterRegistry {
  readonly #o: MeterRegistryOptions;
  readonly #reportMs: number;
  readonly #maxMeters: number;
  /** A timestamp's unit in ms: 1000 for seconds, 1 with `milliseconds`. */
  readonly #unitMs: number;
  readonly #maxTimestamp: number;
  readonly #time: () => number;
  #encoder: PutEncoder | undefined;
  /** Each metric's line start, shared by its meters' lines. */
  readonly #heads = new Map<string, Head>();
  /** The meters by their series as written: metric, then the sorted tags. */
  readonly #bySeries = new Map<string, Meter>();
  /** The same, in the order they were made: the order of a report's lines. */
  readonly #meters: Meter[] = [];
  /** Name and tags as callers pass them → meter. */
  readonly #lookup: MeterLookup<Meter>;
  #overflow = 0;
  #reports = 0;
  #lines = 0;
  #refused = 0;
  /** The timestamp of the last report, in `#unitMs`. */
  #last = -Infinity;
  /** A report waiting for the next second. */
  #later: Promise<void> | undefined;
  #running = false;
  readonly #stop = new AbortController();

  /**
   * Makes a registry; nothing runs until the first meter is made.
   *
   * @param options the client's parts and the meters' options
   * @throws {OptionsError} for a `reportMs` or `maxMeters` that cannot work
   */
  constructor(options: MeterRegistryOptions) {
    this.#o = options;
    this.#reportMs = integer("reportMs", options.reportMs ?? DEFAULT_REPORT_MS, 1000, MAX_TIMER_MS);
    this.#maxMeters = integer("maxMeters", options.maxMeters ?? DEFAULT_MAX_METERS, 1, 10_000_000);
    this.#lookup = new MeterLookup(8 * this.#maxMeters + 1024);
    const milliseconds = options.encoder.milliseconds === true;
    this.#unitMs = milliseconds ? 1 : 1000;
    this.#maxTimestamp = milliseconds ? MAX_MILLISECONDS : MAX_SECONDS;
    this.#time = elapsedOf(options.clock);
  }

  /**
   * The counter of this name and tags, made on first use.
   *
   * @param name metric name
   * @param tags its tags, as for `send()`
   * @returns the counter
   * @throws {ValidationError} for a name or tags OpenTSDB would reject, or a series that is another kind of meter
   */
  counter(name: string, tags?: Tags): Counter {
    const found = this.#lookup.find(name, tags);
    return found instanceof Counter ? found : this.#make(Counter, name, tags, undefined) as Counter;
  }

  /**
   * The gauge of this name and tags, made on first use.
   *
   * @param name metric name
   * @param tags its tags, as for `send()`
   * @returns the gauge
   * @throws {ValidationError} as for `counter()`
   */
  gauge(name: string, tags?: Tags): Gauge {
    const found = this.#lookup.find(name, tags);
    return found instanceof Gauge ? found : this.#make(Gauge, name, tags, undefined) as Gauge;
  }

  /**
   * The histogram of this name and tags, made on first use.
   *
   * @param name metric name (its lines add `.count`, `.sum`, `.min`, `.max`, `.bucket`)
   * @param tags its tags, as for `send()`, less one for `le`
   * @param options its buckets, fixed when it is made
   * @returns the histogram
   * @throws {ValidationError} as for `counter()`
   * @throws {OptionsError} for buckets that are not increasing finite numbers, or differ from the existing histogram's
   */
  histogram(name: string, tags?: Tags, options?: HistogramOptions): Histogram {
    const found = this.#lookup.find(name, tags);
    const buckets = options?.buckets;
    return found instanceof Histogram && (buckets === undefined || sameBuckets(found.buckets, buckets))
      ? found
      : this.#make(Histogram, name, tags, buckets) as Histogram;
  }

  /** Validates a name and tags met for the first time, and finds or makes their meter. */
  #make(
    kind: typeof Counter | typeof Gauge | typeof Histogram,
    name: string,
    tags: Tags | undefined,
    bucketsOption: readonly number[] | undefined,
  ): Meter {
    const buckets = bucketsOption === undefined ? DEFAULT_BUCKETS : checkBuckets(bucketsOption);
    const pairs = toPairs(tags);
    const histogram = kind === Histogram;
    const first = this.#line(histogram ? name + COUNT : name, pairs);
    const series = seriesOf(first.text, histogram ? COUNT.length : 0);
    let meter = this.#bySeries.get(series);
    if (meter !== undefined) {
      if (!(meter instanceof kind)) {
        throw new ValidationError(
          "INVALID_METRIC",
          "metric",
          `${series} is already a ${kindName(meter)}, not a ${kindName(kind.prototype)}`,
        );
      }
      if (meter instanceof Histogram && bucketsOption !== undefined && !sameBuckets(meter.buckets, buckets)) {
        throw new OptionsError(`${series} has buckets [${meter.buckets.join(", ")}] already`);
      }
    } else {
      const made = histogram
        ? new Histogram(name, buckets, this.#histogramLines(name, pairs, buckets, first.line), this.#time)
        : new (kind as typeof Counter)(name, first.line);
      if (this.#bySeries.size >= this.#maxMeters) {
        this.#overflow++;
        return made;
      }
      meter = made;
      this.#bySeries.set(series, meter);
      this.#meters.push(meter);
      this.#start();
    }
    this.#lookup.remember(name, pairs, meter);
    return meter;
  }

  /**
   * One line of a meter, encoded (and so validated) now with the widest value and timestamp a
   * report can write: a report never meets a bad line, and writes the bytes made here.
   */
  #line(metric: string, pairs: Pairs): { line: Line; text: string } {
    const encoder = this.#encoder ??= new PutEncoder({ ...this.#o.encoder, dedup: false });
    const text = encoder.encode(metric, WIDEST_VALUE, pairs, this.#maxTimestamp);
    // `put <metric> <ts> <value> <tags>\n` as the encoder wrote it: no field holds a space, and a
    // point has at least one tag.
    const metricEnd = text.indexOf(" ", 4);
    const valueEnd = text.indexOf(" ", text.indexOf(" ", metricEnd + 1) + 1);
    const headText = text.slice(0, metricEnd + 1);
    let head = this.#heads.get(headText);
    if (head === undefined) this.#heads.set(headText, head = { text: headText, ts: -1, bytes: EMPTY });
    return { line: { head, tail: utf8.encode(text.slice(valueEnd)) }, text };
  }

  #histogramLines(name: string, pairs: Pairs, buckets: readonly number[], count: Line): HistogramLines {
    const bucketLines: Line[] = [];
    for (let i = 0; i <= buckets.length; i++) {
      bucketLines.push(this.#line(name + ".bucket", [["le", leText(buckets[i])], ...pairs]).line);
    }
    return {
      count,
      sum: this.#line(name + ".sum", pairs).line,
      min: this.#line(name + ".min", pairs).line,
      max: this.#line(name + ".max", pairs).line,
      buckets: bucketLines,
    };
  }

  /**
   * Writes every meter now, when now is a later second than the last report's
   * (or nothing changed since it: there is nothing to write then).
   *
   * @returns undefined when done, or a promise of the report written when this second is over
   */
  report(): Promise<void> | undefined {
    if (this.#meters.length === 0 || this.#stop.signal.aborted) return undefined;
    if (this.#later !== undefined) return this.#later;
    if (this.#write(false)) return undefined;
    return this.#later = this.#writeNextSecond();
  }

  async #writeNextSecond(): Promise<void> {
    const unit = this.#unitMs;
    const wait = (this.#last + 1) * unit - this.#o.now();
    // A caller awaits this (at most a second): the timer keeps the process alive meanwhile.
    await this.#sleep(Math.min(unit, Math.max(1, wait)), true);
    this.#later = undefined;
    if (!this.#stop.signal.aborted) this.#write(true);
  }

  /**
   * The last report, one second ahead of the previous if it fell in this
   * second (once: nothing is reported after it), and stops the interval.
   */
  close(): void {
    if (this.#stop.signal.aborted) return;
    if (this.#meters.length !== 0) this.#write(true);
    this.#stop.abort();
  }

  /**
   * What the meters did.
   *
   * @returns a fresh snapshot
   */
  stats(): MeterStats {
    return {
      meters: this.#bySeries.size,
      overflow: this.#overflow,
      reports: this.#reports,
      lines: this.#lines,
      refused: this.#refused,
    };
  }

  /**
   * Writes a report at the current timestamp; or, when the last report had it
   * (or a later one), returns false for the caller to wait, unless nothing
   * changed (then there is nothing to write) or `force` (then one past it).
   */
  #write(force: boolean): boolean {
    const now = Math.floor(this.#o.now() / this.#unitMs);
    let at = now;
    if (now <= this.#last) {
      if (!this.#changed()) return true;
      if (!force) return false;
      at = this.#last + 1;
    }
    this.#last = at;
    this.#reports++;
    let stamp: string | undefined;
    try {
      stamp = String(formatTimestamp(at)) + " ";
    } catch {
      // A clock OpenTSDB would refuse (a test's, at 0): every line of this report is.
    }
    const { sink, dropped } = this.#o;
    const emit: Emit = (line, value) => {
      let text: string;
      try {
        if (stamp === undefined) throw new RangeError("timestamp");
        text = formatValue(value);
      } catch {
        this.#refused++; // or a counter past 1.8e308: Infinity
        return;
      }
      const head = line.head;
      if (head.ts !== at) {
        head.ts = at;
        head.bytes = utf8.encode(head.text + stamp);
      }
      this.#lines++;
      const pushedOut = sink.pushLine(head.bytes, text, line.tail);
      if (pushedOut > 0) dropped(pushedOut);
    };
    for (const meter of this.#meters) reporter(meter).report(meter, emit);
    return true;
  }

  #changed(): boolean {
    for (const meter of this.#meters) if (reporter(meter).changed(meter)) return true;
    return false;
  }

  #start(): void {
    if (this.#running || this.#stop.signal.aborted) return;
    this.#running = true;
    // Nothing in a report throws (each line's refusal is counted); a bug here must still not
    // reach the host's unhandled-rejection handler: metrics never crash a service.
    this.#loop().catch(() => this.#stop.abort());
  }

  async #loop(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      await this.#sleep(this.#reportMs);
      if (!signal.aborted) await this.report();
    }
  }

  /** Sleeps on the client's clock; a real timer keeps the process alive only when `hold`. */
  #sleep(ms: number, hold = false): Promise<void> {
    const clock = this.#o.clock;
    const signal = this.#stop.signal;
    return clock ? clock.sleep(ms, signal) : sleep(ms, signal, hold ? undefined : unrefTimer);
  }
}

/**
 * A series as the encoder wrote it: the metric and the sorted tags of its line
 * (`put <metric> <ts> <value> <tags…>`), less `suffix` characters of the metric
 * (a histogram's `.count`).
 */
function seriesOf(line: string, suffix: number): string {
  const parts = line.slice(0, -1).split(" ");
  return parts[1].slice(0, parts[1].length - suffix) + " " + parts.slice(4).sort().join(" ");
}

function kindName(meter: Meter): string {
  return meter instanceof Counter ? "counter" : meter instanceof Gauge ? "gauge" : "histogram";
}
