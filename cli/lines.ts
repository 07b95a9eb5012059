/**
 * Input lines of `potsdb pipe`: splitting a byte stream into lines, and
 * turning the text of one line into the arguments of `Client.send()`. What
 * a valid metric, tag, value or timestamp is stays the encoder's business;
 * this only reads numbers and `key=value` pairs out of the text.
 *
 * @module
 */

import type { Value } from "../mod.ts";

/** One line's point, ready for `Client.send()`. */
export interface LinePoint {
  /** Metric name, as written. */
  metric: string;
  /** The value read from its text. */
  value: Value;
  /** Tags, as written (a null-prototype object: any key is just a key). */
  tags: Record<string, string>;
  /** The timestamp, when the line has one. */
  timestamp?: number;
}

/**
 * A line whose shape is wrong (too few fields, a tag without `=`, a value
 * that is not a number); the message says which.
 *
 * @example
 * ```ts
 * import { LineError, parseLine } from "./lines.ts";
 *
 * try {
 *   parseLine("cpu abc");
 * } catch (e) {
 *   console.assert(e instanceof LineError);
 * }
 * ```
 */
export class LineError extends Error {
  /** @param message what is wrong with the line */
  constructor(message: string) {
    super(message);
    this.name = "LineError";
  }
}

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const TIMESTAMP = /^\d+(?:\.\d*)?$/;

/**
 * Reads a value: an integer (a bigint when beyond 2^53, so no digit is lost)
 * or a decimal/exponent number. Range and finiteness are checked by the
 * encoder.
 *
 * @param text the value as written
 * @returns the number
 * @throws {LineError} when the text is not a number
 *
 * @example
 * ```ts
 * import { parseValue } from "./lines.ts";
 *
 * console.assert(parseValue("-5") === -5);
 * console.assert(parseValue("9223372036854775807") === 9223372036854775807n);
 * ```
 */
export function parseValue(text: string): Value {
  if (INTEGER.test(text)) {
    const n = Number(text);
    return Number.isSafeInteger(n) ? n : BigInt(text);
  }
  if (DECIMAL.test(text)) return Number(text);
  throw new LineError(`value ${JSON.stringify(text)} is not a number`);
}

/**
 * Reads a timestamp: digits, seconds or 13 digits of milliseconds. What it
 * may be is the encoder's rule, the client's own (see `formatTimestamp`): a
 * fraction or 10 to 12 digits above 4294967295 are read here and refused
 * there, with its explanation.
 *
 * @param text the timestamp as written
 * @returns the number
 * @throws {LineError} when the text is not a number
 *
 * @example
 * ```ts
 * import { parseTimestamp } from "./lines.ts";
 *
 * console.assert(parseTimestamp("1700000000") === 1700000000);
 * ```
 */
export function parseTimestamp(text: string): number {
  if (!TIMESTAMP.test(text)) throw new LineError(`timestamp ${JSON.stringify(text)} is not a number`);
  return Number(text);
}

/**
 * Reads `key=value` words into tags.
 *
 * @param words the words, each `key=value` (the value may be empty: the encoder rejects it)
 * @returns the tags
 * @throws {LineError} for a word without `=` or a key given twice
 *
 * @example
 * ```ts
 * import { parseTags } from "./lines.ts";
 *
 * console.assert(parseTags(["cpu=0", "dc=eu"]).dc === "eu");
 * ```
 */
export function parseTags(words: readonly string[]): Record<string, string> {
  const tags: Record<string, string> = Object.create(null);
  for (const word of words) {
    const eq = word.indexOf("=");
    if (eq === -1) throw new LineError(`tag ${JSON.stringify(word)} is not key=value`);
    const key = word.slice(0, eq);
    if (Object.hasOwn(tags, key)) throw new LineError(`tag key ${JSON.stringify(key)} appears twice`);
    tags[key] = word.slice(eq + 1);
  }
  return tags;
}

