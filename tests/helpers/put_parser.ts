// An independent reader of OpenTSDB telnet `put` lines, written from the
// protocol reference (shared/reference/opentsdb-protocol.md), not from
// src/put.ts: tests use it to check that what the encoder writes is what a
// server would accept, and means what the caller sent.
//
//   put <metric> <timestamp> <value> <tagk1>=<tagv1>[ <tagkN>=<tagvN>]\n
//
// - exactly lowercase `put`, single spaces, the line ends with one `\n`;
// - at most 1023 bytes (UTF-8) before the `\n`, or the server drops the connection;
// - metric, tag keys and values: non-empty, each UTF-16 unit one of
//   `a-z A-Z 0-9 - _ . /` or a letter (Java's Character.isLetter on a char:
//   a surrogate half is never a letter);
// - 1 to 8 tags, keys unique;
// - timestamp: an integer, 1..4294967295 seconds or up to 9999999999999 ms;
// - value: an integer (optional sign, ≤ 19 digits, within int64), or a float
//   that contains `.`, `e` or `E` and is finite.

/** One point as read back from a line. */
export interface ParsedPut {
  metric: string;
  timestamp: number;
  /** An integer value as a bigint, a float value as a number. */
  value: bigint | number;
  tags: Map<string, string>;
}

/** Why a line is not a valid `put`. */
export class PutSyntaxError extends Error {}

export const MAX_LINE_BYTES = 1023;
export const MAX_TAGS = 8;
const MAX_TIMESTAMP = 9999999999999;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const LETTER = /^\p{L}$/u;
const utf8 = new TextEncoder();

/** Whether one UTF-16 unit may appear in a metric, tag key or tag value. */
function allowedUnit(unit: number): boolean {
  if (
    (unit >= 0x61 && unit <= 0x7a) || (unit >= 0x41 && unit <= 0x5a) || (unit >= 0x30 && unit <= 0x39) ||
    unit === 0x2d || unit === 0x5f || unit === 0x2e || unit === 0x2f
  ) return true;
  if (unit < 0x80 || (unit >= 0xd800 && unit <= 0xdfff)) return false;
  return LETTER.test(String.fromCharCode(unit));
}

/** Whether `s` is a valid metric name, tag key or tag value by the reference rules. */
export function validName(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (!allowedUnit(s.charCodeAt(i))) return false;
  return true;
}

function parseTimestamp(word: string): number {
  if (!/^[1-9][0-9]{0,12}$/.test(word)) throw new PutSyntaxError(`bad timestamp ${JSON.stringify(word)}`);
  const n = Number(word);
  if (n < 1 || n > MAX_TIMESTAMP) throw new PutSyntaxError(`timestamp out of range: ${word}`);
  return n;
}

function parseValue(word: string): bigint | number {
  if (/^[+-]?[0-9]+$/.test(word)) {
    const digits = word.replace(/^[+-]/, "");
    if (digits.length > 19) throw new PutSyntaxError(`integer with more than 19 digits: ${word}`);
    const n = BigInt(word);
    if (n < INT64_MIN || n > INT64_MAX) throw new PutSyntaxError(`integer outside int64: ${word}`);
    return n;
  }
  // Java's Double.parseDouble forms a JavaScript client can write: digits with a
  // `.` and/or an exponent.
  if (!/^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/.test(word) || !/[.eE]/.test(word)) {
    throw new PutSyntaxError(`bad value ${JSON.stringify(word)}`);
  }
  const x = Number(word);
  if (!Number.isFinite(x)) throw new PutSyntaxError(`value is not finite: ${word}`);
  return x;
}

/**
 * Parses one line, newline included.
 *
 * @throws {PutSyntaxError} when the line is not one valid `put`
 */
export function parsePut(line: string): ParsedPut {
  if (!line.endsWith("\n")) throw new PutSyntaxError("the line does not end with \\n");
  const body = line.slice(0, -1);
  if (body.includes("\n") || body.includes("\r")) throw new PutSyntaxError("a line break inside the line");
  const bytes = utf8.encode(body).length;
  if (bytes > MAX_LINE_BYTES) throw new PutSyntaxError(`line is ${bytes} bytes`);
  const words = body.split(" ");
  if (words.some((w) => w === "")) throw new PutSyntaxError("an empty word (double or edge space)");
  if (words[0] !== "put") throw new PutSyntaxError(`not a put: ${JSON.stringify(words[0])}`);
  if (words.length < 5) throw new PutSyntaxError("a put needs a metric, a timestamp, a value and a tag");
  const [, metric, ts, value, ...tagWords] = words;
  if (!validName(metric)) throw new PutSyntaxError(`bad metric ${JSON.stringify(metric)}`);
  if (tagWords.length > MAX_TAGS) throw new PutSyntaxError(`${tagWords.length} tags`);
  const tags = new Map<string, string>();
  for (const word of tagWords) {
    const eq = word.indexOf("=");
    if (eq === -1 || word.indexOf("=", eq + 1) !== -1) {
      throw new PutSyntaxError(`bad tag ${JSON.stringify(word)}`);
    }
    const k = word.slice(0, eq);
    const v = word.slice(eq + 1);
    if (!validName(k) || !validName(v)) throw new PutSyntaxError(`bad tag ${JSON.stringify(word)}`);
    if (tags.has(k)) throw new PutSyntaxError(`duplicate tag key ${k}`);
    tags.set(k, v);
  }
  return { metric, timestamp: parseTimestamp(ts), value: parseValue(value), tags };
}
