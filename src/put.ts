/**
 * The OpenTSDB `put` grammar: the one place that knows what a valid line is.
 *
 * `put <metric> <timestamp> <value> <tagk>=<tagv>[ <tagk>=<tagv>…]\n`
 *
 * Rules (OpenTSDB 2.x, see `Tags.validateString`, `TSDB.checkTimestampAndTags`):
 * - metric, tag keys and tag values are non-empty and made of `a-z A-Z 0-9 - _ . /`
 *   or Unicode letters of the Basic Multilingual Plane (Java's `Character.isLetter`
 *   on each UTF-16 unit: `é` yes; `٣`, a combining accent or a letter outside the
 *   BMP no — `isLetterOrDigit` was OpenTSDB 1.x, which had no `-`);
 * - 1 to `maxTags` (default 8) tags with unique keys;
 * - the timestamp is an integer from 1: ≤ 4294967295 is seconds, 13 digits are
 *   milliseconds (the telnet `put` refuses 0 as "invalid timestamp"). OpenTSDB
 *   reads 10 to 12 digits above 4294967295 as milliseconds of 1970-2001: never
 *   what a caller means, so they are refused as ambiguous, and so is a fraction
 *   (it would be cut off);
 * - integer values have at most 19 digits (int64); a float must contain `.`
 *   or `e`; NaN and ±Infinity are rejected;
 * - a line is at most 1023 bytes before its newline, or the server drops the
 *   connection.
 *
 * @module
 */

import { ValidationError } from "./errors.ts";
import { type LineSink, utf8Length } from "./queue.ts";

/** A metric value: a finite number, or a bigint within int64. */
export type Value = number | bigint;

/** A tag value as accepted by `send()`: anything else than a string is stringified. */
export type TagValue = string | number | bigint | boolean;

/**
 * Tags of one point: a plain object such as `{ cpu: "0", dc: "eu" }` (its own
 * enumerable string keys; inherited properties are never tags), or a `Map` or
 * any other iterable of `[key, value]` pairs, such as
 * `new Map([["cpu", "0"]])` or `Object.entries(tags)`.
 */
export type Tags =
  | Readonly<Record<string, TagValue>>
  | ReadonlyMap<string, TagValue>
  | Iterable<readonly [string, TagValue]>;

/** A point's time: seconds or milliseconds since the epoch, or a `Date`. */
export type Timestamp = number | Date;

/** Largest timestamp read as seconds; from {@linkcode MIN_MILLISECONDS} on, milliseconds. */
export const MAX_SECONDS = 4294967295;
/** Smallest number timestamp read as milliseconds (13 digits); between it and `MAX_SECONDS`, ambiguous. */
export const MIN_MILLISECONDS = 1000000000000;
/** Largest timestamp OpenTSDB accepts (13 digits of milliseconds). */
export const MAX_MILLISECONDS = 9999999999999;
/** Longest line in bytes, without its newline: the server's frame limit is 1024. */
export const MAX_LINE_BYTES = 1023;
/** OpenTSDB's default `tsd.storage.max_tags`. */
export const DEFAULT_MAX_TAGS = 8;

const INT64_LIMIT = 2 ** 63;
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();
const EMPTY = new Uint8Array(0);
const BIG_INT64_MIN = -(2n ** 63n);
const BIG_INT64_MAX = 2n ** 63n - 1n;

const hasOwn = Object.prototype.hasOwnProperty;
const ASCII_NAME = /^[A-Za-z0-9._\/-]+$/;
const UNICODE_NAME = /^[A-Za-z0-9._\/\-\p{L}]+$/u;
const SURROGATE = /[\uD800-\uDFFF]/;
const INVALID_CHAR = /[^A-Za-z0-9._\/\-\p{L}]|[\u{10000}-\u{10FFFF}]/gu;

/**
 * Whether `s` is a valid metric name, tag key or tag value for OpenTSDB.
 *
 * @param s the candidate
 * @returns true when every character is allowed and `s` is not empty
 *
 * @example
 * ```ts
 * import { isValidName } from "@x/potsdb";
 *
 * console.assert(isValidName("sys.cpu.user"));
 * console.assert(!isValidName("has space"));
 * ```
 */
export function isValidName(s: string): boolean {
  return ASCII_NAME.test(s) || (UNICODE_NAME.test(s) && !SURROGATE.test(s));
}

/**
 * Replaces every character OpenTSDB would reject with `_` (like Telegraf's
 * OpenTSDB output does). May return an empty string.
 *
 * @param s any string
 * @returns `s` with only allowed characters
 *
 * @example
 * ```ts
 * import { sanitizeName } from "@x/potsdb";
 *
 * console.assert(sanitizeName("a b=c\n") === "a_b_c_");
 * ```
 */
export function sanitizeName(s: string): string {
  return isValidName(s) ? s : s.replace(INVALID_CHAR, "_");
}

/**
 * Formats a value so that OpenTSDB reads it as the number it is: integers
 * within int64 as integers, integral numbers beyond int64 in exponent form
 * (a 20-digit integer would be rejected), everything else as JavaScript's
 * shortest round-trip form, which always contains `.` or `e`.
 *
 * @param value a finite number or a bigint within int64
 * @returns the value as it goes on the wire
 * @throws {ValidationError} `INVALID_VALUE` for NaN, ±Infinity, a bigint
 * outside int64, or anything that is not a number or bigint
 *
 * @example
 * ```ts
 * import { formatValue } from "@x/potsdb";
 *
 * console.assert(formatValue(42) === "42");
 * console.assert(formatValue(0.5) === "0.5");
 * console.assert(formatValue(1e20) === "1e+20");
 * console.assert(formatValue(2n ** 62n) === "4611686018427387904");
 * ```
 */
