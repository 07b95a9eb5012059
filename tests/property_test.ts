// Hostile input, generated: for arbitrary metric names, tags, values and
// timestamps, `send()` either throws a ValidationError and changes nothing,
// or queues exactly one line that an independent parser (helpers/put_parser.ts,
// written from the protocol reference) reads back as the same point. No
// output ever holds a second command. The `sanitize: true` mode always
// writes valid lines, is idempotent and leaves valid input alone.
//
// POTSDB_FUZZ_RUNS sets the cases per property (default 100,000); `npm run fuzz`
// runs many more.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import fc from "fast-check";
import { Client, MemoryTransport, sanitizeName, ValidationError } from "../mod.ts";
import { MAX_LINE_BYTES, MAX_TAGS, type ParsedPut, parsePut, validName } from "./helpers/put_parser.ts";

const RUNS = Number(process.env.POTSDB_FUZZ_RUNS ?? 100_000);
const SEED = process.env.POTSDB_FUZZ_SEED === undefined ? undefined : Number(process.env.POTSDB_FUZZ_SEED);
const HOST = "h1";
const MAX_TIMESTAMP = 9999999999999;
const utf8 = new TextEncoder();

// ---- generators ----

const allowedChar = fc.constantFrom(..."abcxyzABCXYZ0189-_./", "é", "ß", "ж", "中", "Ω", "ÿ");
const hostileChar = fc.constantFrom(
  " ",
  "=",
  "\n",
  "\r",
  "\r\n",
  "\0",
  "\t",
  "\u00a0",
  "\u2028",
  "\ufeff",
  "😀",
  "𝒜", // a letter outside the BMP
  "\ud800", // lone high surrogate
  "\udfff", // lone low surrogate
  "put",
  " put m 1 1 a=b\n",
  "+",
  ",",
  ":",
  "\u00ad",
  "\u0301", // a combining mark: not a letter
  "٣", // a digit, but not 0-9: OpenTSDB 2.x refuses it
);
const anyUnit = fc.integer({ min: 0, max: 0xffff }).map((u) => String.fromCharCode(u));

const name: fc.Arbitrary<string> = fc.oneof(
  { weight: 40, arbitrary: fc.string({ unit: allowedChar, minLength: 1, maxLength: 10 }) },
  { weight: 4, arbitrary: fc.string({ unit: fc.oneof(allowedChar, hostileChar), maxLength: 10 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 6 }) },
  { weight: 1, arbitrary: fc.string({ unit: anyUnit, maxLength: 4 }) },
  // Long names, to reach the 1023-byte line limit (built by repetition: generating
  // a thousand characters one by one would dominate the run).
  {
    weight: 1,
    arbitrary: fc.tuple(
      fc.string({ unit: allowedChar, minLength: 1, maxLength: 10 }),
      fc.integer({ min: 20, max: 400 }),
    )
      .map(([s, n]) => s.repeat(n).slice(0, 1100)),
  },
);

const value: fc.Arbitrary<unknown> = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.integer(),
  fc.maxSafeInteger(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(
    NaN,
    Infinity,
    -Infinity,
    -0,
    0,
    1e20,
    -1e20,
    1e21,
    2 ** 53 + 1,
    2 ** 53 - 1,
    1e-320,
    5e-324,
    2 ** 63,
    -(2 ** 63),
    2 ** 63 - 1024,
    Number.MAX_VALUE,
    0.1,
    -1.5e-7,
  ),
  fc.bigInt({ min: -(2n ** 66n), max: 2n ** 66n }),
  fc.constantFrom(2n ** 63n - 1n, 2n ** 63n, -(2n ** 63n), -(2n ** 63n) - 1n, 0n, -1n),
  fc.constantFrom("1", null, undefined, {}, true, [1]),
);

const tagValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 30, arbitrary: name },
  { weight: 2, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.bigInt(), fc.boolean()) },
  { weight: 1, arbitrary: fc.constantFrom(null, undefined, {}, Symbol("s")) },
);

type TagsArg = Record<string, unknown> | Map<string, unknown> | undefined | null;

const tags: fc.Arbitrary<TagsArg> = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom(undefined, null) },
  {
    weight: 12,
    arbitrary: fc.tuple(
      fc.array(
        fc.tuple(
          fc.oneof({ weight: 9, arbitrary: name }, { weight: 1, arbitrary: fc.constant("host") }),
          tagValue,
        ),
        {
          maxLength: 6,
        },
      ),
      fc.integer({ min: 0, max: 9 }),
    ).map(([entries, shape]) => (shape === 0 ? new Map(entries) : Object.fromEntries(entries))),
  },
);

