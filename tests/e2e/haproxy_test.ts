// Behind a TCP load balancer: HAProxy (`mode tcp`, health checks every 200 ms)
// in front of three InfluxDB 1.6 TSDs, thirty clients given only HAProxy's
// address, each sending ten points a second (300 points/s over the fleet).
//
// 1. A rolling restart: the three TSDs are stopped and started one after
//    another while the clients stream; then again with each TSD drained
//    first (HAProxy takes it out and closes its sessions, then it stops), where
//    a client whose TSDs answer probes must lose nothing.
// 2. No backend at all: the three are stopped together for OUTAGE_MS. HAProxy
//    then accepts every connection and closes it at once; the clients must
//    keep to their reconnect backoff (attempts counted against what the
//    backoff allows in the measured outage), and what they kept is delivered
//    when the TSDs are back.
//
// What is asserted in all: nothing is dropped, and every point arrives except
// points written on a connection that was cut (its TSD stopped, or HAProxy
// closed it for want of a backend); on such a connection what is lost is a
// tail of what was written to it, never a point before one that arrived: the
// TSD stores what it reads in order, so only what was in flight at the cut can
// be missing. In scenario 2, a client that had answers to its `version` probes
// (InfluxDB answers "InfluxDB TSDB proxy", with no newline) before the outage
// loses nothing it sent during the outage: what it wrote then went only to
// connections HAProxy closed at once, and an address known to answer gets
// what it did not confirm written again. The clients probe every second
// (heartbeatMs: 1000) so that they have answers before a restart or the
// outage. The figures are printed on lines starting with
// "haproxy (<runtime>): " and "haproxy no backend (<runtime>): ".
//
// InfluxDB 1.6 never finishes a SIGTERM while a telnet connection is open: it
// stops storing, keeps the connection and still answers `version` (so a plain
// stop can lose lines it confirmed). HAProxy's `on-marked-down
// shutdown-sessions` cuts such connections once the health check fails, and
// the helper kills the TSD 2 s after its SIGTERM.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { Client, type ClientStats } from "../../mod.ts";
import { type InfluxTsd, startInfluxTsd } from "../helpers/influx_tsd.ts";
import { type Haproxy, startHaproxy } from "../helpers/haproxy.ts";
import { HANG_GUARD_MS, settles, waitFor } from "../helpers/servers.ts";
import { runtime, uniquePrefix } from "../helpers/tsdb_env.ts";
import { cutFigures, cutRanges, lostOutsideCuts, track, type Tracked } from "../helpers/cuts.ts";

const CLIENTS = 30;
const TICK_MS = 100; // every client sends one point per tick: 300 points/s over the fleet
// The issue asks for 20 s with no backend at the default backoff (cap 30 s: 9 attempts at most in
// 20 s). 6 s with the cap scaled down to 1 s shows the same property with more backoff steps in it
// (50, 100, 200, 400 ms, then 500 ms at the least between attempts: 15 at most).
const OUTAGE_MS = 6000;
const RECONNECT = { initialMs: 100, maxMs: 1000, factor: 2 };
const HEARTBEAT_MS = 1000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The most connection attempts a backoff allows in `windowMs`: one at once, then one after
 * each delay, every delay at its least (half its ceiling), starting from the shortest.
 */
function attemptsAllowed(
  windowMs: number,
  { initialMs, maxMs, factor }: { initialMs: number; maxMs: number; factor: number },
): number {
  let attempts = 1;
  for (let i = 0, waited = 0;; i++) {
    waited += Math.min(maxMs, initialMs * factor ** i) / 2;
    if (waited > windowMs) return attempts;
    attempts++;
  }
}

/** A fleet of clients streaming `seq` = 0, 1, 2, … each tick, one series per client. */
class Stream {
  readonly prefix = uniquePrefix("haproxy");
  readonly metric = `${this.prefix}.points`;
  readonly base = Math.floor(Date.now() / 1000) - 3600; // a second per point, an hour back
  readonly fleet: Tracked[];
  seq = 0;
  #running = true;
  #loop: Promise<void>;

