/**
 * `put` lines to OpenTSDB `/api/put` JSON, bytes to bytes.
 *
 * The HTTP transport turns every point it sends into a JSON object. Done on
 * strings (decode, split, `JSON.stringify`, encode) that cost more than
 * everything else the client does per point; here each line is walked once
 * in its UTF-8 bytes and its object written into one buffer per batch, the
 * objects separated by commas, so that a run of points becomes a request
 * body with a single copy.
 *
 * @module
 */

/** One point: where its JSON object and its `put` line are, and its cell. */
export interface JsonPoint<B> {
  /** What the caller passed for the lines it came with. */
  batch: B;
  /** Its JSON object in the buffer {@linkcode putLinesToJson} returned: `[start, end)`. */
  start: number;
  end: number;
  /** Its `put` line (without the newline) in the input: `[lineStart, lineEnd)`. */
  lineStart: number;
  lineEnd: number;
  /**
   * Its cell (metric, timestamp and tags, whatever their order) as a 30-bit
   * hash: two points of one cell always share it; two cells share it rarely.
   */
  cell: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const OPEN = encoder.encode(`{"metric":"`);
const TIMESTAMP = encoder.encode(`","timestamp":`);
const VALUE = encoder.encode(`,"value":`);
const TAGS = encoder.encode(`,"tags":{`);
const SPACE = 0x20;
const NEWLINE = 0x0a;
const EQUALS = 0x3d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

const isDigit = (b: number) => b >= 0x30 && b <= 0x39;

/** Whether `s[from, to)` is a JSON number: `-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?`. */
function isJsonNumber(s: Uint8Array, from: number, to: number): boolean {
  let i = from;
  if (i < to && s[i] === 0x2d) i++;
  if (i >= to || !isDigit(s[i])) return false;
  if (s[i] === 0x30) i++;
  else while (i < to && isDigit(s[i])) i++;
  if (i < to && s[i] === 0x2e) {
    if (++i >= to || !isDigit(s[i])) return false;
    while (i < to && isDigit(s[i])) i++;
  }
  if (i < to && (s[i] === 0x65 || s[i] === 0x45)) {
    if (++i < to && (s[i] === 0x2b || s[i] === 0x2d)) i++;
    if (i >= to || !isDigit(s[i])) return false;
    while (i < to && isDigit(s[i])) i++;
  }
  return i === to;
}

/** FNV-1a over `s[from, to)`. */
function hash(s: Uint8Array, from: number, to: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ s[i], 0x01000193);
  return h;
}

/** A buffer that grows. */
class Out {
  bytes: Uint8Array;
  length = 0;
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
  }
  ensure(more: number): void {
    if (this.length + more <= this.bytes.length) return;
    const bigger = new Uint8Array(Math.max(this.bytes.length * 2, this.length + more));
    bigger.set(this.bytes.subarray(0, this.length));
    this.bytes = bigger;
  }
  put(b: number): void {
    this.bytes[this.length++] = b;
  }
  putAll(piece: Uint8Array): void {
    this.bytes.set(piece, this.length);
    this.length += piece.length;
  }
}

/**
 * Writes the JSON objects of the `put` lines in `input` (each ending with a
 * newline; empty lines are skipped), separated by commas, and appends a
 * {@linkcode JsonPoint} per line to `into`.
 *
 * A line the encoder made needs no escaping (its names and tag values cannot
 * hold `"`, `\` or control characters) and goes byte for byte; any other
 * line takes a slower path through `JSON.stringify`, so the JSON stays valid
 * whatever the input.
 *
 * @param input `put` lines in UTF-8
 * @param batch stored in each point
 * @param into where the points go
 * @returns the buffer the points' `start` and `end` refer to
 *
 * @example
 * ```ts
 * import { putLinesToJson, type JsonPoint } from "./put_json.ts";
 *
 * const points: JsonPoint<null>[] = [];
 * const json = putLinesToJson(new TextEncoder().encode("put sys.cpu 1700000000 0.5 host=a\n"), null, points);
 * const text = new TextDecoder().decode(json.subarray(points[0].start, points[0].end));
 * console.log(text); // {"metric":"sys.cpu","timestamp":1700000000,"value":0.5,"tags":{"host":"a"}}
 * ```
 */
export function putLinesToJson<B>(input: Uint8Array, batch: B, into: JsonPoint<B>[]): Uint8Array {
  const out = new Out(Math.ceil(input.length * 2.5) + 256);
  for (let ls = 0; ls < input.length;) {
    let le = input.indexOf(NEWLINE, ls);
    if (le === -1) le = input.length;
    if (le > ls) {
      if (out.length > 0) {
        out.ensure(1);
        out.put(COMMA);
      }
      const start = out.length;
      const cell = fast(input, ls, le, out) ?? slow(input, ls, le, out);
      into.push({ batch, start, end: out.length, lineStart: ls, lineEnd: le, cell });
    }
    ls = le + 1;
  }
  return out.bytes;
}

/** Most words a line may have on the fast path (OpenTSDB allows 8 tags, a TSD may allow more). */
const MAX_WORDS = 64;
/** Where each word of the line being read ends, and where its first `=` is (-1 if none). */
const wordEnds = new Int32Array(MAX_WORDS);
const equals = new Int32Array(MAX_WORDS);

/**
 * An encoder-made line, byte for byte; undefined (and nothing written) for
 * any line that needs escaping or is not `put <metric> <ts> <value> …`.
 * One pass finds the words, their `=` and the cell's hashes; a second
 * copies. Small pieces are copied in loops: a call into the runtime per
 * piece (`indexOf`, `set`) costs more than the bytes.
 */
