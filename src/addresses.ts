/**
 * Which address the writer connects to next. With several TSDs, clients
 * start at different ones (so a fleet does not pile onto the first), an
 * address cools down with its own backoff after every failed connect and
 * every end of a connection (a clean close included) while the others work,
 * and a rebalance moves to another address at random.
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
  /** Its server answered a probe (and has not stalled since). */
  answers: boolean;
}

/** Why a connection ended. */
export type EndReason = "error" | "closed" | "stalled" | "rebalance" | "stop";

/** How a connection ended, as {@linkcode AddressBook.ended} weighs it. */
export interface ConnectionEnd {
  /** Why it ended. */
  reason: EndReason;
  /** How long it was open, in ms. */
  lifetimeMs: number;
  /** Whether its server answered a probe on it. */
  answered: boolean;
}

/**
 * A connection open at least this long was healthy: its end is no failure in
 * a row, and the next attempt waits only the backoff's first step.
 */
export const HEALTHY_MS = 1000;

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
 * book.ended(address, { reason: "closed", lifetimeMs: 5, answered: false });
 * console.assert(book.next().waitMs > 0); // closed at once: both cool down
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
      answers: false,
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
   * A connect to `address` failed: it cools down, for longer after each
   * failure in a row, and the next address is tried first.
   *
   * @param address the address as `next()` returned it
   */
  failed(address: Address): void {
    const entry = this.#entry(address);
    if (entry === undefined) return;
    entry.coolUntil = this.#now() + entry.backoff.next();
    this.#passOver(entry);
  }

  /**
   * A connection to `address` was opened: it is ready for the next attempt
   * (it no longer cools down). Its backoff does not start over here: only a
   * connection that proves healthy resets it (see {@linkcode AddressBook.ended}).
   *
   * @param address the address as `next()` returned it
   */
  connected(address: Address): void {
    const entry = this.#entry(address);
    if (entry !== undefined) entry.coolUntil = 0;
  }

  /**
   * A connection to `address` ended, for whatever reason: it cools down
   * before the next attempt, whatever the reason, so that attempts stay at
   * the backoff's pace. Its backoff starts again from the shortest only when
   * the connection proved healthy (its server answered a probe, or it lived
   * {@linkcode HEALTHY_MS}); a connection closed soon after it opened (an
   * overloaded server, a balancer with no backend) counts as a failure in a row.
   * A stall makes the next attempt go elsewhere, and the address must prove
   * again that it answers probes.
   *
   * @param address the address as `next()` returned it
   * @param end why the connection ended, how long it lived, whether its server answered
   */
  ended(address: Address, end: ConnectionEnd): void {
    const entry = this.#entry(address);
    if (entry === undefined) return;
    if (end.answered || end.lifetimeMs >= HEALTHY_MS) entry.backoff.reset();
    entry.coolUntil = this.#now() + entry.backoff.next();
    if (end.reason === "stalled") {
      entry.answers = false;
      this.#passOver(entry);
    }
  }

  /**
   * The server at `address` answered a probe: it is healthy (its backoff
   * starts over), and an unanswered probe there later means a stall.
   *
   * @param address the address as `next()` returned it
   */
  answered(address: Address): void {
    const entry = this.#entry(address);
    if (entry === undefined) return;
    entry.answers = true;
    entry.backoff.reset();
  }

  /**
   * Whether the server at `address` answered a probe, and has not stalled since.
   *
   * @param address the address as `next()` returned it
   * @returns true when an unanswered probe there means a stall
   */
  answers(address: Address): boolean {
    return this.#entry(address)?.answers ?? false;
  }

  /** Whether the server at any address answered probes (and has not stalled since): the fleet answers. */
  get anyAnswers(): boolean {
    return this.#entries.some((e) => e.answers);
  }

  #entry(address: Address): Entry | undefined {
    return this.#entries.find((e) => e.address === address);
  }

  /** With several addresses, the next attempt goes to the one after `entry`. */
  #passOver(entry: Entry): void {
    if (this.#entries.length > 1) this.#index = (this.#entries.indexOf(entry) + 1) % this.#entries.length;
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
