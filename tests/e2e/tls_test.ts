// TLS end to end: stunnel4 terminates TLS in front of VictoriaMetrics' telnet
// port, with a certificate authority and server certificate made by openssl
// for this run. Proves exact arrival over TLS, that a server certificate from
// an untrusted authority is refused (counted, with the certificate error as
// cause, nothing sent), and that a restart of the TLS terminator is survived
// with the loss bounded by what was in flight (see restart_test.ts).

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { Client, ConnectError } from "../../mod.ts";
import { hasOpenssl, makeCerts, type TestCerts } from "../helpers/certs.ts";
import { waitFor } from "../helpers/servers.ts";
import { startStunnel, type Stunnel, stunnelBinary } from "../helpers/stunnel.ts";
import { assertRestartLoss, countArrivals, markReconnect, seqStream } from "../helpers/restart.ts";
import {
  exportWhenComplete,
  leaseTsdb,
  nameMatch,
  runtime,
  sampleCount,
  sampleKey,
  type TsdbLease,
  uniquePrefix,
} from "../helpers/tsdb_env.ts";

const SERIES = 10;
const POINTS_PER_SERIES = 2000;
// Restart: as in restart_test.ts, a steady stream; LANES points share each second.
const CHUNK = 200;
const PAUSE_MS = 5;
const BEFORE_STOP_MS = 1500;
const DOWN_MS = 500;
const AFTER_RECONNECT_MS = 1500;
const MAX_POINTS = 400_000;
const LANES = 500;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const missing = [!stunnelBinary() && "stunnel4", !hasOpenssl() && "openssl"].filter(Boolean);
if (missing.length > 0 && process.getuid?.() === 0) {
  throw new Error(
    `${missing.join(" and ")} missing: .ci/run installs them (apt-get install -y stunnel4 openssl)`,
  );
}
const skip = missing.length > 0
  ? `${missing.join(" and ")} not installed (apt-get install -y stunnel4 openssl)`
  : false;

