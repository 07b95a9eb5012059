// An outage against a real VictoriaMetrics, with and without the disk spool.
//
// Two clients stream at the same time, in bursts of 500 points with qsize
// 10,000: one with `spool: { mode: "overflow" }`, one without. The server is
// stopped for 100,000 points of each, then started again: the outage holds
// ten times qsize. The pace does not matter to what is checked (the outage
// is placed by count, below), so the bursts come as fast as a 10 ms pause
// between them allows.
//
// The outage is placed by count and by the clients' own progress, never by
// a clock: before the stop both clients have flushed and the server has
// stored every point (so no bytes are in flight in kernel buffers, the
// at-most-once window of telnet that tests/e2e/restart_test.ts measures);
// outage points are sent only after both clients have seen the disconnect.
// Then with the spool every point arrives, exactly; without it the queue
// drops the oldest, and sent + dropped = accepted with every sent point
// stored.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, type ClientStats } from "../../mod.ts";
import { startTsdb, type Tsdb } from "../../scripts/tsdb.ts";
import { waitFor } from "../helpers/servers.ts";
import { counter, exportWhenComplete, nameMatch, runtime, uniquePrefix } from "../helpers/tsdb_env.ts";

const QSIZE = 10_000;
const CHUNK = 500; // points per burst, then a 10 ms pause: up to ~50,000 points/s
const PAUSE_MS = 10;
const BEFORE = 10_000;
const OUTAGE = 100_000;
const AFTER = 10_000;
const TOTAL = BEFORE + OUTAGE + AFTER;
const LANES = 500; // series per metric: LANES points share each second

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe(`e2e spool (${runtime})`, () => {
  // Its own server: this test stops and starts it.
  let tsdb: Tsdb;
  let dir: string;
  before(async () => {
    tsdb = await startTsdb();
    dir = fs.mkdtempSync(join(tmpdir(), "potsdb-e2e-spool-"));
  });
  after(async () => {
    await tsdb?.dispose();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("a 100,000-point outage: with the overflow spool every point arrives; without, the drops are counted", async () => {
    const prefixes = [uniquePrefix("spooled"), uniquePrefix("plain")];
    const base = Math.floor(Date.now() / 1000) - Math.ceil(TOTAL / LANES) - 60;
    const options = {
      dedup: false,
      port: tsdb.telnetPort,
      hostTag: "e2e",
      qsize: QSIZE,
      reconnect: { initialMs: 50, maxMs: 250 },
    };
    const spooled = new Client("127.0.0.1", { ...options, spool: { dir, mode: "overflow" } });
    const plain = new Client("127.0.0.1", options);
    const clients = [
      { client: spooled, metric: `${prefixes[0]}.seq` },
      { client: plain, metric: `${prefixes[1]}.seq` },
    ];
    let disconnects = 0;
    for (const { client } of clients) client.addEventListener("disconnect", () => disconnects++);
    let seq = 0;
    let peakSpooled = 0;
    async function stream(points: number): Promise<void> {
      for (const end = seq + points; seq < end;) {
        for (let i = 0; i < CHUNK; i++, seq++) {
          for (const { client, metric } of clients) {
            client.send(metric, seq, { lane: String(seq % LANES) }, base + Math.floor(seq / LANES));
          }
        }
        peakSpooled = Math.max(peakSpooled, spooled.stats().spooled);
        await sleep(PAUSE_MS);
      }
    }
    const ingested = async () => counter(await tsdb.metrics(), "vm_rows_inserted_total", 'type="opentsdb"');

    try {
      await stream(BEFORE);
      await Promise.all(clients.map(({ client }) => client.flush({ timeoutMs: 30_000 })));
      // Everything written so far is stored before the stop: nothing in flight.
      for (let i = 0; i < 300 && (await ingested()) < 2 * BEFORE; i++) await sleep(100);
      assert.equal(await ingested(), 2 * BEFORE, "the server stored the first points");
      await tsdb.stop();
      await waitFor(() => disconnects >= 2, 30_000, "both clients to see the server go");
      await stream(OUTAGE);
      const during = clients.map(({ client }) => client.stats());
      await tsdb.start();
      await stream(AFTER);
      const stats: ClientStats[] = [];
      for (const { client } of clients) stats.push(await client.close({ timeoutMs: 60_000 }));
      const [withSpool, without] = stats;

      for (const s of stats) {
        assert.equal(s.accepted, TOTAL);
        assert.equal(s.accepted, s.sent + s.queued + s.dropped.total, JSON.stringify(s));
        assert.equal(s.queued, 0, "all delivered or counted at close");
      }
      assert.equal(withSpool.dropped.total, 0, JSON.stringify(withSpool));
      assert.equal(withSpool.sent, TOTAL);
      assert.ok(peakSpooled > 0 && during[0].spooled > 0, "the outage went to disk");
      assert.ok(without.dropped.queueFull > 0, "without a spool the full queue dropped");
      assert.equal(without.sent + without.dropped.total, TOTAL);

      const count = async (prefix: string, expected: number) => {
        const series = await exportWhenComplete(tsdb, nameMatch(prefix), expected, 60_000);
        const seen = new Set<number>();
        for (const s of series) for (const v of s.values) seen.add(v);
        return seen;
      };
      const got = await count(prefixes[0], TOTAL);
      const missing: number[] = [];
      for (let i = 0; i < TOTAL && missing.length < 10; i++) if (!got.has(i)) missing.push(i);
      const plainGot = await count(prefixes[1], without.sent);
      console.log(
        `# spool outage (${runtime}): ${TOTAL} points per client, ${OUTAGE} during the outage, qsize ${QSIZE}; ` +
          `with the spool: ${got.size} stored, peak ${peakSpooled} on disk, dropped ${withSpool.dropped.total}; ` +
          `without: ${plainGot.size} stored, dropped ${without.dropped.total} (queueFull ${without.dropped.queueFull})`,
      );
      assert.deepEqual(missing, [], "every point of the spooled client arrived");
      assert.equal(got.size, TOTAL);
      assert.equal(plainGot.size, without.sent, "without a spool, every point sent (not dropped) arrived");
    } finally {
      for (const { client } of clients) await client.close({ timeoutMs: 0 });
    }
  });
});