export function formatValue(value: Value): string {
  if (typeof value === "number") {
    if (Number.isInteger(value)) {
      // -0 comes out as "0": OpenTSDB has no negative zero for integers.
      return value < INT64_LIMIT && value > -INT64_LIMIT ? String(value) : value.toExponential();
    }
    // The same text as String(value), but String() puts each result in V8's number-to-string
    // cache, where it lives long enough to be promoted: every distinct float sent would
    // become old-generation garbage. JSON.stringify leaves no trace.
    if (Number.isFinite(value)) return JSON.stringify(value);
    throw new ValidationError("INVALID_VALUE", "value", `value must be finite, got ${value}`);
  }
  if (typeof value === "bigint") {
    if (value >= BIG_INT64_MIN && value <= BIG_INT64_MAX) return String(value);
    throw new ValidationError("INVALID_VALUE", "value", `bigint value ${value} is outside int64`);
  }
  throw new ValidationError(
    "INVALID_VALUE",
    "value",
    `value must be a number or a bigint, got ${typeof value}`,
  );
}

// The decimals `fixedPoint` finds: at most MAX_POINT digits after the point, and with
// MAX_POINT digits after it, less than DECIMAL_LIMIT in magnitude.
const MAX_POINT = 6;
const SCALE = 1e6; // 10 ** MAX_POINT
const POW10 = [1, 10, 100, 1000, 10000, 100000, 1000000];
const DECIMAL_LIMIT = 2 ** 49;
/** The longest text of such a decimal: `-`, 15 digits (2 ** 49 has 16, and is excluded) and `.`. */
const MAX_DECIMAL_LENGTH = 17;

/**
 * The number of digits after the decimal point with which `formatValue` writes
 * `x`, when that text is a short decimal: 0 for an integer below 2 ** 49 in
 * magnitude, 1 to 6 for a fraction such as 0.5 or 12.375 that is below 2 ** 49
 * times 10 ** -6 (~5.6e8) in magnitude; else -1 (`formatValue` it is). Then
 * `Math.round(x * 10 ** k)` is the decimal's digits.
 *
 * Why it is the same text. Let D be a decimal with at most 6 digits after the point
 * that reads back as x (|D − x| ≤ half an ulp of x), and N = D × 10^6, an integer.
 * With |x × 10^6| < 2^49, x × 10^6 is within 2^-3 of N, and its rounding to a double
 * within 2^-4 more, so `Math.round` of the product is N. N and 10^6 are exact
 * doubles, so `N / 10^6` is D correctly rounded: it equals x exactly when D reads
 * back as x, and then no other such D exists (10^-6 is more than an ulp of x). With
 * N's trailing zeros cut, D has the fewest digits after the point of any decimal
 * that reads back as x, which is JavaScript's shortest round-trip form in fixed
 * notation (used from 1e-7 up to 1e21), and `Math.round(x * 10^k)` is D × 10^k by
 * the same argument. tests/put_test.ts checks it against `JSON.stringify`.
 */
function fixedPoint(x: number): number {
  if (Number.isInteger(x)) return x < DECIMAL_LIMIT && x > -DECIMAL_LIMIT ? 0 : -1;
  // A value with more digits after the point (a mean, a ratio) is turned away at the cost
  // of a multiplication: x × 10^6 of a short decimal is within 2^-52 of its own size from
  // N (see above), which a value with digits beyond the sixth almost never is. (The test
  // fails NaN and ±Infinity too.)
  const y = x * SCALE;
  const n = Math.round(y);
  if (!(Math.abs(y - n) <= Math.abs(y) * 2 ** -50 && n < DECIMAL_LIMIT && n > -DECIMAL_LIMIT)) return -1;
  // The fewest digits after the point that read back as x.
  for (let k = 1; k < MAX_POINT; k++) {
    const p = POW10[k];
    if (Math.round(x * p) / p === x) return k;
  }
  return n / SCALE === x ? MAX_POINT : -1;
}

/** Throws what `formatValue` would for a value it refuses; cheap for the others. */
function checkValue(value: Value): void {
  if (
    typeof value === "number"
      ? value - value === 0
      : typeof value === "bigint" && value >= BIG_INT64_MIN && value <= BIG_INT64_MAX
  ) {
    return;
  }
  formatValue(value);
}

/**
 * Turns a caller's timestamp into the integer OpenTSDB expects.
 *
 * A number is a whole number of seconds from 1 to 4294967295, or of
 * milliseconds with 13 digits (1000000000000 to 9999999999999). Anything
 * else is refused rather than guessed at: a fraction (it would be cut off),
 * and 10 to 12 digits above 4294967295, which OpenTSDB would read as
 * milliseconds of 1970-2001 (a timestamp in deciseconds or with a digit lost,
 * most likely). A `Date` becomes seconds, or milliseconds when
 * `milliseconds` is true, and is refused where the server would read it the
 * other way: after 2106 in seconds, in the first 50 days of 1970 in milliseconds.
 *
 * @param ts seconds, milliseconds or a Date
 * @param milliseconds whether a Date keeps its milliseconds
 * @returns the timestamp as written on the wire
 * @throws {ValidationError} `INVALID_TIMESTAMP` when it is not positive, too large, ambiguous,
 * fractional or not a number
 *
 * @example
 * ```ts
 * import { formatTimestamp } from "@x/potsdb";
 *
 * console.assert(formatTimestamp(1700000000) === 1700000000);
 * console.assert(formatTimestamp(1700000000500) === 1700000000500);
 * console.assert(formatTimestamp(new Date(1700000000500)) === 1700000000);
 * console.assert(formatTimestamp(new Date(1700000000500), true) === 1700000000500);
 * ```
 */
