/**
 * A token bucket for the metrics-per-second limit.
 *
 * @module
 */

/**
 * Tokens refill at `rate` per second up to `burst`; each metric written takes
 * one. The clock is injectable so tests need no wall time; when it steps
 * back, the bucket measures from the new time and keeps its rate.
 *
 * @example
 * ```ts
 * import { TokenBucket } from "./rate_limit.ts";
 *
 * let now = 0;
 * const bucket = new TokenBucket(100, 100, () => now);
 * console.assert(bucket.take(150) === 100); // a second's worth up front
 * now += 500;
 * console.assert(bucket.take(100) === 50); // then 100 per second
 * console.assert(bucket.msUntil(10) === 100);
 * ```
 */
export class TokenBucket {
  /** Tokens added per second. */
  readonly rate: number;
  /** Most tokens held at once. */
  readonly burst: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  /**
   * Makes a full bucket.
   *
   * @param rate tokens per second (> 0)
   * @param burst most tokens held; defaults to one second's worth
   * @param now the clock in milliseconds; defaults to `performance.now`
   */
  constructor(rate: number, burst: number = rate, now: () => number = () => performance.now()) {
    if (!(rate > 0) || !(burst >= 1)) {
      throw new RangeError(`rate must be > 0 and burst >= 1, got ${rate} and ${burst}`);
    }
    this.rate = rate;
    this.burst = burst;
    this.#now = now;
    this.#tokens = burst;
    this.#last = now();
  }

  #refill(): void {
    const now = this.#now();
    const elapsed = now - this.#last;
    if (elapsed > 0) {
      this.#tokens = Math.min(this.burst, this.#tokens + (elapsed * this.rate) / 1000);
      this.#last = now;
    } else if (elapsed < 0) {
      // The clock stepped back (an injected wall clock, a VM resumed): measure from
      // here, adding nothing, rather than waiting for it to pass its old value.
      this.#last = now;
    }
  }

  /** Whole tokens available now. */
  available(): number {
    this.#refill();
    return Math.floor(this.#tokens);
  }

  /**
   * Takes up to `n` whole tokens.
   *
   * @param n tokens wanted
   * @returns tokens granted, 0..n
   */
  take(n: number): number {
    this.#refill();
    const granted = Math.max(0, Math.min(n, Math.floor(this.#tokens)));
    this.#tokens -= granted;
    return granted;
  }

  /**
   * Returns unused tokens (a batch that was taken but not written).
   *
   * @param n tokens to give back
   */
  giveBack(n: number): void {
    this.#tokens = Math.min(this.burst, this.#tokens + n);
  }

  /**
   * Milliseconds until `n` tokens (at most `burst`) are available.
   *
   * @param n tokens wanted
   * @returns 0 when they are available now
   */
  msUntil(n: number): number {
    this.#refill();
    const missing = Math.min(n, this.burst) - this.#tokens;
    return missing <= 0 ? 0 : Math.ceil((missing * 1000) / this.rate);
  }
}
