/**
 * Whether the writer holds the process open. While lines are pending it
 * does, but no longer than `lingerMs` without progress, so that a script
 * that ends without `close()` against a dead server still exits.
 *
 * @module
 */

import { unrefTimer } from "./runtime.ts";

/**
 * Decides, and re-decides on an unref'd timer, whether pending lines hold
 * the process; `onChange` refs or unrefs what the writer has open.
 *
 * @example
 * ```ts
 * import { KeepAlive } from "./keep_alive.ts";
 *
 * let pending = 1;
 * const hold = new KeepAlive(2000, () => Date.now(), () => pending > 0, () => {});
 * hold.begin();
 * console.assert(hold.held);
 * pending = 0;
 * hold.update();
 * console.assert(!hold.held);
 * ```
 */
export class KeepAlive {
  /** Whether the process is held now. */
  held = false;
  readonly #lingerMs: number;
  readonly #now: () => number;
  readonly #pending: () => boolean;
  readonly #onChange: (held: boolean) => void;
  #episode = false;
  #lastProgress = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  /**
   * @param lingerMs how long pending lines hold the process without progress
   * @param now the clock
   * @param pending whether lines are pending
   * @param onChange called when `held` changes
   */
  constructor(
    lingerMs: number,
    now: () => number,
    pending: () => boolean,
    onChange: (held: boolean) => void,
  ) {
    this.#lingerMs = lingerMs;
    this.#now = now;
    this.#pending = pending;
    this.#onChange = onChange;
  }

  /** Lines are pending: starts the linger period, unless one is running. */
  begin(): void {
    if (this.#episode) return;
    this.#episode = true;
    this.#lastProgress = this.#now();
    this.update();
  }

  /** Lines were written (or a connection opened): the linger period starts again. */
  progress(): void {
    this.#lastProgress = this.#now();
  }

  /** Holds while lines are pending and the last progress is less than lingerMs ago. */
  update(): void {
    if (this.#stopped) return; // a late callback after the writer stopped arms nothing
    const pending = this.#pending();
    if (!pending) this.#episode = false;
    const left = this.#lingerMs - (this.#now() - this.#lastProgress);
    const hold = pending && left > 0;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (hold) {
      this.#timer = setTimeout(() => this.update(), left + 1);
      unrefTimer(this.#timer);
    }
    if (hold === this.held) return;
    this.held = hold;
    this.#onChange(hold);
  }

  /** Stops re-checking, for good. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
