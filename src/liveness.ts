/**
 * Whether an open telnet connection is alive, and what the server has
 * acknowledged. OpenTSDB answers the `version` command, and since TCP keeps
 * order and OpenTSDB handles lines in order, its answer confirms every line
 * written before the probe. A connection is *unproven* until a probe is
 * answered, *acknowledging* after that, and *silent* once its first probe
 * went unanswered on a server never heard to answer (VictoriaMetrics logs
 * `version` as a bad line and never replies): a silent connection gets no
 * more probes and is judged by write progress alone.
 *
 * @module
 */

/** What {@linkcode Liveness.tick} asks the writer to do. */
export type LivenessAction = "probe" | "stalled" | "silent" | undefined;

/** The probe command: never the first bytes of a connection (VictoriaMetrics picks its protocol from them). */
export const PROBE = new TextEncoder().encode("version\n");

/**
 * InfluxDB 1.x's whole answer to `version`, sent without a line ending
 * (`lineSplitter` in `runtime.ts` cuts it off as a line of its own).
 */
export const INFLUXDB_ANSWER = "InfluxDB TSDB proxy";

/**
 * Whether a server line is the first line of OpenTSDB's answer to
 * `version` (`net.opentsdb.tools 2.4.0 built at revision …`), or InfluxDB's
 * answer (`InfluxDB TSDB proxy`).
 *
 * @param line a line the server sent
 * @returns whether it answers a probe
 *
 * @example
 * ```ts
 * import { isProbeAnswer } from "./liveness.ts";
 *
 * console.assert(isProbeAnswer("net.opentsdb.tools 2.4.0 built at revision 1a2b3c4 (MINT)"));
 * console.assert(isProbeAnswer("InfluxDB TSDB proxy"));
 * console.assert(!isProbeAnswer("put: illegal argument: invalid value"));
 * ```
 */
export function isProbeAnswer(line: string): boolean {
  return (line.startsWith("net.opentsdb") && line.includes(" built at revision ")) ||
    line === INFLUXDB_ANSWER;
}

/**
 * Whether a server line is the second line of the answer to `version`
 * (`Built on 2019/01/01 00:00:00 +0000 by user@host:/path`).
 *
 * @param line a line the server sent
 * @returns whether it is that line
 *
 * @example
 * ```ts
 * import { isProbeAnswerTail } from "./liveness.ts";
 *
 * console.assert(isProbeAnswerTail("Built on 2019/01/01 00:00:00 +0000 by user@host:/path"));
 * ```
 */
export function isProbeAnswerTail(line: string): boolean {
  return line.startsWith("Built on ");
}

/** Settings of a {@linkcode Liveness}. */
export interface LivenessOptions {
  /** How often to probe while lines have been written since the last answer; 0 = never. */
  heartbeatMs: number;
  /** No write progress while bytes wait, or no answer to a probe, for this long: the connection is dead. */
  stallTimeoutMs: number;
  /** The server at this address answered probes before: an unanswered first probe means a stall. */
  expectAnswers: boolean;
  /** The clock, in ms. */
  now: () => number;
}

/**
 * The state of one connection's liveness, driven by the writer: it reports
 * write progress, probes sent and answers, and calls `tick()` periodically.
 *
 * @example
 * ```ts
 * import { Liveness } from "./liveness.ts";
 *
 * let now = 0;
 * const live = new Liveness({ heartbeatMs: 5000, stallTimeoutMs: 15000, expectAnswers: false, now: () => now });
 * now = 5000;
 * console.assert(live.tick(false) === undefined); // nothing written yet: never the first bytes
 * live.written(10); // ten lines handed to the connection
 * console.assert(live.tick(false) === "probe");
 * live.probeSent();
 * console.assert(live.answered() === 10 && live.state === "acknowledging");
 * now = 11000;
 * console.assert(live.tick(false) === undefined); // nothing new written: no probe
 * ```
 */
export class Liveness {
  /** `unproven`, `acknowledging` or `silent`. */
  state: "unproven" | "acknowledging" | "silent" = "unproven";
  readonly #o: LivenessOptions;
  #lastProgress: number;
  #lastProbe: number;
  /** The outstanding probes, oldest first: when each was sent, and the sequence number it covers up to. */
  #outstanding: { at: number; covers: number }[] = [];
  #covered = -1;
  #writtenEnd = -1;
  #probes = 0;

  /** @param options heartbeat, stall timeout, what the address did before, clock */
  constructor(options: LivenessOptions) {
    this.#o = options;
    this.#lastProgress = this.#lastProbe = options.now();
  }

