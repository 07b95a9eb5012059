// One scenario of the deterministic simulation: a seed draws the client's options, the servers'
// behaviours, the disk's faults and a list of operations; the real Client (writer, queue, rate
// limit, encoder, spool) runs them on virtual time, a simulated network and a simulated disk,
// and the invariants are checked after every step and every timer that fires.

import { Client, type ClientStats } from "../../src/client.ts";
import { OptionsError, ValidationError } from "../../src/errors.ts";
import { AddressBook } from "../../src/addresses.ts";
import { FileSpool } from "../../src/spool/file.ts";
import { setSpoolFactory, spoolFactory } from "../../src/spool/default.ts";
import type { SpoolFsync, SpoolMode } from "../../src/spool/types.ts";
import { CrashError, type DiskFaults, NO_FAULTS, SimDisk, SimFs } from "./disk.ts";
import { type Behaviour, OK, type ServerConfig, SimNet } from "./net.ts";
import { drainMicrotasks, Rng, Scheduler } from "./scheduler.ts";

/** The retained bytes the writer keeps for replay (src/writer.ts RETAIN_BYTES). */
const RETAIN_BYTES = 8 * 1024 * 1024;
const SPOOL_DIR = "/var/spool/potsdb";

export interface Drawn {
  hosts: number;
  qsize: number;
  mps: number;
  dedup: boolean;
  heartbeatMs: number;
  stallTimeoutMs: number;
  rebalanceMs: number;
  batchBytes: number;
  connectTimeoutMs: number;
  closeTimeoutMs: number;
  initialMs: number;
  maxMs: number;
  acknowledging: boolean;
  spool: { mode: SpoolMode; fsync: SpoolFsync; maxBytes: number } | undefined;
  tags: boolean;
  prefix: string;
  series: number;
  servers: ServerConfig[];
}

export type Op =
  | { k: "send"; n: number; bad: number; dups: number }
  | { k: "badThenDup" }
  | { k: "advance"; ms: number }
  | { k: "jump"; ms: number }
  | { k: "server"; host: number; cfg: ServerConfig }
  | { k: "flush"; timeoutMs: number; abort: boolean }
  | { k: "faults"; faults: DiskFaults }
  | { k: "crash" }
  | { k: "exit" }
  | { k: "second" }
  | { k: "close"; timeoutMs: number; abort: boolean };

export interface Scenario {
  seed: number;
  drawn: Drawn;
  ops: Op[];
}

export interface Violation {
  invariant: string;
  message: string;
  step: number;
}

export interface Outcome {
  violation: Violation | undefined;
  /** What happened, in brief: the same seed gives the same one (determinism). */
  fingerprint: string;
  steps: number;
  virtualMs: number;
  lines: number;
  processes: number;
}

function drawServer(r: Rng, acknowledging: boolean): ServerConfig {
  const behaviour = r.pick<Behaviour>([
    "ok",
    "ok",
    "ok",
    "ok",
    "refuse",
    "hang",
    "reset",
    "closeAtOnce",
    "stall",
    "slow",
    "partial",
  ]);
  return {
    behaviour,
    answers: acknowledging || r.chance(0.6),
    answerDelayMs: r.pick([0, 1, 5, 50, 500, 5000]),
    readPerMs: r.pick([1, 10, 100]),
    resetAfter: r.int(1, 2000),
  };
}