describe(`e2e tls through stunnel (${runtime})`, { skip }, () => {
  let lease: TsdbLease;
  let certs: TestCerts;
  let tunnel: Stunnel;
  before(async () => {
    lease = await leaseTsdb();
    certs = makeCerts();
    tunnel = await startStunnel(
      certs.dir,
      { host: lease.tsdb.host, port: lease.tsdb.telnetPort },
      certs.serverCertFile,
      certs.serverKeyFile,
    );
  });
  after(async () => {
    await tunnel?.stop();
    certs?.dispose();
    await lease?.release();
  });

  it("delivers every point exactly, over TLS with the run's CA", async () => {
    const prefix = uniquePrefix("tls");
    const base = Math.floor(Date.now() / 1000) - 300 - POINTS_PER_SERIES;
    const client = await Client.connect("127.0.0.1", {
      port: tunnel.port,
      hostTag: "e2e",
      tls: { ca: certs.ca },
    });
    const expected = new Map<string, number>();
    for (let j = 0; j < POINTS_PER_SERIES; j++) {
      for (let s = 0; s < SERIES; s++) {
        const value = s % 2 ? j * 1000 + s : -(j + 1 + s / 8);
        client.send(`${prefix}.m`, value, { s }, base + j);
        expected.set(sampleKey(`${prefix}.m`, { host: "e2e", s: String(s) }, (base + j) * 1000), value);
      }
      if (j % 100 === 99) await sleep(0);
    }
    const stats = await client.close({ timeoutMs: 20_000 });
    const total = SERIES * POINTS_PER_SERIES;
    assert.equal(stats.sent, total, JSON.stringify(stats));
    assert.equal(stats.dropped.total, 0);
    assert.equal(stats.connectFailures, 0, String(stats.lastError));
    assert.equal(stats.lastError, undefined, String(stats.lastError));

    const exported = await exportWhenComplete(lease.tsdb, nameMatch(prefix), total);
    assert.equal(sampleCount(exported), total);
    for (const s of exported) {
      for (let i = 0; i < s.values.length; i++) {
        const key = sampleKey(s.metric.__name__, s.metric, s.timestamps[i]);
        assert.equal(s.values[i], expected.get(key), key);
        expected.delete(key);
      }
    }
    assert.equal(expected.size, 0, "every point arrived once");
  });

  it("refuses a certificate from another CA: counted, the cause a certificate error, nothing sent", async () => {
    const prefix = uniquePrefix("tlsca");
    const client = new Client("127.0.0.1", {
      port: tunnel.port,
      hostTag: "e2e",
      tls: { ca: certs.otherCa },
      reconnect: { initialMs: 10, maxMs: 50 },
    });
    client.send(`${prefix}.m`, 1, { a: "b" });
    await waitFor(() => client.stats().connectFailures >= 3, 30_000, "three refused connects");
    const stats = await client.close({ timeoutMs: 0 });
    assert.equal(stats.sent, 0);
    assert.equal(stats.dropped.closed, 1, "the point is counted as dropped at close");
    assert.ok(stats.lastError instanceof ConnectError, String(stats.lastError));
    assert.equal(stats.lastError.code, "CONNECT_FAILED");
    const cause = stats.lastError.cause as Error;
    assert.ok(cause instanceof Error, "the runtime's error is the cause");
    assert.match(cause.message, /certificate|issuer/i);

    await assert.rejects(
      Client.connect("127.0.0.1", { port: tunnel.port, hostTag: false, tls: { ca: certs.otherCa } }),
      (e) => e instanceof ConnectError && e.code === "CONNECT_FAILED" && e.cause instanceof Error,
    );
    assert.equal(sampleCount(await lease.tsdb.exportSeries(nameMatch(prefix))), 0, "nothing arrived");
  });

  it("survives a restart of stunnel: everything sent after it arrives, the loss within what was in flight", async () => {
    const prefix = uniquePrefix("tlsrestart");
    const metric = `${prefix}.seq`;
    const base = Math.floor(Date.now() / 1000) - Math.ceil(MAX_POINTS / LANES) - 60;
    const client = new Client("127.0.0.1", {
      port: tunnel.port,
      hostTag: "e2e",
      tls: { ca: certs.ca },
      reconnect: { initialMs: 50, maxMs: 250 },
    });
    const stream = seqStream(client, {
      metric,
      base,
      lanes: LANES,
      chunk: CHUNK,
      pauseMs: PAUSE_MS,
      maxPoints: MAX_POINTS,
    });
    const marks = markReconnect(client, () => stream.seq);

    let total = 0;
    let stats;
    let storedBeforeStop = 0;
    try {
      await sleep(BEFORE_STOP_MS);
      // What the server has stored of this stream (it only grows): the lines in flight at the
      // stop are at most those written before the disconnect minus these.
      storedBeforeStop = sampleCount(await lease.tsdb.exportSeries(nameMatch(prefix)));
      await tunnel.stop();
      await sleep(DOWN_MS);
      await tunnel.start();
      await waitFor(() => marks.reconnectSeq !== undefined, 15_000, "the reconnect");
      await sleep(AFTER_RECONNECT_MS);
    } finally {
      total = await stream.stop();
      stats = await client.close({ timeoutMs: 20_000 });
    }

    assert.ok(total < MAX_POINTS, "the stream ran as long as planned");
    assert.equal(stats.accepted, total);
    assert.equal(stats.dropped.total, 0, JSON.stringify(stats));
    assert.equal(stats.sent, total, "everything was written in the end");
    assert.ok(stats.reconnects >= 1, "reconnected");

    const bound = marks.sentAtDisconnect - storedBeforeStop;
    const exported = await exportWhenComplete(lease.tsdb, nameMatch(prefix), total - bound, 30_000);
    const a = countArrivals(exported, total);
    console.log(
      `# tls restart (${runtime}): ${total} points, disconnect at #${marks.disconnectSeq}, ` +
        `reconnect at #${marks.reconnectSeq}, ${stats.connectFailures} refused connects while down; lost ${a.lost}, ` +
        `in-flight bound ${bound} (written ${marks.sentAtDisconnect} − stored ${storedBeforeStop})`,
    );
    assertRestartLoss(a, marks, bound);
  });
});
