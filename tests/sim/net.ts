// A simulated network of TSDs behind the real Transport interface. Each address has a behaviour
// the scenario sets and changes: it accepts and reads, refuses, resets after some lines, closes
// cleanly at once, stalls (never reads: writes back up), reads slowly, takes part of a batch and
// resets, answers `version` probes (or not) after a delay; an acknowledging ("HTTP-like")
// transport calls each write's `done` only with the server's answer. The network records what
// the tests need: every line each server received (by the writing process), every connection
// attempt, every line the client handed to a connection, and what the servers acknowledged.

import type { Connection, ConnectOptions, Transport } from "../../src/transport/types.ts";
import type { Rng, Scheduler } from "./scheduler.ts";

export type Behaviour = "ok" | "refuse" | "hang" | "reset" | "closeAtOnce" | "stall" | "slow" | "partial";

export interface ServerConfig {
  behaviour: Behaviour;
  /** Answers `version` (telnet) at all. */
  answers: boolean;
  /** Virtual ms before an answer (probe or HTTP) is sent. */
  answerDelayMs: number;
  /** "slow": bytes read per virtual ms. */
  readPerMs: number;
  /** "reset": lines read on a connection before it is reset. */
  resetAfter: number;
}

export const OK: ServerConfig = {
  behaviour: "ok",
  answers: true,
  answerDelayMs: 1,
  readPerMs: 1000,
  resetAfter: 100,
};

const utf8 = new TextDecoder();
const HIGH_WATER = 64 * 1024;
const PROBE_ANSWER = "net.opentsdb.tools BuildData built at revision 0000000 (MINT)";
const PROBE_TAIL = "Built on 2026/01/01 00:00:00 +0000 by sim@sim:/sim";

/** One line as a server received it. */
export interface Arrival {
  id: number;
  series: string;
  pid: number;
  conn: number;
  at: number;
}

export class SimNet {
  readonly servers = new Map<string, ServerConfig>();
  readonly arrivals: Arrival[] = [];
  /** Connection attempts: address, virtual time, pid. */
  readonly attempts: { host: string; at: number; pid: number }[] = [];
  /** Lines handed to a connection's write (replays too), with their time, by pid. */
  readonly written: { at: number; count: number; pid: number }[] = [];
  /** Points stored by an acknowledging server whose answer was lost to a reset. */
  readonly answerLost = new Set<number>();
  /** Lines a server acknowledged (an answer to a probe that covered them, or an HTTP answer), by pid. */
  readonly acked = new Map<number, number>();
  readonly open = new Set<SimConnection>();
  /** Each process's latest connection. */
  readonly last = new Map<number, SimConnection>();
  readonly #byPid = new Map<number, SimConnection[]>();
  #conns = 0;
  /** Per pid, what releases each connect attempt still pending. */
  readonly #pending = new Map<number, Set<() => void>>();
  /** The pid of the process that makes connections now. */
  pid = 0;
  /** Processes that are gone: their connections are dead. */
  readonly dead = new Set<number>();

  readonly sched: Scheduler;
  readonly rng: Rng;
  readonly acknowledging: boolean;
  constructor(sched: Scheduler, rng: Rng, acknowledging: boolean) {
    this.sched = sched;
    this.rng = rng;
    this.acknowledging = acknowledging;
  }

  config(host: string): ServerConfig {
    return this.servers.get(host) ?? OK;
  }

  /** The transport of the process that runs now: its connections stay that process's, and a
   * process that is gone (whose promises may still settle) connects nowhere. */
  transport(): Transport {
    const pid = this.pid;
    return {
      name: this.acknowledging ? "sim-http" : "sim-telnet",
      acknowledges: this.acknowledging || undefined,
      connect: (options) => this.#connect(options, pid),
    };
  }