export function formatTimestamp(ts: Timestamp, milliseconds = false): number {
  let n: number;
  if (typeof ts === "number") {
    n = ts;
    if (!Number.isInteger(n) && Number.isFinite(n)) {
      throw new ValidationError(
        "INVALID_TIMESTAMP",
        "timestamp",
        `timestamp ${ts} is not a whole number: pass whole seconds (Math.floor(Date.now() / 1000)), ` +
          "13-digit milliseconds, or a Date",
      );
    }
    if (n > MAX_SECONDS && n < MIN_MILLISECONDS) {
      throw new ValidationError(
        "INVALID_TIMESTAMP",
        "timestamp",
        `timestamp ${ts} is ambiguous: seconds go up to ${MAX_SECONDS} and milliseconds have 13 digits ` +
          "(OpenTSDB would read it as milliseconds of 1970-2001); pass seconds, 13-digit milliseconds, or a Date",
      );
    }
  } else if (ts instanceof Date) {
    const ms = ts.getTime();
    n = milliseconds ? ms : Math.floor(ms / 1000);
    // The server tells seconds from milliseconds by size alone: a Date must land on its side.
    if (milliseconds ? n >= 1 && n <= MAX_SECONDS : n > MAX_SECONDS && n <= MAX_MILLISECONDS) {
      throw new ValidationError(
        "INVALID_TIMESTAMP",
        "timestamp",
        milliseconds
          ? `timestamp ${ts.toISOString()} in milliseconds is ${n}, which OpenTSDB reads as seconds`
          : `timestamp ${ts.toISOString()} is after 2106-02-07: in seconds it is more than ${MAX_SECONDS}, ` +
            "which OpenTSDB reads as milliseconds; use the milliseconds option",
      );
    }
  } else {
    throw new ValidationError(
      "INVALID_TIMESTAMP",
      "timestamp",
      `timestamp must be a number or a Date, got ${typeof ts}`,
    );
  }
  if (n >= 1 && n <= MAX_MILLISECONDS) return n;
  throw new ValidationError(
    "INVALID_TIMESTAMP",
    "timestamp",
    `timestamp ${String(ts)} is outside 1..${MAX_MILLISECONDS}`,
  );
}

/** How a {@linkcode PutEncoder} builds lines. */
export interface EncoderOptions {
  /** Most tags per point, host tag included. Default 8. */
  maxTags?: number;
  /** Replace invalid characters with `_` and drop empty tags instead of throwing. */
  sanitize?: boolean;
  /** A `host` tag added to points whose tags have none. */
  host?: string;
  /** Default timestamps (and Dates) in milliseconds rather than seconds. */
  milliseconds?: boolean;
  /**
   * Tags added to every point that has no tag of the same key (the point's own
   * tags win), after its own tags and before the host tag. They count towards
   * `maxTags`; `host` is not one of them (see `host`).
   */
  tags?: Readonly<Record<string, TagValue>>;
  /** Prepended to every metric name as it is (write the separator: `"myapp."`). */
  prefix?: string;
  /**
   * Used by the client: `encodeTo` skips a point whose metric, timestamp and
   * tags (in the same order, host and default tags included) it already took
   * for that metric's latest timestamp, and returns -1. `encode` is not affected.
   */
  dedup?: boolean;
}

// Names seen valid recently: validating a name is a regex test, a lookup is cheaper
// for the few distinct names a service sends. Cleared when full, so memory is bounded.
const CACHE_LIMIT = 4096;
// Tag sets seen recently, as a trie of (key, value) steps. Most points of a service
// repeat a few tag sets, so their text, count and checks are worked out once. Cleared
// when it holds this many steps, so memory stays bounded with high-cardinality tags.
const TAG_CACHE_LIMIT = 16384;
// Most values remembered for one key after one tag prefix. A key that takes more (a
// request id, a user id) is high-cardinality: its values are forgotten, and from then on
// its values and the tags after them are validated and written without being looked up or
// remembered, so that a stream of values never seen before neither churns the trie nor
// leaves promoted garbage behind.
const VALUES_LIMIT = 1024;
// Most (metric, tag set) pairs the duplicate check remembers at a time, over all metrics.
// Past it, it forgets them all and starts over.
const DEDUP_LIMIT = 16384;

/** A metric seen valid, with the start of its line for the last timestamp used. */
interface MetricEntry {
  /** The name as written (sanitised when sanitising). */
  name: string;
  /** The timestamp `head` was built for. */
  ts: number;
  /** `put <name> <ts> ` */
  head: string;
  /** `head` as UTF-8. */
  headBytes: Uint8Array;
  /** For the duplicate check: the tag sets taken at `seenTs`, by their line's end. */
  seen: Set<string> | undefined;
  /**
   * The timestamp `seen` holds: the latest one of a point taken. Not `ts`, which a point
   * that fails validation may already have moved: a refused point must not move the window.
   */
  seenTs: number;
}