/**
 * Reads one input line. Three forms are understood:
 *
 * - `put <metric> <timestamp> <value> [tag=value…]` (what `nc` would send);
 * - `<metric> <timestamp> <value> [tag=value…]` (what tcollector scripts print);
 * - `<metric> <value> [tag=value…]` (timestamped now).
 *
 * A line of the two shorter forms is told apart by its third word: a tag
 * has `=`, a value has not.
 *
 * @param line the text, without its newline
 * @returns the point
 * @throws {LineError} when the line has the wrong shape
 *
 * @example
 * ```ts
 * import { parseLine } from "./lines.ts";
 *
 * const p = parseLine("put sys.cpu.user 1700000000 42.5 cpu=0");
 * console.assert(p.metric === "sys.cpu.user" && p.timestamp === 1700000000 && p.value === 42.5);
 * console.assert(parseLine("app.hits 3 route=home").value === 3);
 * ```
 */
export function parseLine(line: string): LinePoint {
  const words = line.trim().split(/\s+/);
  if (words[0] === "put") {
    if (words.length < 4) throw new LineError("a put line needs: put <metric> <timestamp> <value> [tags]");
    return {
      metric: words[1],
      timestamp: parseTimestamp(words[2]),
      value: parseValue(words[3]),
      tags: parseTags(words.slice(4)),
    };
  }
  if (words.length < 2 || words[0] === "") {
    throw new LineError("a line needs at least: <metric> <value>");
  }
  if (words.length >= 3 && !words[2].includes("=")) {
    return {
      metric: words[0],
      timestamp: parseTimestamp(words[1]),
      value: parseValue(words[2]),
      tags: parseTags(words.slice(3)),
    };
  }
  return { metric: words[0], value: parseValue(words[1]), tags: parseTags(words.slice(2)) };
}

/** Longest line kept in memory; a longer one is reported as too long (the server's limit is 1 KiB). */
export const MAX_INPUT_LINE = 65536;

/** One line of input with its 1-based number; `tooLong` when it was cut at {@linkcode MAX_INPUT_LINE}. */
export interface NumberedLine {
  /** 1-based line number. */
  number: number;
  /** The text without its line break (`\r\n` or `\n`). */
  text: string;
  /** The line was longer than {@linkcode MAX_INPUT_LINE} characters and `text` is its start. */
  tooLong: boolean;
}

/**
 * Splits a byte stream into numbered lines, decoding UTF-8 (bad bytes become
 * U+FFFD, which the encoder then rejects). Pulls the next chunk only when
 * the caller asks for more lines, so a slow consumer slows the producer.
 *
 * @param chunks the stream, e.g. `process.stdin`
 * @returns the lines, the last one even without a final newline
 *
 * @example
 * ```ts
 * import { readLines } from "./lines.ts";
 *
 * async function* input() {
 *   yield new TextEncoder().encode("a 1 x=y\nb 2");
 *   yield new TextEncoder().encode(" x=y\n");
 * }
 * for await (const line of readLines(input())) console.log(line.number, line.text);
 * ```
 */
export async function* readLines(
  chunks: AsyncIterable<Uint8Array | string>,
): AsyncGenerator<NumberedLine> {
  const decoder = new TextDecoder();
  let pending = "";
  let number = 0;
  let skipping = false; // inside a too-long line already reported
  for await (const chunk of chunks) {
    pending += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let nl = pending.indexOf("\n"); nl !== -1; nl = pending.indexOf("\n", start)) {
      const text = pending.slice(start, nl);
      start = nl + 1;
      if (skipping) {
        skipping = false;
        continue;
      }
      number++;
      yield { number, text: text.endsWith("\r") ? text.slice(0, -1) : text, tooLong: false };
    }
    pending = pending.slice(start);
    if (pending.length > MAX_INPUT_LINE && !skipping) {
      number++;
      yield { number, text: pending.slice(0, 80), tooLong: true };
      skipping = true;
    }
    if (skipping) pending = "";
  }
  pending += decoder.decode();
  if (pending !== "" && !skipping) {
    number++;
    yield { number, text: pending.endsWith("\r") ? pending.slice(0, -1) : pending, tooLong: false };
  }
}