/** Draws a scenario from its seed: one in sixteen is about the spool's disk (seed % 16 = 15). */
export function drawScenario(seed: number): Scenario {
  if (seed % 16 === 15) return drawDiskScenario(seed);
  const r = new Rng(seed);
  const acknowledging = r.chance(0.3);
  const hosts = r.int(1, 3);
  const spool = r.chance(0.45)
    ? {
      mode: r.pick<SpoolMode>(["overflow", "always"]),
      fsync: r.pick<SpoolFsync>(["never", "interval", "always"]),
      maxBytes: r.pick([64 * 1024, 128 * 1024, 1024 * 1024]),
    }
    : undefined;
  const drawn: Drawn = {
    hosts,
    qsize: r.pick([0, 10, 100, 1000, 5000]),
    mps: r.pick([0, 0, 0, 20, 100, 1000]),
    dedup: r.chance(0.5),
    heartbeatMs: r.pick([0, 200, 1000, 5000]),
    stallTimeoutMs: r.pick([0, 0, 500, 2000, 15000]),
    rebalanceMs: r.pick([0, 0, 500, 3000, 20000]),
    batchBytes: r.pick([1024, 4096, 16384, 65536]),
    connectTimeoutMs: r.pick([50, 1000, 5000]),
    closeTimeoutMs: r.pick([0, 100, 2000, 10000]),
    initialMs: r.pick([20, 100, 500]),
    maxMs: r.pick([1000, 5000]),
    acknowledging,
    spool,
    tags: r.chance(0.5),
    prefix: r.pick(["", "app."]),
    series: r.int(1, 5),
    servers: Array.from({ length: hosts }, () => r.chance(0.6) ? { ...OK } : drawServer(r, acknowledging)),
  };
  const ops: Op[] = [];
  const count = r.int(3, 30);
  for (let i = 0; i < count; i++) {
    const x = r.next();
    if (x < 0.32) {
      ops.push({ k: "send", n: r.pick([1, 5, 50, 300, 2000]), bad: r.int(0, 3), dups: r.int(0, 2) });
    } else if (x < 0.36) ops.push({ k: "badThenDup" });
    else if (x < 0.6) ops.push({ k: "advance", ms: r.pick([1, 10, 100, 1000, 5000, 30000]) });
    else if (x < 0.64) ops.push({ k: "jump", ms: r.pick([-3_600_000, -5000, 5000, 3_600_000]) });
    else if (x < 0.76) {
      ops.push({
        k: "server",
        host: r.int(0, hosts - 1),
        cfg: r.chance(0.4) ? { ...OK } : drawServer(r, acknowledging),
      });
    } else if (x < 0.82) ops.push({ k: "flush", timeoutMs: r.pick([0, 100, 5000]), abort: r.chance(0.2) });
    else if (x < 0.87 && spool) {
      ops.push({
        k: "faults",
        faults: r.chance(0.3) ? NO_FAULTS : {
          readEio: r.pick([0, 0.001, 0.05]),
          writeEio: r.pick([0, 0.001, 0.05]),
          fsyncEio: r.pick([0, 0.01, 0.2]),
          enospc: r.pick([0, 0.001, 0.05]),
          crash: r.pick([0, 0, 0.002, 0.05]),
        },
      });
    } else if (x < 0.92) ops.push({ k: "crash" });
    else if (x < 0.96) ops.push({ k: "exit" });
    else if (spool) ops.push({ k: "second" });
  }
  ops.push({ k: "close", timeoutMs: r.pick([0, 50, 1000, 10000]), abort: r.chance(0.15) });
  return { seed, drawn, ops };
}

/**
 * A scenario about the spool's disk: a backlog builds on disk while the servers refuse, the
 * disk fails in every way while it is read back, and processes crash and restart on it.
 */
function drawDiskScenario(seed: number): Scenario {
  const r = new Rng(seed);
  const base = drawScenario(seed + 1); // any other seed: options to start from
  const d = base.drawn;
  const drawn: Drawn = {
    ...d,
    spool: {
      mode: r.pick<SpoolMode>(["overflow", "always"]),
      fsync: r.pick<SpoolFsync>(["never", "interval", "always"]),
      maxBytes: r.pick([64 * 1024, 128 * 1024, 1024 * 1024]),
    },
    qsize: r.pick([10, 100, 1000]),
    servers: d.servers.map(() => ({ ...OK, behaviour: "refuse" as Behaviour })),
  };
  const ops: Op[] = [];
  for (let i = r.int(1, 4); i > 0; i--) ops.push({ k: "send", n: r.pick([300, 2000]), bad: 0, dups: 0 });
  ops.push({ k: "advance", ms: r.pick([10, 1000]) });
  if (r.chance(0.7)) ops.push({ k: r.chance(0.5) ? "crash" : "exit" });
  ops.push({
    k: "faults",
    faults: {
      readEio: r.pick([0.01, 0.05, 0.2]),
      writeEio: r.pick([0, 0.01, 0.05]),
      fsyncEio: r.pick([0, 0.05, 0.2]),
      enospc: r.pick([0, 0.01, 0.05]),
      crash: r.pick([0, 0, 0.01, 0.05]),
    },
  });
  for (let h = 0; h < drawn.hosts; h++) ops.push({ k: "server", host: h, cfg: { ...OK } });
  for (let i = r.int(2, 10); i > 0; i--) {
    const x = r.next();
    if (x < 0.3) ops.push({ k: "send", n: r.pick([5, 300, 2000]), bad: r.int(0, 1), dups: 0 });
    else if (x < 0.6) ops.push({ k: "advance", ms: r.pick([1, 10, 100, 1000, 5000]) });
    else if (x < 0.75) ops.push({ k: "crash" });
    else if (x < 0.85) ops.push({ k: "exit" });
    else if (x < 0.92) {
      ops.push({ k: "server", host: r.int(0, drawn.hosts - 1), cfg: drawServer(r, drawn.acknowledging) });
    } else ops.push({ k: "flush", timeoutMs: r.pick([0, 100, 5000]), abort: false });
  }
  ops.push({ k: "close", timeoutMs: r.pick([0, 50, 1000, 10000]), abort: r.chance(0.15) });
  return { seed, drawn, ops };
}

/** Set by `--debug`: tells what the simulation sees. */
export let debug: ((message: string) => void) | undefined;
export function setDebug(d: ((message: string) => void) | undefined): void {
  debug = d;
}

// Pids are never reused in one run: a crashed process keeps its lock entry in lock.ts's
// process-wide set (keyed by pid), as a real dead process keeps its lock file.
let nextPid = 100;