/** One step of the tag-set trie: the tags seen so far in this order, validated. */
interface TagNode {
  /** ` k=v k=v…` for the tags up to here. */
  text: string;
  /** How many tags `text` holds. */
  count: number;
  /** Whether one of them is `host`. */
  hasHost: boolean;
  /** The first key seen after these tags, and its next steps by raw value (the common case: one shape). */
  key: string | undefined;
  values: Map<TagValue, TagNode> | undefined;
  /** The value of `key` looked up last, and its step (a one-entry cache in front of `values`). */
  lastRaw: TagValue | undefined;
  lastChild: TagNode | undefined;
  /** Next steps for other keys, by raw key then raw value. */
  next: Map<string, Map<TagValue, TagNode>> | undefined;
  /** `text`, the encoder's host tag if needed, and the newline; built on first use. */
  end: string | undefined;
  /** `end` as UTF-8. */
  endBytes: Uint8Array | undefined;
  /**
   * Not in the trie: a point's tags from the first high-cardinality value on. One such
   * node per point, extended in place; `text` is then its cached base's, `end` unset.
   */
  transient: boolean;
  /** For a transient node: the keys and values after `text`, as given (sanitised). */
  pairs: string[] | undefined;
  /**
   * Keys that took more than `VALUES_LIMIT` values after this node: their values are
   * neither looked up nor remembered any more. Looking up a string never seen before
   * costs its hash, ~400 ns on Deno; each such value would be one.
   */
  wild: string[] | undefined;
  /** For a node that transient ones extend, and for them: that node's `text` as UTF-8. */
  textBytes: Uint8Array | undefined;
}

/**
 * Concatenates into one flat string. `+` would make a rope; pieces that are
 * cached and reused in every line are cheaper to copy into a batch when flat.
 */
function flat(...parts: string[]): string {
  return parts.join("");
}

/**
 * `s` as UTF-8 in a buffer of its own. `TextEncoder.encode` would do, but costs
 * ~1 µs a call on Deno; sizing the buffer and `encodeInto` costs a tenth of that.
 */
function toUtf8(s: string): Uint8Array {
  const out = new Uint8Array(utf8Length(s));
  utf8.encodeInto(s, out);
  return out;
}

function tagNode(text: string, count: number, hasHost: boolean): TagNode {
  return {
    text,
    count,
    hasHost,
    key: undefined,
    values: undefined,
    lastRaw: undefined,
    lastChild: undefined,
    next: undefined,
    end: undefined,
    endBytes: undefined,
    transient: false,
    wild: undefined,
    pairs: undefined,
    textBytes: undefined,
  };
}

/**
 * The same shape from an allocation site of its own: V8 pretenures a site whose
 * objects tend to survive (the cached nodes do), and a high-cardinality stream of
 * nodes made there would then be old-generation garbage, each one.
 */
function transientNode(base: TagNode): TagNode {
  return {
    text: base.text,
    count: base.count,
    hasHost: base.hasHost,
    key: undefined,
    values: undefined,
    lastRaw: undefined,
    lastChild: undefined,
    next: undefined,
    end: undefined,
    endBytes: undefined,
    transient: true,
    wild: undefined,
    pairs: [] as string[],
    textBytes: base.textBytes,
  };
}

/** Whether `key` is one of the keys (even places) of `pairs`. */
function keyAt(pairs: readonly string[], key: string): boolean {
  for (let i = 0; i < pairs.length; i += 2) if (pairs[i] === key) return true;
  return false;
}

/** Writes ASCII `s` at `at` in `buf` (or as UTF-8 when it is not ASCII); returns the offset after it. */
function put(buf: Uint8Array, at: number, s: string): number {
  const n = s.length;
  if (at + n * 3 > buf.length) return -1;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return at - i + utf8.encodeInto(s, buf.subarray(at - i)).written;
    buf[at++] = c;
  }
  return at;
}

/**
 * Validates points and builds their `put` lines. Used by the client on every
 * `send()`; usable alone to pre-format lines.
 *
 * @example
 * ```ts
 * import { PutEncoder } from "@x/potsdb";
 *
 * const encoder = new PutEncoder({ host: "web1" });
 * const line = encoder.encode("sys.cpu.user", 42.5, { cpu: "0" }, 1700000000);
 * console.assert(line === "put sys.cpu.user 1700000000 42.5 cpu=0 host=web1\n");
 * ```
 */
export class PutEncoder {
  readonly #maxTags: number;
  readonly #sanitize: boolean;
  readonly #hostPart: string;
  readonly #hostBytes: Uint8Array;
  readonly #milliseconds: boolean;
  readonly #prefix: string;
  /** The default tags: each key's needle (` k=`), its text (` k=v`), and its key. */
  readonly #defaults: [needle: string, text: string, key: string][] = [];
  readonly #dedup: boolean;
  /** Entries in all metrics' `seen` sets. */
  #seenSize = 0;
  /** Where a high-cardinality line's end is encoded; the queue copies it. */
  readonly #scratch = new Uint8Array(4096);
  readonly #views: Uint8Array[] = [];
  #valid = new Set<string>();
  #needles = new Map<string, string>();
  #metrics = new Map<string, MetricEntry>();
  #tagRoot: TagNode = tagNode("", 0, false);
  #tagSteps = 0;
  // What #prepare worked out for the point being encoded.
  #entry: MetricEntry | undefined;
  #node: TagNode | undefined;