const timestamp: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: fc.constant(undefined) },
  { weight: 6, arbitrary: fc.integer({ min: -10, max: 2 ** 32 }) },
  { weight: 2, arbitrary: fc.integer({ min: 1_000_000_000, max: 2 ** 31 - 1 }).map((s) => s * 1000 + 7) },
  { weight: 1, arbitrary: fc.maxSafeInteger() },
  { weight: 1, arbitrary: fc.integer({ min: 2 ** 32 - 2, max: 1e12 + 1 }) },
  { weight: 1, arbitrary: fc.double() },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      0,
      1,
      -1,
      0.5,
      1.5,
      4294967295,
      4294967296,
      9999999999999,
      1e13,
      -0,
      NaN,
      Infinity,
    ),
  },
  { weight: 2, arbitrary: fc.date({ noInvalidDate: false }) },
  { weight: 1, arbitrary: fc.constantFrom("1700000000", null, 1700000000n) },
);

interface Point {
  metric: unknown;
  value: unknown;
  tags: TagsArg;
  timestamp: unknown;
  /** Pass the timestamp as `{ timestamp }` rather than bare. */
  wrapped: boolean;
}

const point: fc.Arbitrary<Point> = fc.record({
  metric: fc.oneof({ weight: 20, arbitrary: name }, {
    weight: 1,
    arbitrary: fc.constantFrom(1, null, undefined),
  }),
  value,
  tags,
  timestamp,
  wrapped: fc.boolean(),
});

// ---- the oracle: what the reference grammar says send() must do ----

interface Expected {
  metric: string;
  /** A number timestamp, or "now" (between the clock before and after send()). */
  timestamp: number | "now";
  value: bigint | number;
  tags: Map<string, string>;
}

function isTagValue(raw: unknown): raw is string | number | bigint | boolean {
  return typeof raw === "string" || typeof raw === "number" || typeof raw === "bigint" ||
    typeof raw === "boolean";
}

/** Replaces each code point that may not appear in a name with `_`. */
function sanitized(s: string): string {
  let out = "";
  for (const cp of s) out += cp.length === 1 && validName(cp) ? cp : "_";
  return out;
}

/**
 * The point the line must carry, or undefined when send() must throw.
 * With `sanitize`, names are cleaned and empty tags dropped first.
 */
function expect(p: Point, sanitize: boolean): Expected | undefined {
  if (typeof p.metric !== "string") return undefined;
  const metric = sanitize ? sanitized(p.metric) : p.metric;
  if (!validName(metric)) return undefined;

  let v: bigint | number;
  let valueText: string;
  if (typeof p.value === "bigint") {
    if (p.value < -(2n ** 63n) || p.value > 2n ** 63n - 1n) return undefined;
    v = p.value;
    valueText = String(v);
  } else if (typeof p.value === "number") {
    if (!Number.isFinite(p.value)) return undefined;
    if (Number.isInteger(p.value) && Math.abs(p.value) < 2 ** 63) {
      v = BigInt(p.value); // -0 is written, and read back, as 0
      valueText = String(v);
    } else {
      v = p.value; // a float, or an integral number beyond int64 (exponent form)
      valueText = Number.isInteger(p.value) ? p.value.toExponential() : String(p.value);
    }
  } else return undefined;

  let ts: number | "now";
  if (p.timestamp === undefined) ts = "now";
  else if (typeof p.timestamp === "number") {
    // Whole seconds up to 4294967295 or 13-digit milliseconds; a fraction or 10 to 12 digits
    // above 4294967295 is refused as ambiguous.
    if (!Number.isInteger(p.timestamp)) return undefined;
    ts = p.timestamp;
    if (ts > 4294967295 && ts < 1e12) return undefined;
  } else if (p.timestamp instanceof Date) {
    ts = Math.floor(p.timestamp.getTime() / 1000);
    if (ts > 4294967295 && ts <= MAX_TIMESTAMP) return undefined; // after 2106: read as milliseconds
  } else return undefined;
  if (ts !== "now" && !(ts >= 1 && ts <= MAX_TIMESTAMP)) return undefined;

  const out = new Map<string, string>();
  if (p.tags !== undefined && p.tags !== null) {
    const entries = p.tags instanceof Map ? [...p.tags] : Object.entries(p.tags);
    for (const [key, raw] of entries) {
      if (!isTagValue(raw)) return undefined;
      const k = sanitize ? sanitized(key) : key;
      const val = sanitize ? sanitized(String(raw)) : String(raw);
      if (sanitize && (k === "" || val === "")) continue;
      if (!validName(k) || !validName(val) || out.has(k)) return undefined;
      out.set(k, val);
    }
  }
  if (!out.has("host")) out.set("host", HOST);
  if (out.size > MAX_TAGS) return undefined;

  const tsText = ts === "now" ? "1700000000" : String(ts); // "now" is 10 digits until 2286
  let line = `put ${metric} ${tsText} ${valueText}`;
  for (const [k, val] of out) line += ` ${k}=${val}`;
  if (utf8.encode(line).length > MAX_LINE_BYTES) return undefined;
  return { metric, timestamp: ts, value: v, tags: out };
}

