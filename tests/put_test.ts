import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  encodePut,
  formatTimestamp,
  formatValue,
  isValidName,
  PutEncoder,
  sanitizeName,
  ValidationError,
} from "../mod.ts";
import { DropOldestQueue } from "../src/queue.ts";

const TS = 1700000000;

function rejects(fn: () => unknown, code: string) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ValidationError, `expected ValidationError, got ${e}`);
    assert.equal(e.code, code);
    return true;
  });
}

describe("encodePut", () => {
  it("builds the exact line", () => {
    assert.equal(
      encodePut("sys.cpu.user", 42.5, { cpu: "0", dc: "eu-west_1/a" }, TS),
      "put sys.cpu.user 1700000000 42.5 cpu=0 dc=eu-west_1/a\n",
    );
  });

  it("defaults the timestamp to now in seconds", () => {
    const line = new PutEncoder().encode("m", 1, { a: "b" }, undefined, 1700000000999);
    assert.equal(line, "put m 1700000000 1 a=b\n");
  });

  it("stringifies number, bigint and boolean tag values", () => {
    assert.equal(
      encodePut("m", 1, { n: 200, b: 5n, t: true }, TS),
      "put m 1700000000 1 n=200 b=5 t=true\n",
    );
  });

  it("accepts BMP Unicode letters", () => {
    assert.equal(
      encodePut("température", 1, { ville: "Zürich" }, TS),
      "put température 1700000000 1 ville=Zürich\n",
    );
  });

  it("refuses non-ASCII digits and combining marks, as OpenTSDB 2.x's Character.isLetter does", () => {
    // "é" precomposed is a letter; "e" + U+0301 (a combining accent) and "٣" (an Arabic-Indic
    // digit) are not letters, and OpenTSDB 2.x allows no digits beyond 0-9.
    assert.equal(encodePut("m", 1, { k: "é" }, TS), "put m 1700000000 1 k=é\n");
    assert.ok(isValidName("ǅ"));
    for (const name of ["m٣", "e\u0301", "Ⅻ"]) {
      assert.throws(() => encodePut(name, 1, { a: "b" }, TS), (e: unknown) => {
        assert.ok(e instanceof ValidationError);
        assert.equal(e.code, "INVALID_METRIC");
        // The message names the rule exactly: ASCII digits, Unicode letters.
        assert.match(e.message, /0-9/);
        assert.match(e.message, /Unicode letters/);
        return true;
      });
    }
  });
});