  /**
   * Makes an encoder.
   *
   * @param options tag limit, sanitising, host tag, default tags, metric prefix and timestamp precision
   * @throws {ValidationError} for a host tag, default tag or prefix OpenTSDB would reject (sanitised
   * first when sanitising), a `host` default tag, or more default tags (host tag included) than `maxTags`
   */
  constructor(options: EncoderOptions = {}) {
    this.#maxTags = options.maxTags ?? DEFAULT_MAX_TAGS;
    this.#sanitize = options.sanitize ?? false;
    this.#milliseconds = options.milliseconds ?? false;
    this.#dedup = options.dedup ?? false;
    const host = options.host;
    if (host !== undefined) {
      const clean = this.#name(host, "host tag", "INVALID_TAG");
      if (clean === "") throw new ValidationError("INVALID_TAG", "host tag", "host tag is empty");
      this.#hostPart = " host=" + clean;
    } else this.#hostPart = "";
    this.#hostBytes = toUtf8(this.#hostPart);
    const prefix = options.prefix ?? "";
    if (typeof prefix !== "string") {
      throw new ValidationError("INVALID_METRIC", "prefix", `prefix must be a string, got ${typeof prefix}`);
    }
    this.#prefix = prefix === "" ? "" : this.#name(prefix, "prefix", "INVALID_METRIC");
    if (options.tags !== undefined) this.#defaultTags(options.tags);
  }