  #connect(options: ConnectOptions, pid: number): Promise<Connection> {
    const host = options.host;
    this.attempts.push({ host, at: this.sched.mono, pid });
    const cfg = this.config(host);
    return new Promise<Connection>((resolveConn, rejectConn) => {
      const signal = options.signal;
      if (signal.aborted) return rejectConn(signal.reason ?? new Error("aborted"));
      const pending: { timer?: unknown } = {};
      // A process killed while it connects: its listener goes with it (Node keeps a composite
      // signal that has listeners, and all it holds, until that signal aborts).
      const ofPid = this.#pending.get(pid) ?? new Set<() => void>();
      this.#pending.set(pid, ofPid);
      const forget = () => {
        signal.removeEventListener("abort", onAbort);
        this.sched.clear(pending.timer);
      };
      ofPid.add(forget);
      const resolve = (c: Connection) => {
        ofPid.delete(forget);
        resolveConn(c);
      };
      const reject = (e: unknown) => {
        ofPid.delete(forget);
        rejectConn(e);
      };
      const onAbort = () => {
        this.sched.clear(pending.timer);
        reject(signal.reason ?? new Error("aborted"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      // "hang": never connects; only the abort (the connect timeout, or close) ends it.
      if (cfg.behaviour === "hang") return;
      pending.timer = this.sched.setSim(
        () => {
          signal.removeEventListener("abort", onAbort);
          if (this.dead.has(pid)) return reject(new Error("process gone"));
          if (cfg.behaviour === "refuse") {
            return reject(Object.assign(new Error("ECONNREFUSED"), { code: "ECONNREFUSED" }));
          }
          const conn = new SimConnection(this, ++this.#conns, host, pid, options.onLine);
          this.open.add(conn);
          this.last.set(pid, conn);
          const list = this.#byPid.get(pid) ?? [];
          list.push(conn);
          this.#byPid.set(pid, list);
          resolve(conn);
          if (cfg.behaviour === "closeAtOnce") this.sched.setSim(() => conn.serverEnd(undefined), 0);
        },
        this.rng.int(0, 3),
      );
    });
  }

  /** The connection of `pid` made before connection `id`, if any. */
  previous(pid: number, id: number): SimConnection | undefined {
    return this.#byPid.get(pid)?.filter((c) => c.id < id).at(-1);
  }

  /** A process died: its connections are reset (the server sees them go). */
  killProcess(pid: number): void {
    this.dead.add(pid);
    for (const forget of this.#pending.get(pid) ?? []) forget();
    this.#pending.delete(pid);
    for (const c of [...this.open]) if (c.pid === pid) c.gone();
  }

  ack(pid: number, lines: number): void {
    if (lines > 0) this.acked.set(pid, (this.acked.get(pid) ?? 0) + lines);
  }
}

interface Pending {
  data: Uint8Array;
  done: (error?: Error) => void;
  /** Bytes of it the server has read. */
  read: number;
  notified: boolean;
}

export class SimConnection implements Connection {
  readonly closed: Promise<Error | undefined>;
  #resolveClosed!: (e: Error | undefined) => void;
  #open = true;
  #ending = false;
  /** Written, not yet read by the server (the kernel's buffers). */
  #buffer: Pending[] = [];
  #buffered = 0;
  #readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  #readTimer: unknown;
  /** Lines read here since the last acknowledgement. */
  #unacked = 0;
  #linesRead = 0;
  #carry = "";
  #request: Arrival[] = [];
  /** Whether the client ended it gracefully (a rebalance, or its stop). */
  endedByClient = false;
  /** When the server last read from it (virtual ms); -Infinity before. */
  lastReadAt = -Infinity;
  /** Probes not answered yet, oldest first: whether the server read each, and whether it ignored it. */
  readonly probes: { read: boolean; ignored: boolean }[] = [];
  /**
   * The last sign of the server's life the client could see: an answer to a probe, or a write
   * completing (or the buffer draining) while its writes backed up. Writes that go through at
   * once prove nothing: a dead peer's kernel takes bytes too.
   */
  lastSignalAt = -Infinity;
  #completions = 0;
  /** Answers still to come (acknowledging). */
  #answers: { ids: number[]; p: Pending; timer: unknown }[] = [];
  #lastAnswerAt = 0;

  readonly net: SimNet;
  readonly id: number;
  readonly host: string;
  readonly pid: number;
  readonly onLine: (line: string) => void;
  constructor(net: SimNet, id: number, host: string, pid: number, onLine: (line: string) => void) {
    this.net = net;
    this.id = id;
    this.host = host;
    this.pid = pid;
    this.onLine = onLine;
    this.closed = new Promise((resolve) => this.#resolveClosed = resolve);
  }

  get isOpen(): boolean {
    return this.#open;
  }

  write(data: Uint8Array, done: (error?: Error) => void): boolean {
    const net = this.net;
    if (!this.#open || this.#ending) {
      queueMicrotask(() => done(new Error("connection closed")));
      return false;
    }
    const text = utf8.decode(data);
    let lines = 0;
    for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) lines++;
    const probes = text === "version\n" ? 1 : 0;
    if (lines - probes > 0) net.written.push({ at: net.sched.mono, count: lines - probes, pid: this.pid });
    // The client's memory is reused after `done`: the "kernel" keeps a copy.
    this.#buffer.push({ data: data.slice(), done, read: 0, notified: false });
    this.#buffered += data.length;
    if (probes > 0) this.probes.push({ read: false, ignored: false });
    // Telnet: in the "kernel" now (below its high-water mark): done, whatever the server does next
    // (a reset then loses it: at-most-once for bytes in kernel buffers).
    this.#notifyBelowWater();
    this.#pump();
    return this.#buffered < HIGH_WATER;
  }

  /** The server reads what its behaviour lets it. */
  #pump(): void {
    if (!this.#open) return;
    const cfg = this.net.config(this.host);
    const acking = this.net.acknowledging;
    if (cfg.behaviour === "stall") {
      this.#notifyBelowWater();
      return;
    }
    if (cfg.behaviour === "slow") {
      if (this.#readTimer === undefined && this.#buffer.length > 0) {
        this.#readTimer = this.net.sched.setSim(
          () => {
            this.#readTimer = undefined;
            this.#readSome(cfg.readPerMs * 10);
            this.#pump();
          },
          10,
        );
      }
      this.#notifyBelowWater();
      return;
    }
    if (cfg.behaviour === "partial" && this.#buffer.length > 0) {
      // Part of this batch arrives, then the connection is reset.
      const first = this.#buffer[0];
      this.#readSome(this.net.rng.int(0, first.data.length - 1));
      this.#reset();
      return;
    }
    this.#readSome(Infinity);
    if (!acking) this.#notifyBelowWater();
  }

  #readSome(budget: number): void {
    const cfg = this.net.config(this.host);
    // Writes complete (or the buffer drains) while they backed up: the client can tell the server reads.
    const backedUp = this.#buffered >= HIGH_WATER;
    const completions = this.#completions;
    try {
      this.#readBudget(budget, cfg);
    } finally {
      if (backedUp && this.#completions > completions) this.lastSignalAt = this.net.sched.mono;
    }
  }

  #readBudget(budget: number, cfg: ServerConfig): void {
    while (this.#buffer.length > 0 && budget > 0 && this.#open) {
      const p = this.#buffer[0];
      const n = Math.min(budget, p.data.length - p.read);
      if (n > 0) this.lastReadAt = this.net.sched.mono;
      this.#receive(p.data.subarray(p.read, p.read + n));
      p.read += n;
      budget -= n;
      this.#buffered -= n;
      if (cfg.behaviour === "reset" && this.#linesRead >= cfg.resetAfter) {
        this.#reset();
        return;
      }
      if (p.read < p.data.length) break;
      this.#buffer.shift();
      if (!this.net.acknowledging && !p.notified) {
        p.notified = true;
        const done = p.done;
        this.#completions++;
        queueMicrotask(() => done());
      }
      if (this.net.acknowledging) {
        // A whole request is stored; its answer comes later (in the order of the requests), and
        // the write's `done` is that answer. An answer lost to a reset leaves the points stored.
        const ids = this.#store();
        const at = Math.max(this.#lastAnswerAt, this.net.sched.mono + cfg.answerDelayMs);
        this.#lastAnswerAt = at;
        const answer = {
          ids,
          p,
          timer: this.net.sched.setSim(
            () => {
              this.#answers.splice(this.#answers.indexOf(answer), 1);
              p.notified = true;
              this.net.ack(this.pid, ids.length);
              p.done();
              if (this.#ending && this.#answers.length === 0 && this.#buffer.length === 0) {
                this.#finish(undefined);
              }
            },
            at - this.net.sched.mono,
          ),
        };
        this.#answers.push(answer);
      }
    }
    if (!this.net.acknowledging) this.#notifyBelowWater();
  }

  /** An acknowledging server stores a request only once it has all of it. */
  #store(): number[] {
    const ids: number[] = [];
    for (const a of this.#request) {
      this.net.arrivals.push(a);
      ids.push(a.id);
    }
    this.#request = [];
    return ids;
  }

  #receive(bytes: Uint8Array): void {
    const text = this.#carry + utf8.decode(bytes);
    const lines = text.split("\n");
    this.#carry = lines.pop()!;
    for (const line of lines) {
      if (line === "version") {
        const cfg = this.net.config(this.host);
        const probe = this.probes.find((p) => !p.read);
        if (probe !== undefined) probe.read = true;
        if (!cfg.answers) {
          if (probe !== undefined) probe.ignored = true;
          continue;
        }
        const covers = this.#unacked;
        this.#unacked = 0;
        // A server answers in the order it was asked.
        const at = Math.max(this.#lastAnswerAt, this.net.sched.mono + cfg.answerDelayMs);
        this.#lastAnswerAt = at;
        this.net.sched.setSim(
          () => {
            if (!this.#open) return;
            // The client takes an answer for its oldest probe: those ignored before it are done too.
            const answered = this.probes.findIndex((p) => !p.ignored);
            this.probes.splice(0, answered + 1);
            this.net.ack(this.pid, covers);
            this.lastSignalAt = this.net.sched.mono;
            this.onLine(PROBE_ANSWER);
            this.onLine(PROBE_TAIL);
          },
          at - this.net.sched.mono,
        );
        continue;
      }
      const m = /^put (\S+) \d+ (\d+) (.*)$/.exec(line);
      if (m === null) continue; // a torn line: the TSD rejects it
      const series = `${m[1]} ${m[3]}`;
      const arrival = { id: Number(m[2]), series, pid: this.pid, conn: this.id, at: this.net.sched.mono };
      if (this.net.acknowledging) this.#request.push(arrival);
      else this.net.arrivals.push(arrival);
      this.#unacked++;
      this.#linesRead++;
    }
  }

  /** Telnet: a write's `done` once it is in the "kernel" below the high-water mark. */
  #notifyBelowWater(): void {
    if (this.net.acknowledging) return;
    let total = 0;
    for (const p of this.#buffer) total += p.data.length - p.read;
    let cum = 0;
    for (const p of this.#buffer) {
      cum += p.data.length - p.read;
      if (!p.notified && cum - (p.data.length - p.read) < HIGH_WATER) {
        p.notified = true;
        const done = p.done;
        this.#completions++;
        queueMicrotask(() => done());
      }
    }
    if (total < HIGH_WATER) {
      const waiters = this.#readyWaiters;
      this.#readyWaiters = [];
      if (waiters.length > 0) this.#completions++;
      for (const w of waiters) w.resolve();
    }
    if (this.#ending && this.#buffer.length === 0) this.#finish(undefined);
  }

  ready(): Promise<void> {
    if (!this.#open) return Promise.reject(new Error("connection closed"));
    if (this.#buffered < HIGH_WATER) return Promise.resolve();
    return new Promise((resolve, reject) => this.#readyWaiters.push({ resolve, reject }));
  }

  end(): void {
    if (!this.#open || this.#ending) return;
    this.#ending = true;
    this.endedByClient = true;
    this.#pump();
    // Answers still due arrive, then it closes (a stalled server never lets it: destroy ends it).
    if (this.#buffer.length === 0 && this.#answers.length === 0) this.#finish(undefined);
  }

  destroy(): void {
    if (!this.#open) return;
    this.#finish(undefined, new Error("destroyed"));
  }

  /** The server ends it cleanly. */
  serverEnd(error: Error | undefined): void {
    if (!this.#open) return;
    this.#finish(error, new Error("connection closed by the server"));
  }

  #reset(): void {
    this.#finish(Object.assign(new Error("ECONNRESET"), { code: "ECONNRESET" }));
  }

  /** The process died. */
  gone(): void {
    this.#open = false;
    for (const a of this.#answers) this.net.sched.clear(a.timer);
    this.net.open.delete(this);
    this.net.sched.clear(this.#readTimer);
  }

  #finish(error: Error | undefined, pendingError: Error = error ?? new Error("connection closed")): void {
    if (!this.#open) return;
    this.#open = false;
    this.net.open.delete(this);
    this.net.sched.clear(this.#readTimer);
    for (const a of this.#answers) {
      // Stored, but the answer is lost: the client cannot know.
      this.net.sched.clear(a.timer);
      for (const id of a.ids) this.net.answerLost.add(id);
      if (!a.p.notified) {
        a.p.notified = true;
        const done = a.p.done;
        queueMicrotask(() => done(pendingError));
      }
    }
    this.#answers = [];
    for (const p of this.#buffer) {
      if (!p.notified) {
        p.notified = true;
        const done = p.done;
        queueMicrotask(() => done(pendingError));
      }
    }
    this.#buffer = [];
    this.#buffered = 0;
    for (const w of this.#readyWaiters) w.reject(pendingError);
    this.#readyWaiters = [];
    this.#resolveClosed(error);
  }

  ref(): void {}
  unref(): void {}
}