// ---- capture: a client on a MemoryTransport, checked after each run ----

interface Sent {
  point: Point;
  expected: Expected;
  before: number;
  after: number;
}

function describePoint(p: Point): string {
  return fc.stringify(p);
}

class Capture {
  readonly transport = new MemoryTransport();
  readonly client: Client;
  readonly sent: Sent[] = [];
  accepted = 0;
  rejected = 0;
  /** Rejections by error code, for the report. */
  readonly reasons = new Map<string, number>();

  readonly sanitize: boolean;

  constructor(sanitize: boolean) {
    this.sanitize = sanitize;
    // Random points repeat (metric, tags) within a second: the duplicate check is not under test here.
    this.client = new Client("memory", {
      transport: this.transport,
      hostTag: HOST,
      qsize: 0,
      sanitize,
      dedup: false,
    });
  }

  /** Sends `p`; checks at once the reject-or-accept half of the property. */
  send(p: Point): void {
    const expected = expect(p, this.sanitize);
    const before = this.client.stats();
    const t0 = Date.now();
    let error: unknown;
    try {
      const options = p.wrapped ? { timestamp: p.timestamp } : p.timestamp;
      // deno-lint-ignore no-explicit-any
      this.client.send(p.metric as any, p.value as any, p.tags as any, options as any);
    } catch (e) {
      error = e;
    }
    const t1 = Date.now();
    const after = this.client.stats();
    // Messages are built only on failure: describing each case would dominate the run.
    if (error !== undefined) {
      if (!(error instanceof ValidationError)) {
        assert.fail(`a ValidationError, got ${error} for ${describePoint(p)}`);
      }
      if (expected !== undefined) {
        assert.fail(`a valid point was rejected (${error.message}): ${describePoint(p)}`);
      }
      if (after.accepted !== before.accepted || after.queued !== before.queued) {
        assert.fail(`a rejected point changed the stats: ${describePoint(p)}`);
      }
      this.rejected++;
      this.reasons.set(error.code, (this.reasons.get(error.code) ?? 0) + 1);
      return;
    }
    if (expected === undefined) assert.fail(`an invalid point was accepted: ${describePoint(p)}`);
    if (after.accepted !== before.accepted + 1 || after.queued !== before.queued + 1) {
      assert.fail(`not exactly one point queued: ${describePoint(p)}`);
    }
    this.sent.push({ point: p, expected: expected!, before: t0, after: t1 });
    this.accepted++;
  }

  /** Lets the writer deliver, then checks each written line against its point. */
  async verify(): Promise<ParsedPut[]> {
    await this.client.flush({ timeoutMs: 30_000 });
    const text = this.transport.received();
    this.transport.chunks.length = 0;
    const lines = text === "" ? [] : text.slice(0, -1).split("\n").map((l) => l + "\n");
    assert.equal(lines.length, this.sent.length, "one line per accepted point, no more");
    const parsed: ParsedPut[] = [];
    for (let i = 0; i < lines.length; i++) {
      const { point, expected, before, after } = this.sent[i];
      let got: ParsedPut;
      try {
        got = parsePut(lines[i]);
      } catch (e) {
        assert.fail(`${(e as Error).message}: ${JSON.stringify(lines[i])} from ${describePoint(point)}`);
      }
      const fail = (what: string) =>
        assert.fail(`${what}: ${JSON.stringify(lines[i])} from ${describePoint(point)}`);
      if (got.metric !== expected.metric) fail("metric");
      if (expected.timestamp === "now") {
        if (got.timestamp < Math.floor(before / 1000) || got.timestamp > Math.floor(after / 1000)) {
          fail("timestamp (now)");
        }
      } else if (got.timestamp !== expected.timestamp) fail("timestamp");
      if (typeof got.value !== typeof expected.value) fail("integer or float");
      if (typeof point.value === "number") {
        // A number reads back as itself: the written digits name the same double.
        if (Number(got.value) !== point.value) fail("value");
      } else if (got.value !== expected.value) fail("value");
      if (got.tags.size !== expected.tags.size) fail("tags");
      for (const [k, v] of expected.tags) if (got.tags.get(k) !== v) fail(`tag ${k}`);
      parsed.push(got);
    }
    this.sent.length = 0;
    return parsed;
  }