  /** Checks the default tags once, and keeps each as the text it adds to a line. */
  #defaultTags(tags: Readonly<Record<string, TagValue>>): void {
    if (tags === null || typeof tags !== "object" || Array.isArray(tags)) {
      throw new ValidationError("INVALID_TAG", "tags", "default tags must be a plain object");
    }
    const seen = new Set<string>();
    for (const key of Object.keys(tags)) {
      const k = this.#name(key, "default tag key", "INVALID_TAG");
      const v = this.#name(tagString(tags[key], key), "default tag value", "INVALID_TAG");
      if (k === "" || v === "") {
        throw new ValidationError("INVALID_TAG", "tags", `default tag ${JSON.stringify(key)} is empty`);
      }
      if (k === "host") {
        throw new ValidationError("INVALID_TAG", "tags", 'a default tag cannot be "host": use the host tag');
      }
      if (seen.has(k)) {
        throw new ValidationError(
          "INVALID_TAG",
          "tags",
          `default tag ${JSON.stringify(key)} sanitises to a key already present`,
        );
      }
      seen.add(k);
      this.#defaults.push([" " + k + "=", flat(" ", k, "=", v), k]);
    }
    const count = this.#defaults.length + (this.#hostPart === "" ? 0 : 1);
    if (count > this.#maxTags) {
      throw new ValidationError(
        "INVALID_TAG",
        "tags",
        `${count} default tags (host tag included) is more than maxTags (${this.#maxTags})`,
      );
    }
  }

  /**
   * Builds the line for one point.
   *
   * @param metric the metric name
   * @param value the value
   * @param tags the tags; a `host` tag here wins over the encoder's
   * @param timestamp the point's time; defaults to `now`
   * @param now the current time in milliseconds (for the default timestamp; read
   * from `Date.now()` when omitted and needed)
   * @returns the line, newline included
   * @throws {ValidationError} for anything OpenTSDB would reject
   */
  encode(
    metric: string,
    value: Value,
    tags: Tags | undefined,
    timestamp?: Timestamp,
    now?: number,
  ): string {
    this.#prepare(metric, value, tags, timestamp, now);
    const valueText = this.#valueText(value);
    const node = this.#node!;
    return this.#entry!.head + valueText + (node.end ?? utf8Decoder.decode(node.endBytes));
  }

  /**
   * Builds the line for one point into `sink` as bytes, without making a
   * string of it: what the client does on every `send()`. Nothing reaches
   * `sink` when the point is invalid. The client's fast path, hidden from the
   * docs: its `sink` type is internal.
   *
   * @ignore
   *
   * @param sink where the line goes (a `DropOldestQueue`, or the client's writer)
   * @param metric the metric name
   * @param value the value
   * @param tags the tags; a `host` tag here wins over the encoder's
   * @param timestamp the point's time; defaults to `now`
   * @param now the current time in milliseconds, as for {@linkcode PutEncoder.encode}
   * @param dedup false to skip the duplicate check for this point (the client's own metrics)
   * @returns what `sink.pushLine` returned (1 when it dropped its oldest line), or -1 for a
   * duplicate (with the `dedup` option), which never reaches `sink`
   * @throws {ValidationError} for anything OpenTSDB would reject
   *
   * @example
   * ```ts
   * import { PutEncoder } from "./put.ts";
   * import { DropOldestQueue } from "./queue.ts";
   *
   * const queue = new DropOldestQueue(100);
   * new PutEncoder().encodeTo(queue, "sys.cpu.user", 42, { cpu: "0" }, 1700000000);
   * const batch = queue.take(100, 65536)!;
   * console.assert(new TextDecoder().decode(batch.data) === "put sys.cpu.user 1700000000 42 cpu=0\n");
   * ```
   */
  encodeTo(
    sink: LineSink,
    metric: string,
    value: Value,
    tags: Tags | undefined,
    timestamp?: Timestamp,
    now?: number,
    dedup = true,
  ): number {
    this.#prepare(metric, value, tags, timestamp, now);
    const entry = this.#entry!;
    const node = this.#node!;
    // A tag set with a high-cardinality value is not checked: its points are distinct by
    // nature, and remembering each would cost memory and time on every one.
    const check = this.#dedup && dedup && !node.transient;
    // A repeat is dropped before its value is formatted: a float's text costs more than the
    // rest of the check, and a handler that sends per request repeats itself all second.
    if (check && entry.seenTs === entry.ts && entry.seen?.has(node.end!) === true) return -1;
    const head = entry.headBytes;
    const tail = node.endBytes!;
    // A short decimal (an integer, 0.5, 12.25) is written as digits straight into the queue:
    // making its string costs more than the rest of the line. The same text either way.
    const point = typeof value === "number" ? fixedPoint(value) : -1;
    if (point !== -1 && head.length + MAX_DECIMAL_LENGTH + tail.length - 1 <= MAX_LINE_BYTES) {
      if (check) this.#duplicate(entry, node);
      return sink.pushDecimalLine(
        head,
        point === 0 ? value as number : Math.round(value as number * POW10[point]),
        point,
        tail,
      );
    }
    const valueText = this.#valueText(value);
    if (check) this.#duplicate(entry, node); // remembered once it is sure to be taken
    return sink.pushLine(head, valueText, tail);
  }

  /** Whether `node`'s tag set was taken for `entry` at its timestamp; remembers it if not. */
  #duplicate(entry: MetricEntry, node: TagNode): boolean {
    // The line's end names the tag set as written: tags in the caller's order, then the
    // default tags and the host tag. The metric and timestamp are the entry's.
    const key = node.end!;
    let seen = entry.seen;
    if (seen === undefined) seen = entry.seen = new Set();
    else if (entry.seenTs !== entry.ts && seen.size !== 0) {
      // The duplicate check holds the latest timestamp only, as potsdb's does.
      this.#seenSize -= seen.size;
      seen.clear();
    }
    entry.seenTs = entry.ts;
    const size = seen.size;
    seen.add(key);
    if (seen.size === size) return true;
    if (++this.#seenSize > DEDUP_LIMIT) {
      // Forget every metric's set: bounded memory over a check that misses some repeats.
      for (const e of this.#metrics.values()) e.seen = undefined;
      this.#seenSize = 0;
    }
    return false;
  }

  /** The default tags' keys as written on the wire (sanitised when sanitising), for the client. @ignore */
  get defaultTagKeys(): string[] {
    return this.#defaults.map(([, , key]) => key);
  }

  /** How many (metric, tag set) pairs the duplicate check holds now (tests). @ignore */
  get dedupSize(): number {
    return this.#seenSize;
  }

  /**
   * Validates a point; leaves its metric entry and tag node in `#entry` and
   * `#node` (their line parts built). The value is checked, not formatted:
   * `#valueText` does that once the point is taken.
   */
  #prepare(
    metric: string,
    value: Value,
    tags: Tags | undefined,
    timestamp: Timestamp | undefined,
    now: number | undefined,
  ): void {
    let entry = this.#metrics.get(metric);
    if (entry === undefined) entry = this.#metric(metric);
    let ts: number;
    if (timestamp === undefined) {
      const ms = now ?? Date.now();
      ts = this.#milliseconds ? Math.floor(ms) : Math.floor(ms / 1000);
    } else ts = formatTimestamp(timestamp, this.#milliseconds);
    // Points of one metric mostly share a timestamp (the same second): reuse the line's start.
    if (entry.ts !== ts) {
      entry.ts = ts;
      entry.head = flat("put ", entry.name, " ", String(ts), " ");
      entry.headBytes = toUtf8(entry.head);
    }
    checkValue(value);
    let node = this.#tagRoot;
    if (tags !== undefined && tags !== null) {
      if (typeof tags !== "object") {
        throw new ValidationError("INVALID_TAG", "tags", "tags must be an object");
      }
      if (typeof (tags as Iterable<unknown>)[Symbol.iterator] === "function") {
        node = this.#pairs(node, tags as Iterable<unknown>);
      } else {
        const record = tags as Readonly<Record<string, TagValue>>;
        for (const key in record) {
          // for…in also yields inherited enumerable keys (Object.create(proto), a polluted
          // Object.prototype): only own properties are tags.
          if (!hasOwn.call(record, key)) continue;
          node = this.#child(node, key, record[key]);
        }
      }
    }
    if (node.endBytes === undefined) this.#end(node);
    this.#entry = entry;
    this.#node = node;
  }

  /** The value's text for the line `#prepare` worked out, whose length it checks. */
  #valueText(value: Value): string {
    const valueText = formatValue(value);
    // The value is ASCII: the line's size in bytes is known without encoding it.
    const bytes = this.#entry!.headBytes.length + valueText.length + this.#node!.endBytes!.length - 1;
    if (bytes > MAX_LINE_BYTES) {
      throw new ValidationError(
        "LINE_TOO_LONG",
        "line",
        `line is ${bytes} bytes, more than ${MAX_LINE_BYTES}`,
      );
    }
    return valueText;
  }

  /** The step after `node` for one tag: from the cache, or validated and remembered. */
  #child(node: TagNode, key: string, raw: TagValue): TagNode {
    if (node.wild !== undefined && node.wild.includes(key)) {
      return this.#transientStep(node.transient ? node : this.#transient(node), key, raw);
    }
    let child: TagNode | undefined;
    if (key === node.key) {
      // Most tags repeat their last value (a host, a region): one compare, no lookup.
      if (raw === node.lastRaw) child = node.lastChild;
      else {
        child = node.values!.get(raw);
        node.lastRaw = raw;
        node.lastChild = child;
      }
    } else child = node.next?.get(key)?.get(raw);
    return child === undefined ? this.#step(node, key, raw) : child;
  }

  /** Walks the tags of a `Map` or another iterable of `[key, value]` pairs. */
  #pairs(node: TagNode, tags: Iterable<unknown>): TagNode {
    for (const pair of tags) {
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw new ValidationError(
          "INVALID_TAG",
          "tags",
          "tags given as an iterable must yield [key, value] pairs",
        );
      }
      node = this.#child(node, pair[0], pair[1]);
    }
    return node;
  }

  /**
   * Checks the tag count of a tag set used for the first time and builds the line's
   * end, default tags and host tag included.
   */
  #end(node: TagNode): void {
    const host = !node.hasHost && this.#hostPart !== "";
    let count = node.count + (host ? 1 : 0);
    let defaults = "";
    for (const [needle, text, key] of this.#defaults) {
      if (!node.text.includes(needle) && (node.pairs === undefined || !keyAt(node.pairs, key))) {
        defaults += text;
        count++;
      }
    }
    if (count === 0) {
      throw new ValidationError("INVALID_TAG", "tags", "a point needs at least one tag");
    }
    if (count > this.#maxTags) {
      throw new ValidationError(
        "INVALID_TAG",
        "tags",
        `${count} tags is more than maxTags (${this.#maxTags})`,
      );
    }
    if (!node.transient) {
      node.endBytes = toUtf8(node.end = flat(node.text, defaults, host ? this.#hostPart : "", "\n"));
      return;
    }
    // Used once: written as bytes into the scratch buffer (the queue copies them), with no
    // string of its own. No caller code runs from here to the copy.
    const base = node.textBytes!;
    const buf = this.#scratch;
    buf.set(base);
    let at = base.length;
    const pairs = node.pairs!;
    for (let i = 0; i < pairs.length && at >= 0; i += 2) {
      buf[at++] = 0x20; // " "
      at = put(buf, at, pairs[i]);
      if (at < 0) break;
      buf[at++] = 0x3d; // "="
      at = put(buf, at, pairs[i + 1]);
    }
    if (at >= 0 && defaults !== "") at = put(buf, at, defaults);
    if (at >= 0 && host) {
      const hostBytes = this.#hostBytes;
      if (at + hostBytes.length < buf.length) {
        buf.set(hostBytes, at);
        at += hostBytes.length;
      } else at = -1;
    }
    if (at < 0 || at >= buf.length) {
      throw new ValidationError("LINE_TOO_LONG", "line", `line is more than ${MAX_LINE_BYTES} bytes`);
    }
    buf[at++] = 0x0a; // "\n"
    node.endBytes = this.#views[at] ??= buf.subarray(0, at);
  }

  /** Validates a metric seen for the first time (or since the cache was cleared). */
  #metric(metric: string): MetricEntry {
    const name = this.#name(metric, "metric", "INVALID_METRIC");
    if (name === "") {
      throw new ValidationError("INVALID_METRIC", "metric", "metric name is empty");
    }
    const metrics = this.#metrics;
    if (metrics.size >= CACHE_LIMIT) {
      metrics.clear();
      this.#seenSize = 0; // the duplicate check's sets went with their entries
    }
    const entry: MetricEntry = {
      name: this.#prefix === "" ? name : this.#prefix + name,
      ts: -1,
      head: "",
      headBytes: EMPTY,
      seen: undefined,
      seenTs: -1,
    };
    metrics.set(metric, entry);
    return entry;
  }

  /**
   * Validates one tag after the tags of `node`, and remembers the result as its child
   * unless `node` is transient or already has `VALUES_LIMIT` values for `key`.
   */
  #step(node: TagNode, key: string, raw: TagValue): TagNode {
    if (node.transient) return this.#transientStep(node, key, raw);
    const known = key === node.key ? node.values : node.next?.get(key);
    if (known !== undefined && known.size >= VALUES_LIMIT) {
      // A high-cardinality key: forget its values, and go on without the trie from here.
      (node.wild ??= []).push(key);
      if (key === node.key) {
        node.values = new Map();
        node.lastRaw = node.lastChild = undefined;
      } else node.next!.delete(key);
      return this.#transientStep(this.#transient(node), key, raw);
    }
    const k = this.#name(key, "tag key", "INVALID_TAG");
    const v = this.#name(tagString(raw, key), "tag value", "INVALID_TAG");
    let child: TagNode;
    if (k === "" || v === "") {
      if (!this.#sanitize) {
        throw new ValidationError("INVALID_TAG", "tag", `tag ${JSON.stringify(key)} is empty`);
      }
      child = tagNode(node.text, node.count, node.hasHost);
    } else {
      let hasHost = node.hasHost;
      if (k === "host") {
        if (hasHost) {
          throw new ValidationError("INVALID_TAG", "tag key", 'tag key "host" appears twice');
        }
        hasHost = true;
      } else if (node.text.includes(" " + k + "=")) {
        // An object's keys are unique, but sanitised keys or an iterable's pairs may repeat one.
        throw new ValidationError(
          "INVALID_TAG",
          "tag key",
          this.#sanitize
            ? `tag key ${JSON.stringify(key)} sanitises to a key that is already present`
            : `tag key ${JSON.stringify(key)} appears twice`,
        );
      }
      child = tagNode(flat(node.text, " ", k, "=", v), node.count + 1, hasHost);
    }
    if (this.#tagSteps >= TAG_CACHE_LIMIT) {
      // Start over; `node` (now detached) still serves this one point.
      this.#tagRoot = tagNode("", 0, false);
      this.#tagSteps = 0;
    }
    this.#tagSteps++;
    if (node.key === undefined) {
      node.key = key;
      node.values = new Map();
    }
    if (key === node.key) {
      node.values!.set(raw, child);
      node.lastRaw = raw;
      node.lastChild = child;
    } else {
      node.next ??= new Map();
      let byValue = node.next.get(key);
      if (byValue === undefined) node.next.set(key, byValue = new Map());
      byValue.set(raw, child);
    }
    return child;
  }

  /** ` k=`, the text that tells whether a line's tags hold the key `k`; remembered. */
  #needle(k: string): string {
    let needle = this.#needles.get(k);
    if (needle === undefined) {
      if (this.#needles.size >= CACHE_LIMIT) this.#needles.clear();
      this.#needles.set(k, needle = flat(" ", k, "="));
    }
    return needle;
  }

  /** A transient node for one point, extending `base`. */
  #transient(base: TagNode): TagNode {
    base.textBytes ??= toUtf8(base.text);
    return transientNode(base);
  }

  /** Validates one tag of a transient node and adds it to the node (the same checks as `#step`). */
  #transientStep(node: TagNode, key: string, raw: TagValue): TagNode {
    const k = this.#name(key, "tag key", "INVALID_TAG");
    // A value not remembered in the trie is not added to the names seen valid either.
    const v = this.#name(tagString(raw, key), "tag value", "INVALID_TAG", false);
    if (k === "" || v === "") {
      if (!this.#sanitize) {
        throw new ValidationError("INVALID_TAG", "tag", `tag ${JSON.stringify(key)} is empty`);
      }
      return node;
    }
    const pairs = node.pairs!;
    if (k === "host") {
      if (node.hasHost) {
        throw new ValidationError("INVALID_TAG", "tag key", 'tag key "host" appears twice');
      }
      node.hasHost = true;
    } else if (keyAt(pairs, k) || node.text.includes(this.#needle(k))) {
      throw new ValidationError(
        "INVALID_TAG",
        "tag key",
        this.#sanitize
          ? `tag key ${JSON.stringify(key)} sanitises to a key that is already present`
          : `tag key ${JSON.stringify(key)} appears twice`,
      );
    }
    pairs.push(k, v);
    node.count++;
    return node;
  }

  #name(
    s: string,
    field: string,
    code: "INVALID_METRIC" | "INVALID_TAG",
    remember = true,
  ): string {
    const valid = this.#valid;
    // A value not to be remembered is most likely new: hashing it for the lookup would cost more.
    if (remember && valid.has(s)) return s;
    if (typeof s !== "string") {
      throw new ValidationError(code, field, `${field} must be a string, got ${typeof s}`);
    }
    if (!isValidName(s)) {
      if (this.#sanitize) return s.replace(INVALID_CHAR, "_");
      throw new ValidationError(
        code,
        field,
        s === "" ? `${field} is empty` : `${field} ${JSON.stringify(s)} has a character OpenTSDB rejects ` +
          "(allowed: a-z A-Z 0-9 - _ . / and Unicode letters; no other digits, marks or symbols)",
      );
    }
    if (!remember) return s;
    if (valid.size >= CACHE_LIMIT) valid.clear();
    valid.add(s);
    return s;
  }
}

function tagString(raw: TagValue, key: string): string {
  switch (typeof raw) {
    case "string":
      return raw;
    case "number":
    case "bigint":
    case "boolean":
      return String(raw);
    default:
      throw new ValidationError(
        "INVALID_TAG",
        "tag value",
        `tag ${JSON.stringify(key)} has a ${raw === null ? "null" : typeof raw} value`,
      );
  }
}

/**
 * Builds one `put` line with default options (8 tags at most, no host tag).
 *
 * @param metric the metric name
 * @param value the value
 * @param tags the tags (at least one)
 * @param timestamp seconds, milliseconds or a Date; defaults to now in seconds
 * @returns the line, newline included
 * @throws {ValidationError} for anything OpenTSDB would reject
 *
 * @example
 * ```ts
 * import { encodePut } from "@x/potsdb";
 *
 * const line = encodePut("app.requests", 1, { route: "home" }, 1700000000);
 * console.assert(line === "put app.requests 1700000000 1 route=home\n");
 * ```
 */
export function encodePut(
  metric: string,
  value: Value,
  tags: Tags,
  timestamp?: Timestamp,
): string {
  return defaultEncoder.encode(metric, value, tags, timestamp);
}

const defaultEncoder = new PutEncoder();