  constructor(port: number) {
    const fleet = Array.from(
      { length: CLIENTS },
      () =>
        track(
          new Client("127.0.0.1", { port, hostTag: false, reconnect: RECONNECT, heartbeatMs: HEARTBEAT_MS }),
        ),
    );
    this.fleet = fleet;
    this.#loop = (async () => {
      while (this.#running) {
        fleet.forEach((t, k) =>
          t.client.send(this.metric, this.seq, { client: `c${k}` }, this.base + this.seq)
        );
        this.seq++;
        await sleep(TICK_MS);
      }
    })();
  }

  /** Waits until `n` more ticks were sent (a count, so a slow machine only takes longer). */
  ticks(n: number, what: string): Promise<void> {
    const target = this.seq + n;
    return waitFor(() => this.seq >= target, HANG_GUARD_MS, what);
  }

  /** Stops sending and closes every client (each delivers what it holds first). */
  async close(): Promise<ClientStats[]> {
    this.#running = false;
    await this.#loop;
    return await settles(
      Promise.all(this.fleet.map((t) => t.client.close({ timeoutMs: HANG_GUARD_MS }))),
      "close()",
    );
  }
}

/** Copies of each point over the TSDs: client index → seq → count. */
async function readBack(tsds: InfluxTsd[], stream: Stream, total: number): Promise<Uint16Array[]> {
  const copies = stream.fleet.map(() => new Uint16Array(total));
  for (const tsd of tsds) {
    for (const series of await tsd.query(`SELECT "value", "client" FROM "${stream.metric}"`)) {
      const [value, client] = [series.columns.indexOf("value"), series.columns.indexOf("client")];
      for (const row of series.values) {
        const k = Number(String(row[client]).slice(1));
        const seq = Number(row[value]);
        assert.ok(k >= 0 && k < CLIENTS && Number.isInteger(seq) && seq >= 0 && seq < total, `row ${row}`);
        copies[k][seq]++;
      }
    }
  }
  return copies;
}

interface Delivery {
  points: number;
  lost: number;
  /** Copies beyond the first (a point on two TSDs); InfluxDB keeps one of two copies on one TSD. */
  duplicated: number;
  /** Points written on connections that were cut: the most that could be lost. */
  onCut: number;
}

/**
 * Reads back until every point that must arrive is there, then checks that each lost point
 * was written on a cut connection, in the tail of what that connection carried.
 */
