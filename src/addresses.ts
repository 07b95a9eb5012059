/**
 * Which address the writer connects to next. With several TSDs, clients
 * start at different ones (so a fleet does not pile onto the first), an
 * address that failed or stalled cools down with its own backoff while the
 * others work, and a rebalance moves to another address at random.
 *
 * @module
 */

import { Backoff, type BackoffOptions } from "./backoff.ts";

/** A host and port to connect to. */
export interface Address {
  /** Host name or address. */
  host: string;
  /** TCP port. */
  port: number;
}

interface Entry {
  address: Address;
  backoff: Backoff;
  /** Not tried again before this time (clock ms). */
  coolUntil: number;
}

// Clients made in one process take successive start addresses from a random base: across
// machines the base spreads them, and within one process they spread evenly.
let spread = Math.floor(Math.random() * 1_000_000);

/**
 * The writer's addresses with their cool-downs.
 *
 * @example
 * ```ts
 * import { AddressBook } from "./addresses.ts";
 *
 * let now = 0;
 * const book = new AddressBook([{ host: "a", port: 1 }, { host: "b", port: 1 }], {}, () => now);
 * const first = book.next().address;
 * book.failed(first); // cools down: the other one is next, at once
 * const { address, waitMs } = book.next();
 * console.assert(address !== first && waitMs === 0);
 * ```
 */
export class AddressBook {
  readonly #entries: Entry[];
  readonly #now: () => number;
  readonly #random: () => number;
  #index: number;

  /**
   * @param addresses where to connect
   * @param backoff how an address's cool-down grows with its failures
   * @param now the clock, in ms
   * @param random numbers in [0, 1), for the backoff's jitter and rebalancing
   */
  constructor(
    addresses: readonly Address[],
    backoff: BackoffOptions = {},
    now: () => number,
    random: () => number = Math.random,
  ) {
    this.#entries = addresses.map((address) => ({
      address,
      backoff: new Backoff(backoff, random),
      coolUntil: 0,
    }));
    this.#now = now;
    this.#random = random;
    this.#index = spread++ % addresses.length;
  }

  /**
   * The address to try now, or the one that cools down first with the wait
   * until then when all of them cool down.
   *
   * @returns the address, and how long to wait before trying it
   */
  next(): { address: Address; waitMs: number } {
    const now = this.#now();
    const n = this.#entries.length;
    let best = this.#index;
    for (let i = 0; i < n; i++) {
      const k = (this.#index + i) % n;
      if (this.#entries[k].coolUntil <= now) {
        best = k;
        break;
      }
      if (this.#entries[k].coolUntil < this.#entries[best].coolUntil) best = k;
    }
    this.#index = best;
    const entry = this.#entries[best];
    return { address: entry.address, waitMs: Math.max(0, entry.coolUntil - now) };
  }

  /**
   * A connect to `address` failed, or its connection stalled: it cools
   * down, for longer after each failure in a row.
   *
   * @param address the address as `next()` returned it
   */
  failed(address: Address): void {
    const entry = this.#entries.find((e) => e.address === address);
    if (entry === undefined) return;
    entry.coolUntil = this.#now() + entry.backoff.next();
    if (this.#entries.length > 1) this.#index = (this.#entries.indexOf(entry) + 1) % this.#entries.length;
  }

  /**
   * A connection to `address` was opened: its cool-down starts again from
   * the shortest.
   *
   * @param address the address as `next()` returned it
   */
  connected(address: Address): void {
    const entry = this.#entries.find((e) => e.address === address);
    if (entry === undefined) return;
    entry.backoff.reset();
    entry.coolUntil = 0;
  }

  /**
   * Makes `next()` return another address than `current`, chosen at random
   * among those not cooling down (a rebalance).
   *
   * @param current the address connected now
   * @returns whether there is another address to move to
   */
  moveFrom(current: Address): boolean {
    const now = this.#now();
    const others = this.#entries.filter((e) => e.address !== current && e.coolUntil <= now);
    if (others.length === 0) return false;
    const pick = others[Math.floor(this.#random() * others.length)];
    this.#index = this.#entries.indexOf(pick);
    return true;
  }
}