describe("values", () => {
  it("writes integers as integers and floats with a dot or exponent", () => {
    assert.equal(formatValue(0), "0");
    assert.equal(formatValue(-0), "0");
    assert.equal(formatValue(-17), "-17");
    assert.equal(formatValue(0.1), "0.1");
    assert.equal(formatValue(1e-7), "1e-7");
    assert.equal(formatValue(2 ** 53 + 2), "9007199254740994");
  });

  it("writes a float in JavaScript's shortest round-trip form, on every runtime", () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (v) => {
        if (Number.isInteger(v)) return;
        const s = formatValue(v);
        assert.equal(s, String(v));
        assert.equal(Number(s), v);
      }),
      { numRuns: 20_000 },
    );
  });

  describe("the encoder's digits, written straight into the queue", () => {
    // `encodeTo` writes a short decimal's digits into the queue itself (no string); `encode`
    // and every other value go through formatValue. The line must be the same either way.
    const encoder = new PutEncoder();
    const queue = new DropOldestQueue(0);
    const decoder = new TextDecoder();
    const HEAD = `put m ${TS} `;
    const queued = (v: number) => {
      assert.equal(encoder.encodeTo(queue, "m", v, { k: "v" }, TS), 0);
      const line = decoder.decode(queue.take(1, 4096)!.data);
      assert.ok(line.startsWith(HEAD) && line.endsWith(" k=v\n"), line);
      return line.slice(HEAD.length, -" k=v\n".length);
    };
    const same = (v: number) => {
      const text = queued(v);
      assert.equal(text, formatValue(v), `${v}`);
      // Reads back as the same double (-0 is written "0", as before: no negative zero on the wire).
      assert.ok(Number(text) === v, `${v} -> ${text}`);
      // A number OpenTSDB reads as a float has a "." or an exponent; an int64 has neither.
      assert.equal(/[.e]/.test(text), !(Number.isInteger(v) && Math.abs(v) < 2 ** 63), text);
    };
    // Short decimals (what the fast path takes) and their neighbours, one ulp away each side.
    const shortDecimal = fc.tuple(
      fc.integer({ min: -(2 ** 50), max: 2 ** 50 }),
      fc.integer({ min: 0, max: 8 }),
    ).map(([n, k]) => n / 10 ** k);
    const neighbour = (v: number, up: boolean) => {
      const f = new Float64Array([v]);
      const i = new BigInt64Array(f.buffer);
      i[0] += up === v >= 0 ? 1n : -1n;
      return Number.isFinite(f[0]) ? f[0] : v;
    };

    it("is formatValue's text, for any finite double", () => {
      fc.assert(fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), same), { numRuns: 20_000 });
    });

    it("is formatValue's text for short decimals, integers and the doubles next to them", () => {
      fc.assert(
        fc.property(
          shortDecimal,
          fc.boolean(),
          fc.boolean(),
          (v, move, up) => same(move ? neighbour(v, up) : v),
        ),
        { numRuns: 50_000 },
      );
    });

    it("at the edges: signs, zeros, the limits of the fast path, powers of ten", () => {
      const edges = [
        0,
        -0,
        0.5,
        -0.5,
        0.05,
        -0.05,
        1e-6,
        -1e-6,
        1.5e-6,
        1e-7,
        0.1,
        0.2,
        0.3,
        0.1 + 0.2,
        1 / 3,
      ];
      for (let e = 0; e <= 53; e++) {
        edges.push(2 ** e, 2 ** e - 1, 2 ** e + 1, -(2 ** e), (2 ** e) / 10, 2 ** e + 0.5);
      }
      for (let e = -8; e <= 17; e++) edges.push(10 ** e, -(10 ** e), 10 ** e * 0.999999, 10 ** e - 0.5);
      for (const k of [1, 2, 3, 4, 5, 6, 7]) {
        edges.push((2 ** 49 - 1) / 10 ** k, 2 ** 49 / 10 ** k, (2 ** 49 + 1) / 10 ** k);
      }
      for (const v of edges) for (const w of [v, neighbour(v, true), neighbour(v, false)]) same(w);
      assert.equal(queued(-0.05), "-0.05");
      assert.equal(queued(12.375), "12.375");
      assert.equal(queued(-7), "-7");
    });
  });

  it("never writes an integral value beyond int64 as a 20+ digit integer", () => {
    for (const v of [1e19, 1e20, -1e20, 2 ** 63, 1.5e300, -(2 ** 64)]) {
      const s = formatValue(v);
      assert.match(s, /e/, `${v} -> ${s}`);
      assert.equal(Number(s), v);
    }
    assert.equal(formatValue(1e20), "1e+20");
    assert.equal(formatValue(9007199254740993e3), "9007199254740993000");
  });

  it("accepts bigint within int64 and rejects it outside", () => {
    assert.equal(formatValue(2n ** 63n - 1n), "9223372036854775807");
    assert.equal(formatValue(-(2n ** 63n)), "-9223372036854775808");
    rejects(() => formatValue(2n ** 63n), "INVALID_VALUE");
    rejects(() => formatValue(-(2n ** 63n) - 1n), "INVALID_VALUE");
  });

  it("rejects NaN, infinities and non-numbers", () => {
    for (const v of [NaN, Infinity, -Infinity, "1" as unknown as number, null as unknown as number]) {
      rejects(() => formatValue(v), "INVALID_VALUE");
    }
  });
});