async function checkDelivery(
  tsds: InfluxTsd[],
  stream: Stream,
  stats: ClientStats[],
): Promise<{ delivery: Delivery; copies: Uint16Array[] }> {
  const total = stream.seq;
  for (const s of stats) {
    assert.equal(s.accepted, total);
    assert.equal(s.dropped.total, 0, JSON.stringify(s.dropped));
    assert.equal(s.accepted, s.sent + s.queued + s.dropped.total);
    assert.equal(s.queued, 0);
  }
  const missingRequired = (copies: Uint16Array[]) =>
    copies.flatMap((c, k) => lostOutsideCuts(stream.fleet[k], c).map((seq) => `c${k}@${seq}`));
  let copies = await readBack(tsds, stream, total);
  const deadline = Date.now() + HANG_GUARD_MS;
  while (missingRequired(copies).length > 0 && Date.now() < deadline) {
    await sleep(250);
    copies = await readBack(tsds, stream, total);
  }
  await sleep(500); // a last look, for points of cut connections still on their way
  copies = await readBack(tsds, stream, total);
  const required = missingRequired(copies);
  assert.deepEqual(required.slice(0, 10), [], `${required.length} points lost outside a cut connection`);
  const d: Delivery = { points: CLIENTS * total, lost: 0, duplicated: 0, onCut: 0 };
  copies.forEach((c, k) => {
    const f = cutFigures(stream.fleet[k], c);
    assert.deepEqual(f.notTail, [], `c${k}: a loss before the tail of a cut connection`);
    d.lost += f.lost;
    d.duplicated += f.duplicated;
    d.onCut += f.onCut;
  });
  return { delivery: d, copies };
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** Confirmed and replayed over the fleet: whether the TSDs' answers to `version` were taken as such. */
function answers(stats: ClientStats[]): string {
  return `confirmed ${sum(stats.map((s) => s.confirmed))}, replayed ${sum(stats.map((s) => s.replayed))}`;
}

/** Process CPU time in ms, where the runtime measures it. */
function cpuMs(): number | undefined {
  if (typeof process.cpuUsage !== "function") return undefined;
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

describe(`e2e behind HAProxy, three InfluxDB TSDs (${runtime})`, { timeout: 6 * HANG_GUARD_MS }, () => {
  let tsds: InfluxTsd[] = [];
  let haproxy: Haproxy | undefined;

  before(async () => {
    const started = await Promise.allSettled([0, 1, 2].map(() => startInfluxTsd()));
    tsds = started.flatMap((s) => s.status === "fulfilled" ? [s.value] : []);
    const failed = started.find((s) => s.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    haproxy = await startHaproxy(tsds.map((t) => ({ host: t.host, port: t.opentsdbPort })));
  });

  after(async () => {
    await haproxy?.dispose();
    await Promise.all(tsds.map((t) => t.dispose()));
  });

  const serversAre = async (state: string, names: string[]) => {
    const servers = await haproxy!.servers();
    return names.every((n) => servers[n] === state);
  };
  const waitServers = async (state: string, names: string[]) => {
    const deadline = Date.now() + HANG_GUARD_MS;
    while (!(await serversAre(state, names))) {
      if (Date.now() > deadline) throw new Error(`HAProxy never saw ${names.join(", ")} ${state}`);
      await sleep(50);
    }
  };
  const all = ["tsd0", "tsd1", "tsd2"];
  // Every TSD running and in service, whatever an earlier scenario that failed half-way left.
  const allUp = async () => {
    await Promise.all(tsds.map((t) => t.start()));
    for (const name of all) await haproxy!.ready(name);
    await waitServers("UP", all);
  };

  // A rolling restart: each TSD stopped (SIGTERM), its clients cut by HAProxy once the health check
  // fails, started again. With `drain`, HAProxy takes the TSD out and closes its sessions first, and
  // the TSD is stopped once its clients have moved, as a deploy through a load balancer should do.
  const rollingRestart = async (drain: boolean) => {
    await allUp();
    const stream = new Stream(haproxy!.port);
    let stats: ClientStats[];
    let confirmedBefore: number[] = [];
    try {
      await waitFor(() => stream.fleet.every((t) => t.conns.length > 0), HANG_GUARD_MS, "all connected");
      await stream.ticks(3 * HEARTBEAT_MS / TICK_MS, "points flowing, probes answered if they are");
      confirmedBefore = stream.fleet.map((t) => t.client.stats().confirmed);
      for (let j = 0; j < tsds.length; j++) {
        const name = `tsd${j}`;
        if (drain) {
          await haproxy!.drain(name);
          await stream.ticks(10, `points after ${name} was drained`);
          await tsds[j].stop();
        } else {
          await tsds[j].stop();
          await waitServers("DOWN", [name]);
        }
        await stream.ticks(5, `points with ${name} down`);
        await tsds[j].start();
        if (drain) await haproxy!.ready(name);
        await waitServers("UP", [name]);
        await stream.ticks(10, `points after ${name} is back`);
      }
    } finally {
      stats = await stream.close();
    }
    const { delivery: d, copies } = await checkDelivery(tsds, stream, stats);
    const reconnects = sum(stats.map((s) => s.reconnects));
    const cutConnections = sum(stream.fleet.map((t) => cutRanges(t).length));
    assert.ok(cutConnections >= 1, "a restart cut some connection");
    console.log(
      `haproxy (${runtime}): ${drain ? "drained " : ""}rolling restart of 3 TSDs, ${d.points} points from ` +
        `${CLIENTS} clients; lost ${d.lost} (of ${d.onCut} written on ${cutConnections} cut connections), ` +
        `duplicated ${d.duplicated}, ${answers(stats)}, reconnects ${reconnects}, longest gap ` +
        `${Math.max(...stream.fleet.map((t) => t.longestGapMs))} ms; ` +
        `${confirmedBefore.filter((n) => n > 0).length} of ${CLIENTS} clients had answers before`,
    );
    return { copies, confirmedBefore };
  };

  it("a rolling restart of the three TSDs: every point arrives but the tails of cut connections", async () => {
    await rollingRestart(false);
  });

  it("a drained rolling restart: a client whose TSDs answer probes loses nothing", async () => {
    const { copies, confirmedBefore } = await rollingRestart(true);
    // Every TSD was running, and storing, when HAProxy cut its sessions: what it confirmed it stored,
    // and what it did not confirm is written again.
    const lost = copies.flatMap((c, k) =>
      confirmedBefore[k] > 0 && c.includes(0) ? [`c${k}@${c.indexOf(0)}`] : []
    );
    assert.deepEqual(lost, [], "points lost by clients whose TSDs answer probes (first lost of each)");
  });

  it("no backend: attempts keep to the backoff, CPU stays low, what was kept is delivered", async () => {
    await allUp();
    const stream = new Stream(haproxy!.port);
    let stats: ClientStats[];
    let windowMs = 0;
    let attempts: number[] = [];
    let sessions = 0;
    let cpu: number | undefined;
    let keptAtReturn = 0;
    let confirmedBefore: number[] = [];
    // Points sent while HAProxy had no backend: [open, close) of every client's stream.
    const outage = { open: 0, close: 0 };
    try {
      await waitFor(() => stream.fleet.every((t) => t.conns.length > 0), HANG_GUARD_MS, "all connected");
      await stream.ticks(3 * HEARTBEAT_MS / TICK_MS, "points flowing, probes answered if they are");
      confirmedBefore = stream.fleet.map((t) => t.client.stats().confirmed);
      const stopping = Promise.all(tsds.map((t) => t.stop()));
      await waitServers("DOWN", all);
      // The window opens once HAProxy has no backend: from here it accepts and closes at once.
      outage.open = stream.seq;
      const attemptsBefore = stream.fleet.map((t) => t.attempts);
      const sessionsBefore = await haproxy!.sessions();
      const cpuBefore = cpuMs();
      const down = Date.now();
      await stopping;
      await sleep(Math.max(0, OUTAGE_MS - (Date.now() - down)));
      windowMs = Date.now() - down;
      const cpuAfter = cpuMs();
      cpu = cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore;
      attempts = stream.fleet.map((t, k) => t.attempts - attemptsBefore[k]);
      outage.close = stream.seq;
      sessions = (await haproxy!.sessions()) - sessionsBefore;
      keptAtReturn = stream.fleet.reduce((n, t) => n + t.client.stats().queued, 0);
      await Promise.all(tsds.map((t) => t.start()));
      await waitServers("UP", all);
      await stream.ticks(10, "points after the TSDs are back");
    } finally {
      stats = await stream.close();
    }
    const allowed = attemptsAllowed(windowMs, RECONNECT);
    const most = Math.max(...attempts);
    const mean = attempts.reduce((a, b) => a + b, 0) / CLIENTS;
    const share = cpu === undefined ? "n/a" : `${((100 * cpu) / windowMs).toFixed(1)} %`;
    const { delivery: d, copies } = await checkDelivery(tsds, stream, stats);
    const reconnects = stats.reduce((n, s) => n + s.reconnects, 0);
    // Points sent while HAProxy had no backend and lost: they could only be written on connections
    // that HAProxy closed at once, or later ones.
    const lostInOutage = copies.map((c) =>
      c.subarray(outage.open, outage.close).filter((n) => n === 0).length
    );
    const answered = confirmedBefore.filter((n) => n > 0).length;
    console.log(
      `haproxy no backend (${runtime}): ${(windowMs / 1000).toFixed(1)} s with no backend, ` +
        `connection attempts per client ${Math.min(...attempts)}..${most} (mean ${mean.toFixed(1)}; ` +
        `HAProxy accepted ${sessions} over ${CLIENTS} clients), backoff ${RECONNECT.initialMs}..${RECONNECT.maxMs} ms ` +
        `allows ${allowed} (20 s at the default 100..30000 ms: ${
          attemptsAllowed(20_000, { initialMs: 100, maxMs: 30_000, factor: 2 })
        }); CPU ${cpu === undefined ? "n/a" : `${Math.round(cpu)} ms`} = ${share} of one core; ` +
        `${d.points} points, kept at return ${keptAtReturn}, lost ${d.lost} (of ${d.onCut} written on cut ` +
        `connections; ${sum(lostInOutage)} of the ${CLIENTS * (outage.close - outage.open)} sent during ` +
        `the outage), duplicated ` +
        `${d.duplicated}, ${answers(stats)}, reconnects ${reconnects}; ${answered} of ${CLIENTS} clients ` +
        `had answers before the outage`,
    );
    // Twice what the backoff allows, and two more: a generous bound that a storm (thousands) breaks.
    assert.ok(
      most <= 2 * allowed + 2,
      `a client made ${most} attempts in ${windowMs} ms; the backoff allows ${allowed}`,
    );
    if (cpu !== undefined) {
      assert.ok(cpu < 0.5 * windowMs, `CPU ${Math.round(cpu)} ms in ${windowMs} ms with no backend`);
    }
    // A client whose server answered probes at this address writes again what a connection closed
    // without an answer carried: with no backend nothing reached a TSD, so nothing sent during the
    // outage may be lost.
    const unreplayed = lostInOutage.flatMap((n, k) => confirmedBefore[k] > 0 && n > 0 ? [`c${k}: ${n}`] : []);
    assert.deepEqual(unreplayed, [], "points lost on unanswered connections to an address known to answer");
  });
});
