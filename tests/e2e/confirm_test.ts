// A clean close() confirms (issue #21) against real servers: InfluxDB 1.6 answers `version`
// ("InfluxDB TSDB proxy", with no line ending, issue #24), so every point of a clean close is
// confirmed and none is a server error; VictoriaMetrics never answers, so close() waits for
// no answer and every point stays unconfirmed, as before.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Client, type ClientStats } from "../../mod.ts";
import { type Influxdb, startInfluxdb } from "../../scripts/influxdb.ts";
import { runtime, uniquePrefix, useTsdb } from "../helpers/tsdb_env.ts";

const N = 100_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function balanced(s: ClientStats): void {
  assert.equal(s.accepted, s.sent + s.queued + s.dropped.total, JSON.stringify(s));
}

/** Sends N points of one series, one a second, ending a minute ago. */
function sendAll(client: Client, metric: string): void {
  const base = Math.floor(Date.now() / 1000) - 60 - N;
  for (let i = 0; i < N; i++) client.send(metric, i, { run: "confirm" }, base + i);
}

describe(`e2e: close() confirms against InfluxDB 1.6 (${runtime})`, () => {
  let influx: Influxdb;
  before(async () => {
    influx = await startInfluxdb();
  });
  after(async () => {
    await influx?.dispose();
  });

  it("100,000 points then close(): confirmed 100,000, unconfirmed 0, all read back", async () => {
    const metric = `${uniquePrefix("confirm")}.seq`;
    const client = new Client("127.0.0.1", { port: influx.opentsdbPort, hostTag: false });
    const serverErrors: string[] = [];
    client.addEventListener("server-error", (e) => serverErrors.push(e.detail.message));
    sendAll(client, metric);
    const s = await client.close({ timeoutMs: 60_000 });
    balanced(s);
    assert.deepEqual(serverErrors, []);
    assert.equal(s.serverErrors, 0);
    assert.equal(s.lastError, undefined, String(s.lastError));
    assert.equal(s.sent, N);
    assert.equal(s.confirmed, N, JSON.stringify(s));
    assert.equal(s.unconfirmed, 0);
    assert.equal(s.replayed, 0);
    const deadline = Date.now() + 60_000;
    let stored = 0;
    while (Date.now() < deadline) {
      const series = await influx.query(`SELECT count(value) FROM "${metric}"`);
      stored = Number(series[0]?.values[0]?.[1] ?? 0);
      if (stored >= N) break;
      await sleep(250);
    }
    assert.equal(stored, N, "every point read back");
  });

  it("flush({ confirmed: true }) resolves once the answer came: the points are confirmed", async () => {
    const metric = `${uniquePrefix("confirmflush")}.seq`;
    const client = new Client("127.0.0.1", { port: influx.opentsdbPort, hostTag: false });
    try {
      sendAll(client, metric);
      await client.flush({ confirmed: true, timeoutMs: 60_000 });
      const s = client.stats();
      assert.equal(s.confirmed, N, JSON.stringify(s));
      assert.equal(s.serverErrors, 0);
    } finally {
      await client.close();
    }
  });
});

describe(`e2e: close() against VictoriaMetrics, which never answers (${runtime})`, () => {
  const lease = useTsdb();

  it("waits for no answer: every point written, none confirmed", async () => {
    const metric = `${uniquePrefix("confirmvm")}.seq`;
    const client = new Client("127.0.0.1", { port: lease.tsdb.telnetPort, hostTag: false });
    sendAll(client, metric);
    const start = performance.now();
    const s = await client.close({ timeoutMs: 60_000 });
    console.log(`# ${runtime}: close() after ${N} points took ${Math.round(performance.now() - start)} ms`);
    balanced(s);
    assert.equal(s.sent, N);
    assert.equal(s.confirmed, 0);
    assert.equal(s.unconfirmed, N);
    assert.equal(s.serverErrors, 0);
  });
});