describe("timestamps", () => {
  it("keeps seconds (up to 4294967295) and 13-digit milliseconds", () => {
    assert.equal(formatTimestamp(TS), TS);
    assert.equal(formatTimestamp(1), 1);
    assert.equal(formatTimestamp(1700000000123), 1700000000123);
    assert.equal(formatTimestamp(4294967295), 4294967295);
    assert.equal(formatTimestamp(1000000000000), 1000000000000);
    assert.equal(formatTimestamp(9999999999999), 9999999999999);
  });

  it("refuses what is neither: 10 to 12 digits above 4294967295, and fractions", () => {
    // OpenTSDB would take these for milliseconds of 1970-2001: most likely a mistake (deciseconds,
    // seconds after 2106, a digit lost), never what the caller meant.
    for (const t of [4294967296, 9999999999, 17000000000, 170000000000, 999999999999]) {
      assert.throws(
        () => formatTimestamp(t),
        (e: unknown) =>
          e instanceof ValidationError && e.code === "INVALID_TIMESTAMP" && /ambiguous/.test(e.message) &&
          /4294967295/.test(e.message) && /13 digits/.test(e.message),
        String(t),
      );
    }
    // A fraction would be cut off without a word: refused, with what to pass instead.
    for (const t of [TS + 0.9, TS + 0.5, 1700000000123.5, 0.5]) {
      assert.throws(
        () => formatTimestamp(t),
        (e: unknown) =>
          e instanceof ValidationError && e.code === "INVALID_TIMESTAMP" && /whole/.test(e.message) &&
          /Math\.floor/.test(e.message),
        String(t),
      );
    }
    rejects(() => encodePut("m", 1, { a: "b" }, 17000000000), "INVALID_TIMESTAMP");
    rejects(() => encodePut("m", 1, { a: "b" }, TS + 0.5), "INVALID_TIMESTAMP");
    // A Date is never ambiguous, but must land where the server reads it as meant.
    const after2106 = new Date((4294967295 + 1) * 1000);
    rejects(() => formatTimestamp(after2106), "INVALID_TIMESTAMP"); // seconds beyond 4294967295: read as ms
    assert.equal(formatTimestamp(after2106, true), 4294967296000);
    rejects(() => formatTimestamp(new Date(86_400_000), true), "INVALID_TIMESTAMP"); // 1970-01-02 in ms: read as s
    assert.equal(formatTimestamp(new Date(86_400_000)), 86400);
    assert.equal(
      formatTimestamp(new Date(999_999_999_999), true),
      999999999999,
      "a Date of 2001 in ms is ms",
    );
  });

  it("turns a Date into seconds, or milliseconds on request", () => {
    const d = new Date(1700000000789);
    assert.equal(formatTimestamp(d), 1700000000);
    assert.equal(formatTimestamp(d, true), 1700000000789);
    assert.equal(encodePut("m", 1, { a: "b" }, d), "put m 1700000000 1 a=b\n");
  });

  it("rejects zero, negatives, 14 digits and non-times", () => {
    // 0 too: OpenTSDB's telnet `put` answers "invalid timestamp" for anything <= 0.
    for (const t of [0, -1, 10000000000000, NaN, Infinity, new Date(NaN), "1" as unknown as number]) {
      rejects(() => formatTimestamp(t), "INVALID_TIMESTAMP");
    }
  });
});