interface Proc {
  pid: number;
  client: Client;
  disk: SimDisk;
  spool: FileSpool | undefined;
  listeners: number;
  /** Sends the model expects to be taken, and duplicates it expects dropped, in this process. */
  taken: number;
  duplicates: number;
  recovered: number;
  /** Disk faults injected before this process started. */
  faultsAtStart: number;
  /** Lines that reached the server twice from this process. */
  extra: number;
  /** Of those, points an acknowledging server stored but whose answer a reset lost. */
  extraAnswerLost: number;
  /** The detail of the latest error, disconnect or server-error event. */
  lastProblem: unknown;
  /** Whether the last connection ended with a rebalance. */
  lastEndRebalance: boolean;
  /** Lines written twice after a rebalance. */
  rebalanceDuplicates: number;
}

class Fail extends Error {
  readonly invariant: string;
  constructor(invariant: string, message: string) {
    super(message);
    this.invariant = invariant;
  }
}

/** Runs one scenario; `keep` selects which of its operations run (for shrinking). */
export async function runScenario(scenario: Scenario, keep?: ReadonlySet<number>): Promise<Outcome> {
  const { seed, drawn } = scenario;
  const ops = scenario.ops.filter((_, i) =>
    keep === undefined || keep.has(i) || i === scenario.ops.length - 1
  );
  const sched = new Scheduler(seed ^ 0x5bd1e995);
  sched.traceTimers = debug !== undefined;
  const netRng = new Rng(seed ^ 0x27d4eb2f);
  const fs = new SimFs(new Rng(seed ^ 0x165667b1));
  fs.dirs.add("/var");
  fs.dirs.add("/var/spool");
  const net = new SimNet(sched, netRng, drawn.acknowledging);
  const hosts = Array.from({ length: drawn.hosts }, (_, i) => `tsd${i}`);
  hosts.forEach((h, i) => net.servers.set(h, { ...drawn.servers[i] }));
  if (debug) {
    const ack = net.ack.bind(net);
    net.ack = (pid, n) => {
      debug?.(`${sched.mono} server acknowledges ${n} lines of pid ${pid}`);
      ack(pid, n);
    };
  }
  const savedFactory = spoolFactory();
  const startAt = new Rng(seed ^ 0x7f4a7c15).int(0, 5);
  let step = 0;
  let proc: Proc | undefined;
  let nextId = 1;
  // Ids below this were sent before a process that met a disk fault ended: they may be on disk twice.
  let crashMark = 0;
  // A second process is open on the spool (the "second" operation).
  let secondAlive = false;
  let lines = 0;
  let processes = 0;
  let closed = false;
  let closedStats: ClientStats | undefined;
  let diskFaulted = false;
  // A violation seen inside the client's event dispatch (which catches what listeners throw).
  let pendingFailure: Fail | undefined;
  // Whether a server answers probes well within stallTimeoutMs. A later answer is no answer by
  // the client's definition: an unproven connection is then taken for silent, and what it kept is
  // let go as unconfirmed (at-most-once where a server never answers), as a stall is declared.
  const answersInTime = (cfg: { answers: boolean; answerDelayMs: number }) =>
    cfg.answers && cfg.answerDelayMs < drawn.stallTimeoutMs / 2;
  // Whether every server answers probes in time (so nothing is unconfirmed for want of an answer).
  // (A server that stalls, reads slowly, resets or closes may end a connection before its first
  // answer: the client then lets that connection's lines go, at most once, as for a server that
  // never answers. Only servers that read and answer keep every connection proven.)
  const alwaysAnswers = (cfg: ServerConfig) => cfg.behaviour === "ok" && answersInTime(cfg);
  let everyServerAnswers = drawn.servers.every(alwaysAnswers);
  // Model of what was sent: each good point has a unique id (its value).
  const sentBy = new Map<number, { series: string; pid: number; dupDropped: boolean }>();
  const latestTs = new Map<string, number>();
  const procTs = new Map<string, number>();
  // What the server got.
  let seenArrivals = 0;
  const arrivalsOf = new Map<number, number[]>(); // id -> pids that delivered it
  const firstConn = new Map<number, number>(); // id -> the connection that delivered it first
  const lastFirst = new Map<string, number>(); // `${pid} ${series}` -> last first-delivered id
  const flushes: { deadline: number; settled: boolean; pid: number }[] = [];
  let writtenSeen = 0;
  const windowW: { at: number; count: number }[] = [];
  let windowSum = 0;
  const attemptsSeen = new Map<string, number[]>();
  let attemptsIndex = 0;
  const maxAttemptsPerSecond = Math.ceil(1000 / Math.max(1, drawn.initialMs / 2)) + 3;
  // The largest line: metric, timestamp, value, tags.
  const minLineBytes = 30;

  const series = (s: number) => ({
    metric: `sim.s${s}`,
    tags: { k: `v${s}` } as Record<string, string>,
    key: `${drawn.prefix}sim.s${s} k=v${s}${drawn.tags ? " dc=sim" : ""}`,
  });

  const fail = (invariant: string, message: string): never => {
    throw new Fail(invariant, message);
  };

  function startProcess(): void {
    alignStartAddress(startAt);
    procTs.clear();
    // The rate limit is each process's own.
    windowW.length = 0;
    windowSum = 0;
    const pid = nextPid++;
    processes++;
    net.pid = pid;
    const disk = new SimDisk(fs, pid);
    let spool: FileSpool | undefined;
    setSpoolFactory((o, onError) => {
      spool = new FileSpool(o, onError, disk);
      return spool;
    });
    // The application's `signal` option, counting the listeners on it: added, then removed (by
    // removeEventListener, or by the abort of the `signal` given with them). A stand-in, not
    // Node's AbortSignal: Node removes a `{ signal }` listener through a FinalizationRegistry
    // whose held values keep a killed process's client (never closed) alive for good, and the
    // simulation would grow by half a megabyte a scenario.
    const live = new Set<EventListener>();
    const counted = {
      aborted: false,
      reason: undefined,
      onabort: null,
      throwIfAborted() {},
      addEventListener(type: string, l: EventListener, o?: AddEventListenerOptions | boolean) {
        if (type !== "abort" || live.has(l)) return;
        live.add(l);
        p.listeners++;
        const off = typeof o === "object" ? o.signal : undefined;
        off?.addEventListener("abort", () => {
          if (live.delete(l)) p.listeners--;
        }, { once: true });
      },
      removeEventListener(type: string, l: EventListener) {
        if (type === "abort" && live.delete(l)) p.listeners--;
      },
      dispatchEvent: () => true,
    } as unknown as AbortSignal;
    const p: Proc = {
      pid,
      client: undefined as unknown as Client,
      disk,
      spool: undefined,
      listeners: 0,
      taken: 0,
      duplicates: 0,
      recovered: 0,
      extra: 0,
      faultsAtStart: fs.injected.length,
      extraAnswerLost: 0,
      lastEndRebalance: false,
      lastProblem: undefined,
      rebalanceDuplicates: 0,
    };
    proc = p;
    p.client = new Client(hosts.map((h) => `${h}:4242`), {
      transport: net.transport(),
      clock: sched.clock,
      hostTag: false,
      qsize: drawn.qsize,
      mps: drawn.mps,
      dedup: drawn.dedup,
      heartbeatMs: drawn.heartbeatMs,
      stallTimeoutMs: drawn.stallTimeoutMs,
      rebalanceMs: drawn.rebalanceMs,
      batchBytes: drawn.batchBytes,
      connectTimeoutMs: drawn.connectTimeoutMs,
      closeTimeoutMs: drawn.closeTimeoutMs,
      reconnect: { initialMs: drawn.initialMs, maxMs: drawn.maxMs },
      tags: drawn.tags ? { dc: "sim" } : undefined,
      prefix: drawn.prefix || undefined,
      signal: counted,
      spool: drawn.spool && { dir: SPOOL_DIR, ...drawn.spool },
    });
    // The most recent problem the client reported, which stats().lastError must be (#20.12).
    for (const type of ["error", "disconnect", "server-error"] as const) {
      p.client.addEventListener(type, (e) => p.lastProblem = (e as CustomEvent<unknown>).detail);
    }
    p.client.addEventListener("disconnect", (e) => {
      p.lastEndRebalance = /rebalance/.test(e.detail.message);
      // A server that keeps reading, and answers probes well within stallTimeoutMs once it reaches
      // them, is alive however slowly it reads: never taken for stalled.
      const conn = net.last.get(pid);
      if (
        e.detail.code === "CONNECTION_STALLED" && conn !== undefined && drawn.stallTimeoutMs > 0 &&
        answersInTime(net.config(conn.host))
      ) {
        const quiet = sched.mono - conn.lastReadAt;
        // Broken only where the client passed over a sign of the server's life (an answer, or a
        // write completing while writes backed up) within the last half stall timeout: it sees no
        // more than that. A probe the server ignored is no answer: stalled by definition.
        const ignored = conn.probes[0]?.ignored === true;
        const signalled = sched.mono - conn.lastSignalAt < drawn.stallTimeoutMs / 2;
        if (quiet < drawn.stallTimeoutMs / 2 && signalled && !ignored) {
          pendingFailure ??= new Fail(
            "stall-live",
            `connection ${conn.id} to ${conn.host} declared stalled (stallTimeoutMs ${drawn.stallTimeoutMs}) ` +
              `while its server read ${quiet} ms ago`,
          );
        }
      }
    });
    p.client.addEventListener("error", (e) => debug?.(`${sched.mono} pid ${pid} error: ${e.detail.message}`));
    if (debug) {
      p.client.addEventListener(
        "connect",
        (e) => debug?.(`${sched.mono} pid ${pid} connect ${e.detail.host}`),
      );
      p.client.addEventListener("disconnect", (e) => {
        const s = p.client.stats();
        debug?.(
          `${sched.mono} pid ${pid} disconnect: ${e.detail.message} (sent ${s.sent}, replayed ${s.replayed})`,
        );
      });
    }
    p.spool = spool;
    p.recovered = p.client.stats().spool?.recovered ?? 0;
  }

  /** The process is gone: kill -9 (or after its exit hooks ran). */
  function killProcess(): void {
    const p = proc!;
    if (p.disk.crashed || fs.injected.length > p.faultsAtStart) crashMark = nextId;
    p.disk.die();
    net.killProcess(p.pid);
    // Its timers die with it.
    sched.timers.clear();
    proc = undefined;
  }

  function check(): void {
    if (pendingFailure !== undefined) throw pendingFailure;
    const p = proc;
    // A crash at a disk write kills the process.
    if (p !== undefined && p.disk.crashed) {
      // (While a second process is open on the spool, its end comes after the second's: killing a
      // process clears every virtual timer, the second's too, and a restart would find the
      // spool's lock held.)
      if (secondAlive) return;
      killProcess();
      startProcess();
      return;
    }
    // Deliveries.
    const arrivals = net.arrivals;
    for (; seenArrivals < arrivals.length; seenArrivals++) {
      const a = arrivals[seenArrivals];
      const sent = sentBy.get(a.id);
      if (sent === undefined) fail("delivery", `the server got point ${a.id}, never sent`);
      if (sent!.dupDropped) {
        fail("dedup", `point ${a.id} is a duplicate the client said it dropped, yet it reached the server`);
      }
      if (sent!.series !== a.series) {
        fail("delivery", `point ${a.id} arrived as series ${a.series}, sent as ${sent!.series}`);
      }
      const by = arrivalsOf.get(a.id);
      if (by === undefined) {
        arrivalsOf.set(a.id, [a.pid]);
        firstConn.set(a.id, a.conn);
        const key = `${a.pid} ${a.series}`;
        const last = lastFirst.get(key);
        // (Lines a disk fault caught while the spool wrote them again at close or exit may sit
        // on disk after newer ones: order holds for the rest.)
        if (last !== undefined && a.id < last && last >= crashMark) {
          fail("order", `series ${a.series}: point ${a.id} first delivered after ${last} (pid ${a.pid})`);
        }
        lastFirst.set(key, a.id);
      } else {
        if (by.includes(a.pid) && p !== undefined && a.pid === p.pid) {
          // A crash or an I/O error while the spool wrote lines again (at close or exit: the old
          // records are let go only once all are written) leaves them twice on disk, never none:
          // the next processes deliver both copies (at least once, as documented for the spool).
          if (a.id >= crashMark) {
            if (net.answerLost.has(a.id)) p.extraAnswerLost++;
            else p.extra++;
          }
          // Written again after a rebalance: the connection before this one was ended by the client.
          // Written again after a rebalance: it reached the server over the connection before this
          // one, which the client ended gracefully (a rebalance; not its stop).
          const previous = net.previous(a.pid, a.conn);
          const moved = previous !== undefined && previous.endedByClient && !closed &&
            firstConn.get(a.id) === previous.id;
          // (A point whose answer was lost is its own invariant, whatever ended the connection.)
          if (!net.answerLost.has(a.id) && moved) {
            p.rebalanceDuplicates++;
          }
          if (debug) {
            debug(
              `dup ${a.id} conn ${a.conn} at ${a.at}; first ${
                JSON.stringify(arrivals.find((x) => x.id === a.id))
              }`,
            );
          }
        }
        by.push(a.pid);
      }
    }
    if (p === undefined) return;
    const s = p.client.stats();
    const where = () =>
      `accepted ${s.accepted}, sent ${s.sent}, queued ${s.queued}, dropped ${s.dropped.total}`;
    if (s.accepted !== s.sent + s.queued + s.dropped.total) {
      fail("accounting", `accepted ≠ sent + queued + dropped: ${where()}`);
    }
    if (!closed && s.accepted !== p.recovered + p.taken + p.duplicates) {
      fail(
        "accounting",
        `accepted ${s.accepted} ≠ recovered ${p.recovered} + sends taken ${p.taken + p.duplicates}`,
      );
    }
    if (s.dropped.duplicate !== p.duplicates) {
      fail("dedup", `dropped.duplicate ${s.dropped.duplicate}, the model expects ${p.duplicates}`);
    }
    if (p.extra > s.replayed) {
      fail(
        "duplicates",
        `${p.extra} lines reached the server twice from pid ${p.pid}, replayed counts ${s.replayed}`,
      );
    }
    if (p.rebalanceDuplicates > 0) {
      fail("rebalance", `a rebalance wrote ${p.rebalanceDuplicates} lines the server had already again`);
    }
    if (p.extra + p.extraAnswerLost > s.replayed) {
      fail(
        "duplicates-answer-lost",
        `${p.extraAnswerLost} points stored by an acknowledging server whose answer was lost were written again, ` +
          `not counted in replayed (${s.replayed})`,
      );
    }
    if (p.lastProblem !== undefined && s.lastError !== p.lastProblem) {
      const name = (x: unknown) => x instanceof Error ? `${x.name}: ${x.message}` : String(x);
      fail(
        "last-error",
        `lastError is "${name(s.lastError)}", the latest problem reported "${name(p.lastProblem)}"`,
      );
    }
    const acked = net.acked.get(p.pid) ?? 0;
    if (s.confirmed > acked) {
      fail("confirmed", `confirmed ${s.confirmed}, but the servers acknowledged ${acked} lines`);
    }
    if (s.sent < 0 || s.queued < 0) fail("accounting", `a negative count: ${where()}`);
    // `spooled` is documented as part of `queued` (#20.13).
    if (s.spooled > s.queued) fail("spooled", `spooled ${s.spooled} is not part of queued: ${where()}`);
    // Bounds.
    const spool = p.spool;
    if (drawn.spool && fs.segmentBytes(SPOOL_DIR) > drawn.spool.maxBytes + drawn.batchBytes + 64) {
      fail("bounds", `spool holds ${fs.segmentBytes(SPOOL_DIR)} bytes, maxBytes ${drawn.spool.maxBytes}`);
    }
    if (drawn.qsize > 0) {
      const memory = s.queued - (spool?.unread ?? 0);
      const most = drawn.qsize + Math.ceil((RETAIN_BYTES + 2 * 65536 + 4 * drawn.batchBytes) / minLineBytes);
      if (memory > most) {
        fail("bounds", `${memory} lines in memory, more than qsize ${drawn.qsize} + the ledger's bound`);
      }
    }
    // The rate limit, replays included: within any second at most mps + burst lines.
    const written = net.written;
    for (; writtenSeen < written.length; writtenSeen++) {
      const w = written[writtenSeen];
      if (w.pid !== p.pid) continue;
      windowW.push(w);
      windowSum += w.count;
      while (windowW.length > 0 && windowW[0].at <= w.at - 1000) windowSum -= windowW.shift()!.count;
      if (drawn.mps > 0 && windowSum > 2 * drawn.mps + 1) {
        fail(
          "rate",
          `${windowSum} lines written within one second at mps ${drawn.mps} (replayed ${s.replayed})`,
        );
      }
    }
    // Connection attempts of one process to one address: never faster than its backoff allows (a
    // process restarted after a crash starts afresh, as a real one does).
    for (; attemptsIndex < net.attempts.length; attemptsIndex++) {
      const a = net.attempts[attemptsIndex];
      const key = `${a.pid} ${a.host}`;
      const times = attemptsSeen.get(key) ?? [];
      attemptsSeen.set(key, times);
      times.push(a.at);
      while (times.length > 0 && times[0] <= a.at - 1000) times.shift();
      if (times.length > maxAttemptsPerSecond) {
        fail(
          "backoff",
          `${times.length} connection attempts to ${a.host} within one second (initialMs ${drawn.initialMs})`,
        );
      }
    }
    // Flushes settle by their deadline.
    for (const f of flushes) {
      if (!f.settled && f.pid === p.pid && sched.mono > f.deadline + 1000) {
        fail("flush", `a flush outlived its deadline by ${sched.mono - f.deadline} ms`);
      }
    }
    if (sched.thrown.length > 0) fail("uncaught", `a timer threw: ${String(sched.thrown[0])}`);
  }

  function send(p: Proc, s: number, dup: boolean, bad: number): void {
    const { metric, tags, key } = series(s);
    // A duplicate repeats this process's latest timestamp of the series (a new client remembers
    // nothing of an earlier process's points); other points take a new one.
    const mine = procTs.get(key);
    const isDup = dup && mine !== undefined;
    const ts = isDup ? mine! : (latestTs.get(key) ?? 1_700_000_000) + 1;
    if (bad > 0) {
      const before = p.client.stats().accepted;
      const attempt = [
        () => p.client.send(metric, Number.NaN, tags, ts + 1),
        () => p.client.send(`${metric} bad`, 1, tags, ts + 1),
        () => p.client.send(metric, 1, { k: "a b" }, ts + 1),
        () => p.client.send(metric, 1, tags, -5),
      ][bad % 4];
      try {
        attempt();
      } catch (e) {
        if (!(e instanceof ValidationError)) {
          fail("input", `bad input threw ${String(e)}, not a ValidationError`);
        }
        if (p.client.stats().accepted !== before) fail("input", "bad input changed accepted");
        return;
      }
      fail("input", "bad input was accepted");
    }
    const id = nextId++;
    const dupDropped = isDup && drawn.dedup;
    sentBy.set(id, { series: key, pid: p.pid, dupDropped });
    p.client.send(metric, id, tags, ts);
    latestTs.set(key, Math.max(ts, latestTs.get(key) ?? 0));
    procTs.set(key, ts);
    if (dupDropped) p.duplicates++;
    else p.taken++;
    lines++;
  }

  async function closeProcess(op: { timeoutMs: number; abort: boolean }): Promise<void> {
    const p = proc!;
    const start = sched.mono;
    let done = false;
    const signal = op.abort ? AbortSignal.abort() : undefined;
    const unconfirmedBefore = p.client.stats().unconfirmed;
    // Kept lines exist where a server has answered this process (its connection is acknowledging).
    const answered = (net.acked.get(p.pid) ?? 0) > 0;
    const spoolActive = p.spool?.active === true;
    const closing = p.client.close({ timeoutMs: op.timeoutMs, signal }).then((s) => {
      done = true;
      closedStats = s;
    });
    closed = true;
    const deadline = start + (op.abort ? 0 : op.timeoutMs);
    for (let t = 0; !done && sched.mono < deadline + 60_000; t++) {
      await sched.runUntil(Math.min(deadline + 60_000, sched.mono + 100), check);
      if (proc !== p) return; // crashed while closing (a crash at a disk write)
    }
    if (!done) fail("close", `close({ timeoutMs: ${op.timeoutMs} }) still pending 60 s after its deadline`);
    if (sched.mono > deadline + 1000) {
      fail("close", `close() took ${sched.mono - start} ms, deadline ${op.timeoutMs} ms`);
    }
    await closing;
    check();
    const s = closedStats!;
    // Nothing left behind.
    await drainMicrotasks();
    const timers = sched.clientTimers();
    if (timers.length > 0) {
      fail(
        "leak-timer",
        `${timers.length} timer(s) left after close() (due in ${
          timers.map((t) => `${t.due - sched.mono} ms, made ${t.origin ?? "(--debug tells where)"}`).join(
            "; ",
          )
        })`,
      );
    }
    const conns = [...net.open].filter((c) => c.pid === p.pid).length;
    if (conns > 0) fail("leak-connection", `${conns} connection(s) left open after close()`);
    if (p.disk.exitListeners.size > 0) {
      fail("leak-exit-hook", "the spool's exit listener is still installed after close()");
    }
    if (p.disk.openFiles > 0) fail("leak-file", `${p.disk.openFiles} spool file(s) left open after close()`);
    if (p.listeners !== 0) {
      fail("leak-listener", `${p.listeners} listener(s) left on the client's signal after close()`);
    }
    // With a spool, lines kept for replay (written, not yet answered) stay on disk at close for
    // the next process: a close deadline does not let them go as unconfirmed (#20.14).
    if (
      drawn.spool && spoolActive && !diskFaulted && everyServerAnswers && !drawn.acknowledging &&
      drawn.stallTimeoutMs > 0 && drawn.heartbeatMs > 0 && answered &&
      s.unconfirmed > unconfirmedBefore
    ) {
      fail(
        "close-keeps",
        `close() let ${
          s.unconfirmed - unconfirmedBefore
        } kept lines go as unconfirmed instead of keeping them in the spool`,
      );
    }
    const left = s.queued - (p.spool?.unread ?? 0);
    if (left !== 0) fail("accounting", `after close() ${left} points are neither sent, dropped nor on disk`);
    if (s.spooled > s.queued) fail("spooled", `spooled ${s.spooled} is not part of queued ${s.queued}`);
  }

  const fingerprint = () =>
    [step, sched.mono, lines, net.arrivals.length, net.attempts.length, net.written.length, fs.files.size]
      .join("/");

  sched.install();
  try {
    startProcess();
    for (const op of ops) {
      step++;
      if (proc === undefined) startProcess();
      const p = proc!;
      net.pid = p.pid;
      switch (op.k) {
        case "send": {
          const r = new Rng(seed + step);
          for (let i = 0; i < op.n; i++) {
            send(p, r.int(0, drawn.series - 1), false, 0);
            if (proc !== p) break;
          }
          for (let i = 0; i < op.bad && proc === p; i++) send(p, r.int(0, drawn.series - 1), false, i + 1);
          for (let i = 0; i < op.dups && proc === p; i++) send(p, r.int(0, drawn.series - 1), true, 0);
          break;
        }
        case "badThenDup":
          send(p, 0, false, 0);
          send(p, 0, false, 1);
          send(p, 0, true, 0);
          break;
        case "advance":
          await sched.runUntil(sched.mono + op.ms, check);
          break;
        case "jump":
          // The wall clock is stepped: timestamps jump, and nothing the writer measures (its rate,
          // cool-downs and liveness run on the clock's monotonic time) may notice.
          sched.skew += op.ms;
          break;
        case "server":
          net.servers.set(hosts[op.host], { ...op.cfg });
          if (!alwaysAnswers(op.cfg)) everyServerAnswers = false;
          break;
        case "flush": {
          const f = { deadline: sched.mono + (op.abort ? 0 : op.timeoutMs), settled: false, pid: p.pid };
          flushes.push(f);
          p.client.flush({ timeoutMs: op.timeoutMs, signal: op.abort ? AbortSignal.abort() : undefined })
            .catch(() => {})
            .finally(() => f.settled = true);
          break;
        }
        case "faults":
          fs.faults = op.faults;
          if (op.faults !== NO_FAULTS) diskFaulted = true;
          break;
        case "crash": {
          // kill -9: what is on disk stays (the page cache survives a process), memory is lost.
          const before = p.client.stats();
          // On disk: what the spool holds and has not seen delivered (a full spool may have dropped
          // lines that were in flight; those were in memory only).
          const onDisk = p.spool?.spooled ?? 0;
          killProcess();
          startProcess();
          const recovered = proc!.recovered;
          if (drawn.spool && !diskFaulted && before.spool?.active && recovered < onDisk) {
            fail(
              "spool",
              `kill -9 (${drawn.spool.mode} mode): ${onDisk} points were on disk, the next process found ${recovered}` +
                ` (${before.queued} queued)`,
            );
          }
          break;
        }
        case "exit": {
          // The event loop ended without close(): the exit hooks run, then the process is gone.
          const before = p.client.stats();
          const pendingBefore = before.queued;
          for (const l of [...p.disk.exitListeners]) {
            try {
              l();
            } catch (e) {
              if (!(e instanceof CrashError)) throw e;
            }
          }
          const crashed = p.disk.crashed;
          // A full spool drops its oldest segment to take more: counted, not lost.
          const full = (p.spool?.droppedFull ?? 0) - before.dropped.spoolFull;
          killProcess();
          startProcess();
          const recovered = proc!.recovered;
          if (
            drawn.spool && !diskFaulted && !crashed && before.spool?.active &&
            recovered + full < pendingBefore
          ) {
            fail(
              "spool",
              `exit without close(): ${pendingBefore} points pending, the next process found ${recovered} ` +
                `(${full} dropped for a full spool)`,
            );
          }
          break;
        }
        case "second": {
          secondAlive = true;
          const otherPid = nextPid++;
          const other = new SimDisk(fs, otherPid);
          setSpoolFactory((o, onError) => new FileSpool(o, onError, other));
          // Its connections are its own: what it delivers from the spool is not the first's.
          net.pid = otherPid;
          const transport = net.transport();
          net.pid = p.pid;
          try {
            const c = new Client("tsd0:4242", {
              transport,
              clock: sched.clock,
              hostTag: false,
              spool: { dir: SPOOL_DIR, ...drawn.spool },
            });
            const active = c.stats().spool?.active;
            let closedSecond = false;
            c.close({ timeoutMs: 0 }).then(() => closedSecond = true);
            // (A crash at one of its disk writes ends it instead.)
            for (let i = 0; i < 100 && !closedSecond && !other.crashed; i++) {
              await sched.runUntil(sched.mono + 10, check);
            }
            if (!closedSecond && !other.crashed) {
              fail("close", "a second client's close({ timeoutMs: 0 }) did not end");
            }
            if (active && p.spool?.active !== false && p.client.stats().spool?.active) {
              fail("lock", `a second process took the spool lock while pid ${p.pid} holds it`);
            }
          } catch (e) {
            if (!(e instanceof OptionsError)) throw e;
          } finally {
            secondAlive = false;
            other.die();
            net.killProcess(otherPid);
            setSpoolFactory((o, onError) => new FileSpool(o, onError, p.disk));
          }
          break;
        }
        case "close":
          await closeProcess(op);
          break;
      }
      if (op.k !== "close") {
        await sched.runUntil(sched.mono, check);
        // Between two steps of the caller's code, the writer gets a moment.
        await sched.runUntil(sched.mono + 1, check);
      }
    }
    return {
      violation: undefined,
      fingerprint: fingerprint(),
      steps: step,
      virtualMs: sched.mono,
      lines,
      processes,
    };
  } catch (e) {
    if (e instanceof Fail) {
      return {
        violation: { invariant: e.invariant, message: e.message, step },
        fingerprint: fingerprint(),
        steps: step,
        virtualMs: sched.mono,
        lines,
        processes,
      };
    }
    return {
      violation: {
        invariant: "exception",
        message: e instanceof Error ? e.stack ?? e.message : String(e),
        step,
      },
      fingerprint: fingerprint(),
      steps: step,
      virtualMs: sched.mono,
      lines,
      processes,
    };
  } finally {
    sched.uninstall();
    if (savedFactory) setSpoolFactory(savedFactory);
  }
}

/**
 * Clients made in one process take successive start addresses from a process-wide counter with
 * a random base (src/addresses.ts): made here so that a scenario's first address is its seed's
 * choice, whatever ran before it. Books of six addresses tell where the counter stands (modulo
 * six, which the scenario's 1, 2 or 3 addresses divide).
 */
function alignStartAddress(want: number): void {
  const six = Array.from({ length: 6 }, (_, i) => ({ host: String(i), port: 1 }));
  const at = Number(new AddressBook(six, {}, () => 0).next().address.host);
  for (let k = (want - (at + 1) + 12) % 6; k > 0; k--) new AddressBook(six, {}, () => 0);
}
