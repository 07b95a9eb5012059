/**
 * The meters' look-up: from a name and tags as a caller passes them to the
 * meter they led to before, with no string built and nothing allocated for
 * tags given as an object. A cache: it forgets everything when it grows past
 * its limit, and the registry finds the meters again by their series.
 *
 * @module
 */

import { ValidationError } from "./errors.ts";
import type { Pairs } from "./histogram.ts";
import type { Tags, TagValue } from "./put.ts";

/** One step of the trie: the meter at this name and tags, and the next tags. */
interface Path<M> {
  meter: M | undefined;
  /** The first key seen after these tags, and its values (the common case: one shape). */
  key: string | undefined;
  values: Map<unknown, Path<M>> | undefined;
  /** Other keys. */
  next: Map<string, Map<unknown, Path<M>>> | undefined;
}

const hasOwn = Object.prototype.hasOwnProperty;

function path<M>(): Path<M> {
  return { meter: undefined, key: undefined, values: undefined, next: undefined };
}

function step<M>(node: Path<M>, key: string, value: unknown): Path<M> | undefined {
  return key === node.key ? node.values!.get(value) : node.next?.get(key)?.get(value);
}

/**
 * Raw name and tags → meter. Tags in another order are another path to the
 * same meter.
 *
 * @example
 * ```ts
 * import { MeterLookup } from "./meter_lookup.ts";
 *
 * const lookup = new MeterLookup<string>(100);
 * lookup.remember("m", [["a", 1]], "meter");
 * console.assert(lookup.find("m", { a: 1 }) === "meter" && lookup.find("m", { a: "1" }) === undefined);
 * ```
 */
export class MeterLookup<M> {
  readonly #limit: number;
  #roots = new Map<string, Path<M>>();
  #paths = 0;

  /**
   * Makes an empty look-up.
   *
   * @param limit most steps kept; past it, all are forgotten
   */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /**
   * The meter this name and tags led to before.
   *
   * @param name the metric name as passed
   * @param tags the tags as passed
   * @returns the meter, or undefined (never seen, forgotten, or tags it cannot walk without using them up)
   */
  find(name: string, tags: Tags | undefined): M | undefined {
    let node = this.#roots.get(name);
    if (node === undefined || tags === undefined || tags === null) return node?.meter;
    if (typeof tags !== "object") return undefined;
    if (typeof (tags as Iterable<unknown>)[Symbol.iterator] === "function") {
      // A one-shot iterable (a generator) would be used up here: the slow path copies it.
      if (!Array.isArray(tags) && !(tags instanceof Map)) return undefined;
      for (const pair of tags as Iterable<unknown>) {
        if (!Array.isArray(pair)) return undefined;
        node = step(node, pair[0], pair[1]);
        if (node === undefined) return undefined;
      }
      return node.meter;
    }
    const record = tags as Readonly<Record<string, TagValue>>;
    for (const key in record) {
      if (!hasOwn.call(record, key)) continue;
      node = step(node, key, record[key]);
      if (node === undefined) return undefined;
    }
    return node.meter;
  }

  /**
   * Remembers where a name and tags lead.
   *
   * @param name the metric name as passed
   * @param pairs the tags as passed, as pairs (see {@linkcode toPairs})
   * @param meter their meter
   */
  remember(name: string, pairs: Pairs, meter: M): void {
    if (this.#paths >= this.#limit) {
      this.#roots = new Map();
      this.#paths = 0;
    }
    let root = this.#roots.get(name);
    if (root === undefined) {
      root = path<M>();
      this.#roots.set(name, root);
      this.#paths++;
    }
    let node: Path<M> = root;
    for (const [key, value] of pairs) node = step(node, key, value) ?? this.#attach(node, key, value);
    node.meter = meter;
  }

  /** A new step after `node`. */
  #attach(node: Path<M>, key: string, value: unknown): Path<M> {
    const child = path<M>();
    this.#paths++;
    if (node.key === undefined) {
      node.key = key;
      node.values = new Map();
    }
    if (key === node.key) node.values!.set(value, child);
    else {
      node.next ??= new Map();
      let values = node.next.get(key);
      if (values === undefined) node.next.set(key, values = new Map());
      values.set(value, child);
    }
    return child;
  }
}

/**
 * A caller's tags as a list of pairs, in their order: a copy, so that changing
 * the object later changes nothing.
 *
 * @param tags as for `send()`
 * @returns the pairs
 * @throws {ValidationError} `INVALID_TAG` when they are not an object or an iterable of pairs
 */
export function toPairs(tags: Tags | undefined): Pairs {
  const pairs: [string, TagValue][] = [];
  if (tags === undefined || tags === null) return pairs;
  if (typeof tags !== "object") throw new ValidationError("INVALID_TAG", "tags", "tags must be an object");
  if (typeof (tags as Iterable<unknown>)[Symbol.iterator] === "function") {
    for (const pair of tags as Iterable<unknown>) {
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw new ValidationError(
          "INVALID_TAG",
          "tags",
          "tags given as an iterable must yield [key, value] pairs",
        );
      }
      pairs.push([pair[0], pair[1]]);
    }
  } else {
    const record = tags as Readonly<Record<string, TagValue>>;
    for (const key in record) if (hasOwn.call(record, key)) pairs.push([key, record[key]]);
  }
  return pairs;
}