describe("validation", () => {
  it("rejects bad metric names", () => {
    for (const m of ["", "a b", "a\nput x", "a=b", "a\r", "a\0", "a,b", "a😀", 5 as unknown as string]) {
      rejects(() => encodePut(m, 1, { a: "b" }, TS), "INVALID_METRIC");
    }
  });

  it("rejects bad tag keys and values", () => {
    const bad: Record<string, string>[] = [
      { "": "v" },
      { k: "" },
      { "a b": "v" },
      { k: "v w" },
      { k: "v\nput evil 1 1 x=y" },
      { k: "a=b" },
      { "k=": "v" },
      { k: "\u0000" },
      { k: "😀" },
    ];
    for (const tags of bad) rejects(() => encodePut("m", 1, tags, TS), "INVALID_TAG");
    rejects(() => encodePut("m", 1, { k: null as unknown as string }, TS), "INVALID_TAG");
    rejects(() => encodePut("m", 1, { k: undefined as unknown as string }, TS), "INVALID_TAG");
  });

  it("needs at least one tag and at most maxTags", () => {
    rejects(() => encodePut("m", 1, {}, TS), "INVALID_TAG");
    const nine = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`k${i}`, "v"]));
    rejects(() => encodePut("m", 1, nine, TS), "INVALID_TAG");
    const enc = new PutEncoder({ maxTags: 9 });
    assert.match(enc.encode("m", 1, nine, TS), /k8=v\n$/);
    const host = new PutEncoder({ maxTags: 2, host: "h" });
    rejects(() => host.encode("m", 1, { a: "1", b: "2" }, TS), "INVALID_TAG");
  });

  it("rejects lines over 1023 bytes, counting UTF-8 bytes", () => {
    const fits = "x".repeat(1023 - "put m 1700000000 1 k=".length);
    assert.equal(encodePut("m", 1, { k: fits }, TS).length, 1024);
    rejects(() => encodePut("m", 1, { k: fits + "x" }, TS), "LINE_TOO_LONG");
    // "é" is two bytes: 501 of them make exactly 1023 bytes in 522 characters.
    assert.ok(encodePut("m", 1, { k: "é".repeat(501) }, TS));
    rejects(() => encodePut("m", 1, { k: "é".repeat(502) }, TS), "LINE_TOO_LONG");
  });

  it("no output ever holds a second command", () => {
    const hostile = ["x\nput a 1 1 b=c", "x\r\nversion", "x put", "x\u2028y", "x\u0085y"];
    for (const v of hostile) {
      try {
        const line = encodePut("m", 1, { k: v }, TS);
        assert.equal(line.indexOf("\n"), line.length - 1);
        assert.equal(line.split(" ").length, 5);
      } catch (e) {
        assert.ok(e instanceof ValidationError);
      }
    }
  });
});

