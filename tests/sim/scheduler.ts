// Virtual time for the simulation: one monotonic clock that only the simulation moves, timers
// that fire in (due, creation) order when it does, and a seeded PRNG. While a scenario runs, the
// globals the client's code reaches for (setTimeout, setInterval, their clears, Date.now,
// performance.now, Math.random) are this scheduler's, so every timer of the writer, the client
// and the spool is virtual whether or not it goes through the `clock` option; they are put back
// after the scenario.

import { setImmediate as realSetImmediate } from "node:timers";

/** A small, fast, seedable PRNG (mulberry32) with the helpers the simulation draws with. */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0 || 0x9e3779b9;
  }
  /** A number in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** One of the items. */
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
  /** A fresh 32-bit seed. */
  seed(): number {
    return Math.floor(this.next() * 4294967296) >>> 0;
  }
}

/** A virtual timer's handle: has unref()/ref() like Node's and Bun's. */
export class SimTimer {
  readonly id: number;
  due: number;
  readonly fn: () => void;
  readonly interval: number | undefined;
  readonly seq: number;
  constructor(id: number, due: number, fn: () => void, interval: number | undefined, seq: number) {
    this.id = id;
    this.due = due;
    this.fn = fn;
    this.interval = interval;
    this.seq = seq;
  }
  refed = true;
  /** The simulation's own (a simulated server's), not the client's: not a leak. */
  sim = false;
  /** Where it was made (with `Scheduler.traceTimers`). */
  origin: string | undefined;
  unref(): this {
    this.refed = false;
    return this;
  }
  ref(): this {
    this.refed = true;
    return this;
  }
  hasRef(): boolean {
    return this.refed;
  }
  [Symbol.toPrimitive](): number {
    return this.id;
  }
}

const EPOCH_MS = 1_700_000_000_000;

/** Lets every pending promise reaction run (one real macrotask: the microtask queue empties first). */
export function drainMicrotasks(): Promise<void> {
  return new Promise((resolve) => realSetImmediate(resolve));
}

export class Scheduler {
  /** Monotonic virtual ms since the scenario began. */
  mono = 0;
  /** The wall clock's offset (clock jumps move it, both ways). */
  skew = 0;
  readonly timers = new Map<number, SimTimer>();
  #nextId = 1;
  #seq = 0;
  /** Timer callbacks that threw (the runtime would report them as uncaught). */
  readonly thrown: unknown[] = [];
  #saved: Record<string, unknown> | undefined;
  readonly random: Rng;
  /** Records where each timer was made, for messages about leaks. */
  traceTimers = false;

  constructor(seed: number) {
    this.random = new Rng(seed);
  }

  /** The `clock` option of the client: wall time that can jump, elapsed time that cannot, sleeps on virtual timers. */
  readonly clock = {
    now: (): number => EPOCH_MS + this.mono + this.skew,
    monotonic: (): number => this.mono,
    sleep: (ms: number, signal: AbortSignal): Promise<void> =>
      new Promise<void>((resolve) => {
        if (signal.aborted) return resolve();
        const done = () => {
          this.clear(timer);
          signal.removeEventListener("abort", done);
          resolve();
        };
        const timer = this.set(done, ms, undefined);
        signal.addEventListener("abort", done, { once: true });
      }),
  };