  /** Whether written lines are kept until an answer confirms them (or the server proves silent). */
  get retaining(): boolean {
    return this.#o.heartbeatMs > 0 && this.state !== "silent";
  }

  /**
   * Whether what is kept is written again if the connection dies: once the
   * server answered (here, or earlier at this address). Until then delivery
   * stays at-most-once, so that a server that never answers gets no
   * duplicates.
   */
  get replays(): boolean {
    return this.retaining && (this.state === "acknowledging" || this.#o.expectAnswers);
  }

  /**
   * Whether the server is expected to answer: it did on this connection, or
   * earlier at this address. A graceful end then waits for a last answer.
   */
  get expectsAnswers(): boolean {
    return this.#o.heartbeatMs > 0 &&
      (this.state === "acknowledging" || (this.state === "unproven" && this.#o.expectAnswers));
  }

  /** Whether a probe waits for its answer. */
  get probing(): boolean {
    return this.#outstanding.length > 0;
  }

  /** Whether lines were handed to the connection after the last probe (or answer). */
  get uncovered(): boolean {
    return this.#writtenEnd > (this.#outstanding.at(-1)?.covers ?? this.#covered);
  }

  /** Sequence number just past the lines the last answer confirmed (-1 before any). */
  get covered(): number {
    return this.#covered;
  }

  /**
   * Whether the connection's first probe is due: right after its first
   * lines, so that a server that answers is known as such within a round
   * trip (a graceful end then knows to wait for its last answer).
   */
  get firstProbeDue(): boolean {
    return this.#o.heartbeatMs > 0 && this.#probes === 0 && this.#writtenEnd > this.#covered;
  }

  /**
   * Lines up to `end` (a sequence number just past them) were handed to this connection.
   *
   * @param end sequence number just past the batch's last line
   */
  written(end: number): void {
    if (end > this.#writtenEnd) this.#writtenEnd = end;
  }

  /** Bytes reached the operating system: the connection moves. */
  progressed(): void {
    this.#lastProgress = this.#o.now();
  }

  /**
   * Bytes the connection had backed up on reached the operating system: the
   * peer reads, slowly perhaps. A probe behind those bytes cannot have been
   * answered yet, so its wait starts again. (Progress into an empty kernel
   * buffer proves nothing of the peer: a partitioned one takes bytes too.)
   */
  peerRead(): void {
    const now = this.#o.now();
    this.#lastProgress = now;
    if (this.#outstanding.length > 0) this.#outstanding[0].at = now;
  }

  /**
   * Decides what to do now.
   *
   * @param waiting whether written bytes wait for the connection to take them
   * @returns `stalled` (the connection is dead), `silent` (its server does not answer
   * probes: stop probing and keep nothing for replay), `probe` (send one), or nothing
   */
  tick(waiting: boolean): LivenessAction {
    const now = this.#o.now();
    const stall = this.#o.stallTimeoutMs;
    if (waiting && now - this.#lastProgress > stall) return "stalled";
    const probe = this.#outstanding[0];
    if (probe !== undefined) {
      if (now - probe.at <= stall) return undefined;
      if (this.state === "acknowledging" || this.#o.expectAnswers) return "stalled";
      this.state = "silent";
      this.#outstanding = [];
      return "silent";
    }
    const due = this.#o.heartbeatMs > 0 && this.state !== "silent" &&
      now - this.#lastProbe >= this.#o.heartbeatMs;
    return due && this.#writtenEnd > this.#covered ? "probe" : undefined;
  }

  /** A probe was written after the lines handed to the connection so far. */
  probeSent(): void {
    const covers = this.#writtenEnd;
    this.#probes++;
    this.#lastProbe = this.#o.now();
    this.#outstanding.push({ at: this.#lastProbe, covers });
  }

  /**
   * The server answered the oldest outstanding probe (answers come in order).
   *
   * @returns the sequence number just past the lines now confirmed, or
   * `undefined` when no probe was outstanding
   */
  answered(): number | undefined {
    const probe = this.#outstanding.shift();
    if (probe === undefined) {
      // A late answer to a probe given up on: the server answers after all (it was slow, not
      // VictoriaMetrics). What was written meanwhile went as unconfirmed; from now on lines are
      // kept and probed again.
      if (this.state === "silent") this.state = "acknowledging";
      return undefined;
    }
    this.#covered = probe.covers;
    this.state = "acknowledging";
    return probe.covers;
  }
}
