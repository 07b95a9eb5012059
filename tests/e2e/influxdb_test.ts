// A second real server: InfluxDB 1.x's opentsdb service (telnet `put` and
// HTTP `/api/put` on one port). Exact arrival of the 100,000 points of
// exact_test.ts over telnet (the default transport) and over HTTP
// (httpTransport), read back with InfluxQL and compared point by point; and
// the differences from VictoriaMetrics that README's troubleshooting section
// lists, pinned down so a change in them is noticed.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import { Client } from "../../mod.ts";
import { httpTransport } from "../../src/transport/http.ts";
import { type Influxdb, type InfluxSeries, startInfluxdb } from "../../scripts/influxdb.ts";
import { METRICS, POINTS_PER_SERIES, TAG_SETS, valueOf } from "../helpers/points.ts";
import { runtime, sampleKey, uniquePrefix } from "../helpers/tsdb_env.ts";

const TOTAL = METRICS * TAG_SETS.length * POINTS_PER_SERIES;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Regex-escapes a prefix for an InfluxQL measurement regex `/^prefix\./`. */
function measurements(prefix: string): string {
  return `/^${prefix.replace(/[.\\+*?^$()[\]{}|/]/g, "\\$&")}\\./`;
}

/** Counts the points under `prefix` until there are `count` or the deadline passes. */
async function countWhenComplete(influx: Influxdb, prefix: string, count: number): Promise<number> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const series = await influx.query(`SELECT count(value) FROM ${measurements(prefix)}`);
    const n = series.reduce((sum, s) => sum + Number(s.values[0]?.[1] ?? 0), 0);
    if (n >= count || Date.now() > deadline) return n;
    await sleep(250);
  }
}

/** The rows of `series` as samples: measurement, tags (the non-null tag columns), time, value. */
function* samples(series: InfluxSeries[]): Generator<{ key: string; value: unknown }> {
  for (const s of series) {
    const time = s.columns.indexOf("time");
    const value = s.columns.indexOf("value");
    for (const row of s.values) {
      const tags: Record<string, string> = {};
      s.columns.forEach((column, i) => {
        if (i !== time && i !== value && row[i] !== null) tags[column] = String(row[i]);
      });
      yield { key: sampleKey(s.name, tags, Number(row[time])), value: row[value] };
    }
  }
}

