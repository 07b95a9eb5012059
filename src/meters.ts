/**
 * Meters: counters, gauges and histograms that aggregate in memory and are
 * written as `put` lines once per report (every `reportMs`, and on `flush()`
 * and `close()`), so that a service counts every request without sending a
 * point for each. The client's `MeterRegistry` (`src/meter_registry.ts`) makes
 * them for `client.counter()` and `client.gauge()`; `src/histogram.ts` holds
 * the histogram.
 *
 * @module
 */

import { ValidationError } from "./errors.ts";
import {
  type Emit,
  type Histogram,
  histogramChanged,
  type Line,
  notFinite,
  reportHistogram,
} from "./histogram.ts";

/** How the registry reads a kind of meter: whether it changed since its last report, and its lines. */
export interface Reporter<M> {
  /** Whether it holds anything its last report did not write. */
  changed(meter: M): boolean;
  /** Writes its lines, and remembers what it wrote. */
  report(meter: M, emit: Emit): void;
}

let counters: Reporter<Counter>;

/**
 * A counter bound to one name and tag set, from `client.counter()`. `inc()`
 * adds to a number in memory (a few nanoseconds, no allocation); each report
 * writes the total since the counter was made.
 *
 * Cumulative, not per interval: OpenTSDB's `rate` (and Grafana's "rate" on
 * it) turns a cumulative counter into a per-second figure, copes with a
 * restart (`rate` with `counter` and `dropResets`), and a lost or late report
 * loses nothing, as the next one carries every count. A per-interval value
 * would need `sum` over exactly the report interval and would lose counts
 * with every dropped line.
 *
 * @example
 * ```ts
 * import { Client, MemoryTransport } from "@x/potsdb";
 *
 * const metrics = new Client("localhost", { transport: new MemoryTransport(), hostTag: "web1" });
 * const requests = metrics.counter("http.requests", { route: "home", status: 200 });
 * requests.inc();
 * requests.inc(2);
 * console.assert(requests.value === 3);
 * await metrics.close(); // put http.requests <now> 3 route=home status=200 host=web1
 * ```
 */
export class Counter {
  readonly #name: string;
  readonly #line: Line;
  #value = 0;
  #reported = -1;

  /**
   * Made by `client.counter()`; not by hand.
   *
   * @ignore
   */
  constructor(name: string, line: Line) {
    this.#name = name;
    this.#line = line;
  }

  /**
   * Adds `n` (default 1).
   *
   * @param n a finite number >= 0: a counter only goes up
   * @throws {ValidationError} `INVALID_VALUE` for anything else; nothing changes
   */
  inc(n = 1): void {
    if (typeof n !== "number" || !(n >= 0) || n === Infinity) badIncrement(n);
    this.#value += n;
  }

  /** The total so far. */
  get value(): number {
    return this.#value;
  }

  /** The metric name of its line. */
  get name(): string {
    return this.#name;
  }

  static {
    counters = {
      changed: (c) => c.#value !== c.#reported,
      report: (c, emit) => {
        emit(c.#line, c.#value);
        c.#reported = c.#value;
      },
    };
  }
}

function badIncrement(n: unknown): never {
  if (typeof n === "number" && n < 0) {
    throw new ValidationError("INVALID_VALUE", "value", `a counter only goes up: inc(${n})`);
  }
  notFinite("an increment", n);
}

let gauges: Reporter<Gauge>;

/**
 * A gauge bound to one name and tag set, from `client.gauge()`: the last value
 * set. Each report writes it, once one was set.
 *
 * @example
 * ```ts
 * import { Client, MemoryTransport } from "@x/potsdb";
 *
 * const metrics = new Client("localhost", { transport: new MemoryTransport(), hostTag: "web1" });
 * const depth = metrics.gauge("jobs.queued", { queue: "mail" });
 * depth.set(12);
 * depth.dec();
 * console.assert(depth.value === 11);
 * await metrics.close(); // put jobs.queued <now> 11 queue=mail host=web1
 * ```
 */
export class Gauge {
  readonly #name: string;
  readonly #line: Line;
  #value = 0;
  #set = false;
  #reported = NaN;

  /**
   * Made by `client.gauge()`; not by hand.
   *
   * @ignore
   */
  constructor(name: string, line: Line) {
    this.#name = name;
    this.#line = line;
  }

  /**
   * Sets the value.
   *
   * @param value a finite number
   * @throws {ValidationError} `INVALID_VALUE` for anything else; nothing changes
   */
  set(value: number): void {
    if (typeof value !== "number" || value - value !== 0) notFinite("a gauge's value", value);
    this.#value = value;
    this.#set = true;
  }

  /**
   * Adds `n` (default 1) to the value (0 when never set).
   *
   * @param n a finite number
   * @throws {ValidationError} `INVALID_VALUE` for anything else; nothing changes
   */
  inc(n = 1): void {
    if (typeof n !== "number" || n - n !== 0) notFinite("an increment", n);
    this.#value += n;
    this.#set = true;
  }

  /**
   * Takes `n` (default 1) from the value (0 when never set).
   *
   * @param n a finite number
   * @throws {ValidationError} `INVALID_VALUE` for anything else; nothing changes
   */
  dec(n = 1): void {
    if (typeof n !== "number" || n - n !== 0) notFinite("a decrement", n);
    this.#value -= n;
    this.#set = true;
  }

  /** The value now. */
  get value(): number {
    return this.#value;
  }

  /** The metric name of its line. */
  get name(): string {
    return this.#name;
  }

  static {
    gauges = {
      changed: (g) => g.#set && g.#value !== g.#reported,
      report: (g, emit) => {
        if (!g.#set) return;
        emit(g.#line, g.#value);
        g.#reported = g.#value;
      },
    };
  }
}

const histograms: Reporter<Histogram> = { changed: histogramChanged, report: reportHistogram };

/** One of the meters. */
export type Meter = Counter | Gauge | Histogram;

/**
 * How a meter is written, by its class.
 *
 * @param meter a counter, gauge or histogram
 * @returns what reads and writes it
 */
export function reporter(meter: Meter): Reporter<Meter> {
  return (meter instanceof Counter ? counters : meter instanceof Gauge ? gauges : histograms) as Reporter<
    Meter
  >;
}
