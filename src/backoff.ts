/**
 * Capped exponential backoff with jitter, and a sleep that an `AbortSignal`
 * cuts short.
 *
 * @module
 */

import { OptionsError } from "./errors.ts";
import { MAX_TIMER_MS } from "./runtime.ts";

/** How reconnect delays grow. */
export interface BackoffOptions {
  /** First delay in ms. Default 100. */
  initialMs?: number;
  /** Largest delay in ms. Default 30000 (potsdb's cap). */
  maxMs?: number;
  /** Growth per failed attempt. Default 2. */
  factor?: number;
}

/**
 * Delays for successive failed attempts: `initialMs · factor^n`, capped at
 * `maxMs`, each drawn uniformly from its upper half ("equal jitter") so that
 * many clients restarted together do not reconnect in lockstep.
 *
 * @example
 * ```ts
 * import { Backoff } from "./backoff.ts";
 *
 * const backoff = new Backoff({ initialMs: 100, maxMs: 1000 }, () => 1);
 * console.assert(backoff.next() === 100);
 * console.assert(backoff.next() === 200);
 * backoff.reset();
 * console.assert(backoff.next() === 100);
 * ```
 */
export class Backoff {
  readonly #initial: number;
  readonly #max: number;
  readonly #factor: number;
  readonly #random: () => number;
  #attempt = 0;

  /**
   * Makes a backoff that starts at `initialMs`.
   *
   * @param options initial delay, cap and growth factor
   * @param random a source of numbers in [0, 1); defaults to `Math.random`
   */
  constructor(options: BackoffOptions = {}, random: () => number = Math.random) {
    this.#initial = options.initialMs ?? 100;
    this.#max = options.maxMs ?? 30_000;
    this.#factor = options.factor ?? 2;
    this.#random = random;
    if (!(this.#initial >= 0 && this.#max >= this.#initial && this.#factor >= 1)) {
      throw new OptionsError("reconnect needs 0 <= initialMs <= maxMs and factor >= 1");
    }
  }

  /** Failed attempts since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /**
   * Counts a failed attempt.
   *
   * @returns the delay before the next attempt, in ms
   */
  next(): number {
    const ceiling = Math.min(this.#max, this.#initial * this.#factor ** this.#attempt);
    this.#attempt++;
    return Math.round(ceiling / 2 + (this.#random() * ceiling) / 2);
  }

  /** Starts over after a success. */
  reset(): void {
    this.#attempt = 0;
  }
}

/**
 * Resolves after `ms`, or at once when `signal` aborts (it never rejects).
 * `onTimer` receives the timer so the caller can unref it.
 *
 * Runtimes take a delay above 2^31−1 ms as about 1 ms, so a longer wait is a
 * chain of timers of at most that length; `onTimer` receives each of them.
 *
 * @param ms how long to wait
 * @param signal cuts the wait short
 * @param onTimer called with the timer handle
 * @returns a promise that resolves when the time is up or the signal aborts
 *
 * @example
 * ```ts
 * import { sleep } from "./backoff.ts";
 *
 * const controller = new AbortController();
 * const slept = sleep(60_000, controller.signal);
 * controller.abort();
 * await slept; // at once
 * ```
 */
export function sleep(
  ms: number,
  signal?: AbortSignal,
  onTimer?: (timer: ReturnType<typeof setTimeout>) => void,
): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    let left = ms;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const arm = () => {
      const step = left > MAX_TIMER_MS ? MAX_TIMER_MS : left;
      left -= step;
      timer = setTimeout(left > 0 ? arm : done, step);
      onTimer?.(timer);
    };
    arm();
    signal?.addEventListener("abort", done, { once: true });
  });
}