describe(`e2e influxdb opentsdb service (${runtime})`, () => {
  let influx: Influxdb;
  before(async () => {
    influx = await startInfluxdb();
  });
  after(async () => {
    await influx?.dispose();
  });

  const cases = [
    { name: "telnet", transport: undefined },
    { name: "HTTP /api/put", transport: () => httpTransport({ maxBodyBytes: 256 * 1024 }) },
  ];
  for (const { name, transport } of cases) {
    it(`delivers 100,000 points exactly over ${name}`, async () => {
      const prefix = uniquePrefix(`influx${transport ? "http" : "telnet"}`);
      // Seconds: InfluxDB misplaces the milliseconds of a 13-digit timestamp (see below).
      const base = Math.floor(Date.now() / 1000) - 300 - POINTS_PER_SERIES;
      const client = new Client("127.0.0.1", {
        port: influx.opentsdbPort,
        hostTag: "e2e",
        transport: transport?.(),
      });
      const expected = new Map<string, number>();
      for (let j = 0; j < POINTS_PER_SERIES; j++) {
        for (let m = 0; m < METRICS; m++) {
          for (let t = 0; t < TAG_SETS.length; t++) {
            const metric = `${prefix}.m${m}`;
            const value = valueOf(m * TAG_SETS.length + t, j);
            client.send(metric, value, TAG_SETS[t], base + j);
            const tags: Record<string, string> = { host: "e2e" };
            for (const [k, v] of Object.entries(TAG_SETS[t])) tags[k] = String(v);
            expected.set(sampleKey(metric, tags, (base + j) * 1000), Number(value));
          }
        }
        if (j % 50 === 49) await sleep(0);
      }
      assert.equal(expected.size, TOTAL);
      const stats = await client.close({ timeoutMs: 60_000 });
      assert.equal(stats.sent, TOTAL, JSON.stringify(stats));
      assert.equal(stats.dropped.total, 0);
      assert.equal(stats.serverErrors, 0, String(stats.lastError));
      assert.equal(stats.lastError, undefined, String(stats.lastError));

      assert.equal(await countWhenComplete(influx, prefix, TOTAL), TOTAL, "points stored");
      let checked = 0;
      for (let m = 0; m < METRICS; m++) {
        const series = await influx.query(`SELECT * FROM "${prefix}.m${m}"`);
        for (const { key, value } of samples(series)) {
          assert.ok(expected.has(key), `unexpected point ${key}`);
          // InfluxDB stores every value as a float64: bigints and integers come back as numbers.
          assert.equal(value, expected.get(key), key);
          expected.delete(key);
          checked++;
        }
      }
      assert.equal(checked, TOTAL);
      assert.equal(expected.size, 0, "every point arrived once");
    });
  }

  it("HTTP with requests in flight: the value sent last for a cell is the one stored", async () => {
    // InfluxDB keeps the last write of a series and timestamp, so a cell whose points were
    // reordered on the way would show an earlier round's value.
    const prefix = uniquePrefix("influxcells");
    const base = Math.floor(Date.now() / 1000) - 600;
    const client = new Client("127.0.0.1", {
      port: influx.opentsdbPort,
      hostTag: "e2e",
      dedup: false,
      transport: httpTransport({ maxInFlight: 8 }),
    });
    const series = 200;
    const seconds = 5;
    const rounds = 10;
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < series; i++) {
        for (let t = 0; t < seconds; t++) {
          client.send(`${prefix}.cells`, r * 10_000 + i * 10 + t, { s: i }, base + t);
        }
      }
      await sleep(0);
    }
    const stats = await client.close({ timeoutMs: 60_000 });
    assert.equal(stats.sent, series * seconds * rounds, JSON.stringify(stats));
    assert.equal(stats.dropped.total, 0);
    assert.equal(await countWhenComplete(influx, prefix, series * seconds), series * seconds, "cells stored");
    const rows = await influx.query(`SELECT "value", "s" FROM "${prefix}.cells"`);
    let checked = 0;
    for (const row of rows[0].values) {
      const [time, value, s] = row as [number, number, string];
      const t = time / 1000 - base;
      assert.equal(value, (rounds - 1) * 10_000 + Number(s) * 10 + t, `series ${s}, second ${t}`);
      checked++;
    }
    assert.equal(checked, series * seconds);
  });

  it("differs from VictoriaMetrics as README says", async () => {
    const prefix = uniquePrefix("influxdiff");
    const now = Math.floor(Date.now() / 1000) - 60;
    const ms = now * 1000 + 123;

    // Telnet: a 13-digit timestamp's milliseconds are stored as microseconds; `version` is
    // answered with a line; a bad line is skipped and the connection stays open; the last of
    // two points with the same series and time wins; more than 8 tags are taken.
    const socket = net.connect({ host: "127.0.0.1", port: influx.opentsdbPort });
    let answer = "";
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => answer += d);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("error", reject);
    });
    socket.write(
      [
        `put ${prefix}.ms ${ms} 7 a=b`,
        "version",
        "put garbage",
        `put ${prefix}.dup ${now} 1 a=b`,
        `put ${prefix}.dup ${now} 2 a=b`,
        `put ${prefix}.int ${now} 42 a=b`,
        `put ${prefix}.nine ${now} 1 a=1 b=2 c=3 d=4 e=5 f=6 g=7 h=8 i=9`,
        "",
      ].join("\n"),
    );
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const n = (await influx.query(`SELECT count(value) FROM ${measurements(prefix)}`))
        .reduce((sum, s) => sum + Number(s.values[0]?.[1] ?? 0), 0);
      if (n >= 4 && answer.includes("proxy")) break;
      await sleep(100);
    }
    socket.destroy();
    assert.match(answer, /InfluxDB TSDB proxy/);
    const msRows = await influx.query(`SELECT value FROM "${prefix}.ms"`, "ns");
    assert.deepEqual(msRows[0]?.values, [[now * 1e9 + 123_000, 7]], "ms land as µs");
    assert.deepEqual((await influx.query(`SELECT value FROM "${prefix}.dup"`))[0]?.values, [[now * 1000, 2]]);
    assert.equal((await influx.query(`SELECT * FROM "${prefix}.nine"`))[0]?.values.length, 1);
    const types = await influx.query(`SHOW FIELD KEYS FROM "${prefix}.int"`);
    assert.deepEqual(types[0]?.values, [["value", "float"]], "an integer is stored as a float");

    // HTTP: 204 and no body even with ?details; one bad point refuses the whole body with a
    // plain-text 400.
    const url = `http://127.0.0.1:${influx.opentsdbPort}/api/put?details`;
    const post = async (body: unknown) => {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", connection: "close" },
        body: JSON.stringify(body),
      });
      return { status: response.status, text: await response.text() };
    };
    assert.deepEqual(await post([{ metric: `${prefix}.http`, timestamp: now, value: 1, tags: { a: "b" } }]), {
      status: 204,
      text: "",
    });
    const refused = await post([
      { metric: `${prefix}.good`, timestamp: now, value: 1, tags: { a: "b" } },
      { metric: `${prefix}.bad`, timestamp: now, value: "x", tags: { a: "b" } },
    ]);
    assert.equal(refused.status, 400);
    assert.match(refused.text, /json array decode error/);
    assert.deepEqual(
      await influx.query(`SELECT * FROM "${prefix}.good"`),
      [],
      "the good point was not stored",
    );
  });
});