  async close(): Promise<void> {
    const s = await this.client.close();
    assert.equal(s.accepted, s.sent + s.queued + s.dropped.total);
  }
}

function params(runs: number): fc.Parameters<[Point]> {
  return { numRuns: runs, seed: SEED, endOnFailure: true };
}

/** Sends `runs` generated points in chunks, checking the written lines after each chunk. */
async function runChecked(capture: Capture, runs: number): Promise<void> {
  const chunk = 25_000;
  for (let done = 0; done < runs; done += chunk) {
    const n = Math.min(chunk, runs - done);
    fc.assert(
      fc.property(point, (p) => {
        capture.send(p);
      }),
      { ...params(n), seed: SEED === undefined ? undefined : SEED + done },
    );
    await capture.verify();
  }
}

describe(`hostile input (${RUNS} cases per property)`, () => {
  it("send() throws ValidationError and queues nothing, or queues one line that reads back as the point", async () => {
    const capture = new Capture(false);
    await runChecked(capture, RUNS);
    await capture.close();
    console.log(
      `# strict: ${RUNS} cases, ${capture.accepted} accepted, ${capture.rejected} rejected ` +
        JSON.stringify(Object.fromEntries(capture.reasons)),
    );
    assert.ok(capture.accepted > RUNS / 10 && capture.rejected > RUNS / 10, "both outcomes are exercised");
  });

  it("sanitize: the output is always valid and carries the cleaned point", async () => {
    const capture = new Capture(true);
    await runChecked(capture, RUNS);
    console.log(
      `# sanitize: ${RUNS} cases, ${capture.accepted} accepted, ${capture.rejected} rejected ` +
        JSON.stringify(Object.fromEntries(capture.reasons)),
    );
    await capture.close();
  });

  it("sanitize: idempotent — cleaning a cleaned name, or resending a written point, changes nothing", async () => {
    fc.assert(
      fc.property(name, (s) => {
        const once = sanitizeName(s);
        assert.equal(sanitizeName(once), once);
        assert.equal(once, sanitized(s));
      }),
      { numRuns: RUNS, seed: SEED },
    );
    // Resend what was written through the same sanitising client: the same line comes out.
    const capture = new Capture(true);
    const chunk = Math.min(RUNS, 25_000);
    for (let done = 0; done < RUNS; done += chunk) {
      fc.assert(fc.property(point, (p) => capture.send(p)), params(Math.min(chunk, RUNS - done)));
      const parsed = await capture.verify();
      for (const got of parsed) {
        capture.send({
          metric: got.metric,
          value: got.value,
          tags: Object.fromEntries(got.tags),
          timestamp: got.timestamp,
          wrapped: false,
        });
      }
      const again = await capture.verify();
      assert.deepEqual(again, parsed);
    }
    await capture.close();
  });

  it("sanitize: valid input comes out exactly as without sanitising", async () => {
    const validName = fc.string({ unit: allowedChar, minLength: 1, maxLength: 12 });
    const validPoint: fc.Arbitrary<Point> = fc.record({
      metric: validName,
      value: fc.oneof(
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.integer(),
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
      ),
      tags: fc.dictionary(validName, validName, { maxKeys: 7 }),
      timestamp: fc.oneof(
        fc.constant(undefined),
        fc.integer({ min: 1, max: 4294967295 }),
        fc.integer({ min: 1e12, max: MAX_TIMESTAMP }),
      ),
      wrapped: fc.boolean(),
    });
    const strict = new Capture(false);
    const lenient = new Capture(true);
    const chunk = 25_000;
    for (let done = 0; done < RUNS; done += chunk) {
      fc.assert(
        fc.property(validPoint, (p) => {
          assert.equal(sanitizeName(p.metric as string), p.metric);
          strict.send(p);
          lenient.send(p);
        }),
        { numRuns: Math.min(chunk, RUNS - done), seed: SEED === undefined ? undefined : SEED + done },
      );
      assert.equal(strict.rejected, 0);
      const a = await strict.verify();
      const b = await lenient.verify();
      assert.equal(a.length, b.length);
      for (let i = 0; i < a.length; i++) {
        // "now" may tick between the two sends; everything else is identical.
        const same = a[i].metric === b[i].metric && a[i].value === b[i].value &&
          a[i].tags.size === b[i].tags.size && [...a[i].tags].every(([k, v]) => b[i].tags.get(k) === v);
        if (!same) assert.deepEqual(b[i], a[i]);
      }
    }
    await strict.close();
    await lenient.close();
  });
});