function fast(s: Uint8Array, ls: number, le: number, out: Out): number | undefined {
  if (le - ls < 10 || s[ls] !== 0x70 || s[ls + 1] !== 0x75 || s[ls + 2] !== 0x74 || s[ls + 3] !== SPACE) {
    return undefined;
  }
  let words = 0;
  let eq = -1;
  // FNV-1a of "<metric> <ts>", and the sum of the tag words' (so their order does not matter).
  let head = 0x811c9dc5;
  let tags = 0;
  let h = 0x811c9dc5;
  let start = ls + 4;
  for (let i = start; i <= le; i++) {
    const b = i < le ? s[i] : SPACE;
    if (b === SPACE) {
      if (words === MAX_WORDS) return undefined;
      equals[words] = eq;
      wordEnds[words++] = i;
      if (words === 1) head = Math.imul(h ^ SPACE, 0x01000193);
      else if (words === 2) head = h;
      else if (words > 3 && eq > start) tags = (tags + h) | 0;
      h = words === 1 ? head : 0x811c9dc5;
      eq = -1;
      start = i + 1;
      continue;
    }
    if (b === QUOTE || b === BACKSLASH || b < SPACE) return undefined;
    if (b === EQUALS && eq === -1) eq = i;
    h = Math.imul(h ^ b, 0x01000193);
  }
  if (words < 3) return undefined;
  const m = wordEnds[0];
  const t = wordEnds[1];
  const v = wordEnds[2];
  if (m === ls + 4 || t === m + 1 || v === t + 1) return undefined;
  for (let i = m + 1; i < t; i++) if (!isDigit(s[i])) return undefined;
  if (s[m + 1] === 0x30 && t > m + 2) return undefined;

  out.ensure(3 * (le - ls) + 64);
  const o = out.bytes;
  let n = out.length;
  for (let i = 0; i < OPEN.length; i++) o[n++] = OPEN[i];
  for (let i = ls + 4; i < m; i++) o[n++] = s[i];
  for (let i = 0; i < TIMESTAMP.length; i++) o[n++] = TIMESTAMP[i];
  for (let i = m + 1; i < t; i++) o[n++] = s[i];
  for (let i = 0; i < VALUE.length; i++) o[n++] = VALUE[i];
  const quoted = !isJsonNumber(s, t + 1, v);
  if (quoted) o[n++] = QUOTE;
  for (let i = t + 1; i < v; i++) o[n++] = s[i];
  if (quoted) o[n++] = QUOTE;
  for (let i = 0; i < TAGS.length; i++) o[n++] = TAGS[i];
  let first = true;
  for (let w = 3, from = v + 1; w < words; from = wordEnds[w++] + 1) {
    const end = wordEnds[w];
    const e = equals[w];
    if (e <= from) continue; // no "=", or an empty name: not a tag
    if (!first) o[n++] = COMMA;
    first = false;
    o[n++] = QUOTE;
    for (let i = from; i < e; i++) o[n++] = s[i];
    o[n++] = QUOTE;
    o[n++] = COLON;
    o[n++] = QUOTE;
    for (let i = e + 1; i < end; i++) o[n++] = s[i];
    o[n++] = QUOTE;
  }
  o[n++] = 0x7d;
  o[n++] = 0x7d;
  out.length = n;
  return (head ^ Math.imul(tags, 0x9e3779b1)) & 0x3fffffff;
}

/** Any other line: split, quoted with `JSON.stringify`. */
function slow(s: Uint8Array, ls: number, le: number, out: Out): number {
  const line = decoder.decode(s.subarray(ls, le));
  const words = line.split(" ");
  const value = words[3] ?? "";
  let tags = "";
  let tagHash = 0;
  for (const word of words.slice(4)) {
    const eq = word.indexOf("=");
    if (eq <= 0) continue;
    tags += `${tags ? "," : ""}${JSON.stringify(word.slice(0, eq))}:${JSON.stringify(word.slice(eq + 1))}`;
    const bytes = encoder.encode(word);
    tagHash = (tagHash + hash(bytes, 0, bytes.length)) | 0;
  }
  const timestamp = Number(words[2]);
  const json = encoder.encode(
    `{"metric":${JSON.stringify(words[1] ?? "")},"timestamp":${
      Number.isFinite(timestamp) ? timestamp : 0
    },"value":${JSON_NUMBER.test(value) ? value : JSON.stringify(value)},"tags":{${tags}}}`,
  );
  out.ensure(json.length);
  out.putAll(json);
  const head = encoder.encode(`${words[1]} ${words[2]}`);
  return (hash(head, 0, head.length) ^ Math.imul(tagHash, 0x9e3779b1)) & 0x3fffffff;
}

/**
 * The `put` line of a point, as text.
 *
 * @param input the bytes the point was read from
 * @param point the point
 * @returns its line, without the newline
 *
 * @example
 * ```ts
 * import { lineOf, putLinesToJson, type JsonPoint } from "./put_json.ts";
 *
 * const input = new TextEncoder().encode("put a 1700000000 1 k=v\n");
 * const points: JsonPoint<null>[] = [];
 * putLinesToJson(input, null, points);
 * console.log(lineOf(input, points[0])); // put a 1700000000 1 k=v
 * ```
 */
export function lineOf(input: Uint8Array, point: JsonPoint<unknown>): string {
  return decoder.decode(input.subarray(point.lineStart, point.lineEnd));
}