  set(fn: () => void, ms: number, interval: number | undefined): SimTimer {
    const delay = Math.max(interval === undefined ? 0 : 1, Number.isFinite(ms) ? ms : 0);
    const timer = new SimTimer(
      this.#nextId++,
      this.mono + delay,
      fn,
      interval === undefined ? undefined : delay,
      this.#seq++,
    );
    if (this.traceTimers) {
      timer.origin = new Error().stack?.split("\n").find((l) => /src\//.test(l))?.trim();
    }
    this.timers.set(timer.id, timer);
    return timer;
  }

  /** A timer of the simulation itself (a server's answer, a read): never counted as the client's. */
  setSim(fn: () => void, ms: number): SimTimer {
    const t = this.set(fn, ms, undefined);
    t.sim = true;
    return t;
  }

  /** The client's timers (the simulation's own left out). */
  clientTimers(): SimTimer[] {
    return [...this.timers.values()].filter((t) => !t.sim);
  }

  clear(handle: unknown): void {
    if (handle instanceof SimTimer) this.timers.delete(handle.id);
    else if (typeof handle === "number") this.timers.delete(handle);
  }

  /** The earliest timer, if any. */
  nextTimer(): SimTimer | undefined {
    let best: SimTimer | undefined;
    for (const t of this.timers.values()) {
      if (best === undefined || t.due < best.due || (t.due === best.due && t.seq < best.seq)) best = t;
    }
    return best;
  }

  /**
   * Fires every timer due by `until` in order, letting microtasks run after each, and leaves the
   * clock at `until`. `check` runs after each firing (the invariants "at every instant").
   */
  async runUntil(until: number, check?: () => void, maxFirings = 200_000): Promise<void> {
    await drainMicrotasks();
    check?.();
    for (let fired = 0; fired < maxFirings; fired++) {
      const t = this.nextTimer();
      if (t === undefined || t.due > until) break;
      this.mono = Math.max(this.mono, t.due);
      if (t.interval !== undefined) {
        t.due += t.interval;
      } else this.timers.delete(t.id);
      try {
        t.fn();
      } catch (e) {
        this.thrown.push(e);
      }
      await drainMicrotasks();
      check?.();
    }
    this.mono = Math.max(this.mono, until);
  }

  /** Puts the virtual globals in place. */
  install(): void {
    if (this.#saved) return;
    const g = globalThis as unknown as Record<string, unknown>;
    this.#saved = {
      setTimeout: g.setTimeout,
      setInterval: g.setInterval,
      clearTimeout: g.clearTimeout,
      clearInterval: g.clearInterval,
      dateNow: Date.now,
      perfNow: performance.now,
      random: Math.random,
      emitWarning: (g.process as { emitWarning?: unknown } | undefined)?.emitWarning,
    };
    // The client's one-time warnings (a process's, not a scenario's) would fill the output.
    const proc = g.process as { emitWarning?: unknown } | undefined;
    if (proc?.emitWarning !== undefined) proc.emitWarning = () => {};
    g.setTimeout = (fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) =>
      this.set(() => fn(...args), ms ?? 0, undefined);
    g.setInterval = (fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) =>
      this.set(() => fn(...args), ms ?? 0, ms ?? 0);
    const clear = (h: unknown) => {
      if (h instanceof SimTimer) this.clear(h);
      else (this.#saved!.clearTimeout as (h: unknown) => void)(h);
    };
    g.clearTimeout = clear;
    g.clearInterval = clear;
    Date.now = () => EPOCH_MS + this.mono + this.skew;
    Object.defineProperty(performance, "now", { value: () => this.mono, configurable: true, writable: true });
    Math.random = () => this.random.next();
  }

  /** Puts the real globals back. */
  uninstall(): void {
    const s = this.#saved;
    if (!s) return;
    const g = globalThis as unknown as Record<string, unknown>;
    g.setTimeout = s.setTimeout;
    g.setInterval = s.setInterval;
    g.clearTimeout = s.clearTimeout;
    g.clearInterval = s.clearInterval;
    Date.now = s.dateNow as () => number;
    // An own property shadowed the prototype's: removing it brings the real one back.
    delete (performance as unknown as Record<string, unknown>).now;
    if (performance.now !== s.perfNow) {
      Object.defineProperty(performance, "now", { value: s.perfNow, configurable: true, writable: true });
    }
    Math.random = s.random as () => number;
    const proc = g.process as { emitWarning?: unknown } | undefined;
    if (s.emitWarning !== undefined && proc !== undefined) proc.emitWarning = s.emitWarning;
    this.#saved = undefined;
  }
}