describe("tags given in other shapes", () => {
  it("takes a Map's entries as tags, like the same object", () => {
    assert.equal(
      encodePut("m", 1, new Map<string, string | number>([["dc", "eu"], ["n", 2]]), TS),
      "put m 1700000000 1 dc=eu n=2\n",
    );
    const enc = new PutEncoder({ host: "h" });
    for (let i = 0; i < 2; i++) {
      assert.equal(enc.encode("m", 1, new Map([["dc", "eu"]]), TS), "put m 1700000000 1 dc=eu host=h\n");
      assert.equal(enc.encode("m", 1, { dc: "eu" }, TS), "put m 1700000000 1 dc=eu host=h\n");
    }
  });

  it("takes any iterable of [key, value] pairs", () => {
    assert.equal(encodePut("m", 1, [["a", "1"], ["b", "2"]], TS), "put m 1700000000 1 a=1 b=2\n");
    assert.equal(
      encodePut("m", 1, Object.entries({ a: "1" }), TS),
      "put m 1700000000 1 a=1\n",
    );
    function* gen(): Generator<[string, string]> {
      yield ["g", "1"];
    }
    assert.equal(encodePut("m", 1, gen(), TS), "put m 1700000000 1 g=1\n");
  });

  it("validates pairs like object entries, and refuses a key given twice", () => {
    rejects(() => encodePut("m", 1, new Map([["k", "a b"]]), TS), "INVALID_TAG");
    rejects(() => encodePut("m", 1, new Map([["k", "v\nput evil 1 1 x=y"]]), TS), "INVALID_TAG");
    rejects(() => encodePut("m", 1, new Map([[1 as unknown as string, "v"]]), TS), "INVALID_TAG");
    rejects(() => encodePut("m", 1, new Map(), TS), "INVALID_TAG");
    rejects(() => encodePut("m", 1, [["a", "1"], ["a", "2"]], TS), "INVALID_TAG");
    rejects(() => encodePut("m", 1, [["host", "1"], ["host", "2"]], TS), "INVALID_TAG");
    rejects(() => encodePut("m", 1, ["ab"] as unknown as [string, string][], TS), "INVALID_TAG");
    rejects(() => encodePut("m", 1, [["a", "1", "x"]] as unknown as [string, string][], TS), "INVALID_TAG");
  });

  it("sends only own enumerable keys: inherited properties are never tags", () => {
    const inherited = Object.create({ env: "prod" }) as Record<string, string>;
    inherited.dc = "eu";
    assert.equal(encodePut("m", 1, inherited, TS), "put m 1700000000 1 dc=eu\n");
    class WithGetter {
      a = "1";
      get b() {
        return "2";
      }
    }
    assert.equal(
      encodePut("m", 1, new WithGetter() as unknown as Record<string, string>, TS),
      "put m 1700000000 1 a=1\n",
    );
    const hidden = { a: "1" };
    Object.defineProperty(hidden, "b", { value: "2", enumerable: false });
    Object.defineProperty(hidden, Symbol("s"), { value: "3", enumerable: true });
    assert.equal(encodePut("m", 1, hidden, TS), "put m 1700000000 1 a=1\n");
  });

  it("a polluted Object.prototype leaks into no point", () => {
    const proto = Object.prototype as Record<string, unknown>;
    const enc = new PutEncoder();
    proto.polluted = "yes";
    try {
      assert.equal(enc.encode("m", 1, { a: "1" }, TS), "put m 1700000000 1 a=1\n");
      assert.equal(encodePut("m", 1, { a: "1", b: "2" }, TS), "put m 1700000000 1 a=1 b=2\n");
    } finally {
      delete proto.polluted;
    }
  });
});

describe("host tag", () => {
  it("adds the host tag unless the caller gives one", () => {
    const enc = new PutEncoder({ host: "web1" });
    assert.equal(enc.encode("m", 1, { a: "b" }, TS), "put m 1700000000 1 a=b host=web1\n");
    assert.equal(enc.encode("m", 1, { host: "other" }, TS), "put m 1700000000 1 host=other\n");
    assert.equal(enc.encode("m", 1, undefined, TS), "put m 1700000000 1 host=web1\n");
  });

  it("rejects an invalid host override", () => {
    assert.throws(() => new PutEncoder({ host: "a b" }), ValidationError);
  });
});

describe("sanitize", () => {
  it("replaces invalid characters and drops empty tags", () => {
    const enc = new PutEncoder({ sanitize: true });
    assert.equal(
      enc.encode("a b", 1, { "k\n": "v=1", empty: "", x: "y" }, TS),
      "put a_b 1700000000 1 k_=v_1 x=y\n",
    );
    assert.equal(sanitizeName("ok.name"), "ok.name");
    assert.equal(sanitizeName("😀"), "_");
    assert.equal(sanitizeName("𝒜b"), "_b");
    assert.ok(isValidName(sanitizeName("a\u0000b c")));
  });

  it("still rejects what cannot be repaired", () => {
    const enc = new PutEncoder({ sanitize: true });
    rejects(() => enc.encode("", 1, { a: "b" }, TS), "INVALID_METRIC");
    rejects(() => enc.encode("m", NaN, { a: "b" }, TS), "INVALID_VALUE");
    rejects(() => enc.encode("m", 1, { "a b": "1", "a_b": "2" }, TS), "INVALID_TAG");
  });
});
