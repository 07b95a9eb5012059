/**
 * OpenTSDB's HTTP `/api/put` as a transport, over `fetch`.
 *
 * The client's queue, rate limit, batching and stats work as with TCP; this
 * transport turns each batch of `put` lines back into JSON points and POSTs
 * them in requests whose body stays within `maxBodyBytes` on the wire
 * (OpenTSDB refuses larger ones by default), gzip-compressed unless told
 * otherwise. A batch counts as sent only once the server has answered for
 * it, so `flush()` and `close()` mean "stored or refused by the server".
 *
 * - Points the server refuses (HTTP 400 with `?details`) are dropped, not
 *   retried: counted in `stats().dropped.rejected` and reported by a `drop`
 *   event whose `rejections` carry each point and the server's reason.
 * - Network errors, timeouts and other answers (5xx, 401, 403, 404, 429, a
 *   400 that is not OpenTSDB's) are retried with a capped backoff, in order, without losing a point;
 *   each failed request is counted in `stats().connectFailures` and reported
 *   by an `error` event.
 * - A body refused for its size (a 413, or the 400 that OpenTSDB or
 *   VictoriaMetrics answers for it) is sent again in halves; the limit
 *   doubles back toward `maxBodyBytes` after a run of successful requests.
 * - Up to `maxInFlight` requests (4) are out at once, and their answers are
 *   applied in the order the requests went out. A point waits while another
 *   point of its cell (metric, timestamp and tags) is in a request out, so the
 *   value sent last for a cell is the one the server stores last; points of
 *   different cells may arrive in any order. `maxInFlight: 1` sends one
 *   request at a time, in order. After a failed request no new one goes out
 *   until a request passes; the requests out retry after one shared delay.
 * - The transport knows no hostname: pass `hostTag` as a string, or `false`.
 *   It opens no connection up front, so `Client.connect`'s start-up check
 *   proves nothing here.
 *
 * @example
 * ```ts
 * import { Client } from "@x/potsdb";
 * import { httpTransport } from "@x/potsdb/http";
 *
 * const metrics = new Client("tsd.example.com:4242", {
 *   transport: httpTransport({ basicAuth: { username: "metrics", password: "secret" } }),
 *   hostTag: "web1",
 * });
 * metrics.send("app.requests", 1, { route: "home" });
 * const stats = await metrics.close();
 * console.log(stats.sent, stats.dropped.rejected);
 * ```
 *
 * @module
 */

import { Backoff, type BackoffOptions, sleep } from "../backoff.ts";
import { HttpError, OptionsError } from "../errors.ts";
import { connectionClosed, MAX_TIMER_MS, ReadyWaiters, unrefTimer } from "../runtime.ts";

export { HttpError };
import { CellCounts } from "./cell_counts.ts";
import { type JsonPoint, lineOf, putLinesToJson } from "./put_json.ts";
import type { Connection, ConnectOptions, Rejection, Transport } from "./types.ts";

export type { Rejection };

/** Options of {@linkcode httpTransport}; every one has a default. */
export interface HttpTransportOptions {
  /** `"http"` or `"https"`. Default `"http"`. */
  scheme?: "http" | "https";
  /** Path of the put endpoint. Default `"/api/put"`. */
  path?: string;
  /**
   * Largest request body on the wire in bytes (after compression). Default
   * 8192, OpenTSDB's default limit; at least 2048.
   */
  maxBodyBytes?: number;
  /**
   * Requests out at once, at most (1 to 64). Default 4. Points of one cell
   * (metric, timestamp and tags) never travel in two requests at once, so the
   * value sent last is the one stored last; points of different cells may
   * arrive in any order. 1 sends one request at a time, in order.
   */
  maxInFlight?: number;
  /** Compress bodies with gzip. Default true. */
  gzip?: boolean;
  /**
   * Gzip's level, 1 (fastest) to 9 (smallest). Default 1: a body of 8 KiB
   * on the wire then holds about two thirds of the points it holds at level
   * 6, for half the CPU time, and the client's CPU is what limits the rate.
   * Applies where the runtime has `node:zlib` (Node, Deno, Bun); elsewhere
   * `CompressionStream` compresses at its own level.
   */
  gzipLevel?: number;
  /** HTTP Basic credentials. */
  basicAuth?: { username: string; password: string };
  /** A bearer token, sent as `Authorization: Bearer <token>`. */
  bearerToken?: string;
  /** More request headers (e.g. for a proxy). */
  headers?: Record<string, string>;
  /** Longest wait for one request's answer, in ms (at most 2^31−1). Default 10000. */
  requestTimeoutMs?: number;
  /** Delays between retries of a failed request: `initialMs` (100), `maxMs` (10000), `factor` (2). */
  retry?: BackoffOptions;
  /**
   * Ignored: requests always ask for per-point errors (`?details`).
   *
   * OpenTSDB stores the good points of a body and refuses the others one by one;
   * without `?details` its 400 does not say which, so the transport could only
   * count the whole body as refused, stored points included.
   *
   * @deprecated has no effect
   */
  details?: boolean;
  /** The `fetch` to use. Default: the global one. */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  /**
   * Ask the server to answer only once the points are stored (OpenTSDB's
   * `?sync`): a point then counts as sent only when it is durable, not when
   * it was accepted into the server's write buffer. Default false.
   */
  sync?: boolean;
  /** With `sync`, how long the server may take to store them (`sync_timeout`, ms). Default: the server's (no limit). */
  syncTimeoutMs?: number;
}

const DEFAULT_MAX_BODY = 8192;
const DEFAULT_MAX_IN_FLIGHT = 4;
const MAX_IN_FLIGHT = 64;
const MIN_MAX_BODY = 2048;
/** Successful requests after which a lowered body limit doubles again (up to `maxBodyBytes`). */
const GROW_AFTER = 50;
/** OpenTSDB 2.x's answer (in `{"error":{"message":…}}`) to a body over its chunk size, 8192 bytes by default. */
const OPENTSDB_TOO_LARGE = /^Chunked request not supported\.?$/i;
/** VictoriaMetrics' plain-text answer to a body over `-opentsdbhttp.maxInsertRequestSize`. */
const VICTORIA_TOO_LARGE =
  /too big HTTP OpenTSDB request; mustn't exceed `?-opentsdbhttp\.maxInsertRequestSize/;
/**
 * Bytes of lines in no request yet before `write()` asks the writer to wait.
 * Requests out hold their own (each takes at most what was waiting), so a
 * connection holds at most (`maxInFlight` + 1) times this, and the next body
 * always has points to be cut from, however well they compress.
 */
const HIGH_WATER_MARK = 256 * 1024;
const encoder = new TextEncoder();

interface BatchRecord {
  /** Points of this batch not yet answered for. */
  left: number;
  rejections: Rejection[];
  done: (error?: Error, rejected?: readonly Rejection[]) => void;
  /** Its `put` lines, as written (the writer keeps them until `done`). */
  input: Uint8Array;
  /** Its points' JSON objects, separated by commas. */
  json: Uint8Array;
}

type Point = JsonPoint<BatchRecord>;

/** Bytes of the lines of `points[from…]`, newlines included. */
function lineBytes(points: readonly Point[], from = 0): number {
  let n = 0;
  for (let i = from; i < points.length; i++) n += points[i].lineEnd - points[i].lineStart + 1;
  return n;
}

function lineOfPoint(p: Point): string {
  return lineOf(p.batch.input, p);
}

/** Identifies a point by metric, timestamp and tags, as the server echoes it back. */
function pointKey(metric: unknown, timestamp: unknown, tags: unknown): string {
  const t = tags && typeof tags === "object" ? tags as Record<string, unknown> : {};
  const sorted = Object.keys(t).sort().map((k) => `${k}=${String(t[k])}`).join(" ");
  return `${String(metric)} ${Number(timestamp)} ${sorted}`;
}

function lineKey(line: string): string {
  const words = line.split(" ");
  const tags: Record<string, string> = {};
  for (const word of words.slice(4)) {
    const eq = word.indexOf("=");
    tags[word.slice(0, eq)] = word.slice(eq + 1);
  }
  return pointKey(words[1], words[2], tags);
}

/** The part of `node:zlib` used here. */
interface NodeZlib {
  gzip(
    data: Uint8Array,
    options: { level: number },
    callback: (error: Error | null, result: Uint8Array) => void,
  ): void;
}

/**
 * `node:zlib` where the runtime has it (Node, Deno and Bun, through
 * `process.getBuiltinModule`, so that nothing imports it where it is
 * missing): it compresses off the main thread, at a quarter of the cost of
 * a `CompressionStream` per body (whose stream machinery costs more than
 * the compression of a body of a few dozen KB).
 */
const nodeZlib = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process
  ?.getBuiltinModule?.("node:zlib") as NodeZlib | undefined;

function gzip(data: Uint8Array, level: number): Promise<Uint8Array> {
  if (nodeZlib !== undefined) {
    return new Promise((resolve, reject) =>
      nodeZlib.gzip(data, { level }, (error, result) => error ? reject(error) : resolve(result))
    );
  }
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Response(stream).arrayBuffer().then((buffer) => new Uint8Array(buffer));
}

/**
 * Whether an answer refuses the body for its size, so that a smaller one may
 * pass: a 413, or a 400 in the servers' own words for it. Only these: a
 * per-point refusal whose reason or echoed point happens to say "too large"
 * must not shrink every later request.
 */
function tooLarge(status: number, text: string): boolean {
  if (status === 413) return true;
  if (status !== 400) return false;
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    return VICTORIA_TOO_LARGE.test(text);
  }
  const message = (answer as { error?: { message?: unknown } } | null)?.error?.message;
  return typeof message === "string" && OPENTSDB_TOO_LARGE.test(message.trim());
}

function explain(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = e.cause instanceof Error ? (e.cause as Error & { code?: string }) : undefined;
  return cause ? `${e.message} (${cause.code ?? cause.message})` : e.message;
}

interface Settings {
  url: string;
  headers: Record<string, string>;
  gzip: boolean;
  gzipLevel: number;
  maxBodyBytes: number;
  maxInFlight: number;
  requestTimeoutMs: number;
  retry: BackoffOptions | undefined;
  fetch: (input: string, init: RequestInit) => Promise<Response>;
}

/** What one request came to. */
type Outcome =
  | { kind: "stored"; rejections: Map<number, Rejection> }
  | { kind: "tooLarge"; reason: string };

/** One request: its points, the body limit it was cut to, and its outcome once answered. */
interface Request {
  points: Point[];
  limit: number;
  /** Bytes of its body on the wire. */
  size: number;
  outcome?: Outcome;
}

/**
 * The connection as a loop: cut a body from the front points while fewer
 * than `maxInFlight` requests are out, and apply the answers in the order the
 * requests went out, so that batches settle in order. A point whose cell
 * (metric, timestamp, tags) is in a request still out waits for its answer:
 * the server keeps the value that arrives last, and that must be the one sent
 * last. Points of different cells may arrive in any order.
 */
class HttpConnection implements Connection {
  readonly closed: Promise<Error | undefined>;
  #s: Settings;
  #onError: (error: Error) => void;
  /** Points in no request yet, oldest first. */
  #points: Point[] = [];
  /** Requests out, or answered but not yet applied, in the order they went out. */
  #requests: Request[] = [];
  /** Cells of the points in `#requests`, with how many points of each. */
  #busy = new CellCounts();
  #batches: BatchRecord[] = [];
  /** Bytes of the lines in `#points` (and their newlines). */
  #waitingBytes = 0;
  #running = false;
  /** Resumes the loop when it waits for an answer or for points. */
  #wake: (() => void) | undefined;
  #ending = false;
  #done = false;
  #refd = true;
  /** A request failed and none has passed since: no new ones go out, those out retry together. */
  #failing = false;
  /** The backoff sleep that failed requests wait out together. */
  #pause: Promise<void> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #abort = new AbortController();
  #backoff: Backoff;
  /** Gzip's size ratio seen last, to size the next body. */
  #ratio = 4;
  /** The body limit, lowered when the server refuses a body as too large. */
  #limit: number;
  /** Successful requests since the limit was last lowered or raised. */
  #fits = 0;
  readonly #waiters = new ReadyWaiters();
  #resolveClosed!: (e: Error | undefined) => void;

  constructor(settings: Settings, onError: (error: Error) => void) {
    this.#s = settings;
    this.#onError = onError;
    this.#limit = settings.maxBodyBytes;
    this.#backoff = new Backoff({ initialMs: 100, maxMs: 10_000, ...settings.retry });
    this.closed = new Promise((resolve) => this.#resolveClosed = resolve);
  }

  write(bytes: Uint8Array, done: (error?: Error, rejected?: readonly Rejection[]) => void): boolean {
    if (this.#done || this.#ending) {
      queueMicrotask(() => done(connectionClosed()));
      return false;
    }
    const batch: BatchRecord = { left: 0, rejections: [], done, input: bytes, json: bytes };
    const before = this.#points.length;
    batch.json = putLinesToJson(bytes, batch, this.#points);
    batch.left = this.#points.length - before;
    this.#batches.push(batch);
    this.#waitingBytes += lineBytes(this.#points, before);
    if (!this.#running) this.#run();
    else this.#resume();
    return this.#waitingBytes < HIGH_WATER_MARK;
  }

  ready(): Promise<void> {
    if (this.#done) return Promise.reject(connectionClosed());
    if (this.#waitingBytes < HIGH_WATER_MARK) return Promise.resolve();
    return this.#waiters.wait();
  }

  end(): void {
    if (this.#done || this.#ending) return;
    this.#ending = true;
    if (!this.#running) this.#finish();
  }

  destroy(): void {
    this.#finish();
  }

  ref(): void {
    this.#refd = true;
  }

  unref(): void {
    this.#refd = false;
    if (this.#timer !== undefined) unrefTimer(this.#timer);
  }

  #resume(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      while (!this.#done) {
        while (this.#requests.length > 0 && this.#requests[0].outcome !== undefined) {
          this.#apply(this.#requests.shift()!);
        }
        if (this.#mayStart()) {
          // Batches that arrive meanwhile join the same loop, so bodies span batches.
          await this.#start();
          continue;
        }
        if (this.#requests.length === 0) break;
        await new Promise<void>((resolve) => this.#wake = resolve);
      }
    } catch (e) {
      this.#finish(e instanceof Error ? e : new Error(String(e)));
    } finally {
      this.#running = false;
      this.#wake = undefined;
    }
    if (this.#ending && !this.#done) this.#finish();
  }

  #mayStart(): boolean {
    const points = this.#points;
    if (points.length === 0 || this.#requests.length >= this.#s.maxInFlight) return false;
    if (this.#failing && this.#requests.length > 0) return false;
    return this.#busy.size === 0 || !this.#busy.has(points[0].cell);
  }

  /** Sends a body of the front points (or refuses the first, too large for any body). */
  async #start(): Promise<void> {
    const limit = this.#limit;
    const { count, body } = await this.#nextBody();
    if (this.#done) return;
    const points = this.#points.splice(0, count);
    this.#waitingBytes -= lineBytes(points);
    if (this.#waitingBytes < HIGH_WATER_MARK) this.#waiters.resolveAll();
    const request: Request = { points, limit, size: body?.length ?? 0 };
    for (const p of points) this.#busy.add(p.cell);
    this.#requests.push(request);
    if (body === undefined) {
      // One point larger than the limit even on its own: no server would take it.
      const reason = `larger than the body limit (${limit} bytes) on its own`;
      request.outcome = {
        kind: "stored",
        rejections: new Map([[0, { line: lineOfPoint(points[0]), reason }]]),
      };
      return;
    }
    this.#post(body, points).then((outcome) => {
      if (outcome === undefined) return; // destroyed
      request.outcome = outcome;
      this.#resume();
    }, (e) => this.#finish(e instanceof Error ? e : new Error(String(e))));
  }

  /** How many front points a body may take: up to the first whose cell is in a request out. */
  #free(count: number): boolean {
    const points = this.#points;
    return count < points.length && (this.#busy.size === 0 || !this.#busy.has(points[count].cell));
  }

  /** Applies a request's answer: settles its points, or queues them again in halves. */
  #apply(request: Request): void {
    const { points, outcome } = request;
    for (const p of points) {
      this.#busy.remove(p.cell);
    }
    if (outcome!.kind === "tooLarge") {
      this.#fits = 0;
      if (points.length === 1) {
        this.#settle(points, new Map([[0, { line: lineOfPoint(points[0]), reason: outcome!.reason }]]));
        return;
      }
      // The server's limit is lower than ours: halve the bodies until they pass. Requests
      // cut to the same limit that were out at once lower it once.
      if (request.limit <= this.#limit) {
        this.#limit = Math.max(1, Math.floor(Math.min(this.#limit, request.size) / 2));
      }
      this.#points.unshift(...points);
      this.#waitingBytes += lineBytes(points);
      return;
    }
    if (this.#limit < this.#s.maxBodyBytes && ++this.#fits >= GROW_AFTER) {
      // The refusal may have been passing (a proxy, a server restarted with other
      // settings): try larger bodies again. A limit still lower costs one refused
      // request per GROW_AFTER, each reported.
      this.#limit = Math.min(this.#s.maxBodyBytes, this.#limit * 2);
      this.#fits = 0;
    }
    this.#settle(points, outcome!.rejections);
  }

  /** Builds the next body from the front points: as many as fit the limit. */
  async #nextBody(): Promise<{ count: number; body: Uint8Array | undefined }> {
    const points = this.#points;
    const limit = this.#limit;
    if (!this.#s.gzip) {
      let size = 2 + points[0].end - points[0].start;
      if (size > limit) return { count: 1, body: undefined };
      let count = 1;
      while (this.#free(count) && size + 1 + points[count].end - points[count].start <= limit) {
        size += 1 + points[count].end - points[count++].start;
      }
      return { count, body: this.#array(count) };
    }
    // Take what should compress to just under the limit; then correct the
    // guess from the size gzip gave: shrink until it fits, grow (a few
    // times at most) while it leaves much of the limit unused.
    let count = 1;
    let raw = 2 + points[0].end - points[0].start;
    const target = limit * this.#ratio * 0.9;
    while (this.#free(count) && raw + 1 + points[count].end - points[count].start <= target) {
      raw += 1 + points[count].end - points[count++].start;
    }
    let best: { count: number; body: Uint8Array } | undefined;
    for (let tries = 0;; tries++) {
      const plain = this.#array(count);
      const body = await gzip(plain, this.#s.gzipLevel);
      if (this.#done) return { count, body };
      this.#ratio = Math.max(1, plain.length / body.length);
      if (body.length <= limit) {
        best = { count, body };
        if (body.length > limit * 0.8 || tries >= 3) return best;
        const wanted = Math.max(count + 1, Math.floor((count * limit * 0.9) / body.length));
        let more = count;
        while (more < wanted && this.#free(more)) more++;
        if (more === count) return best;
        count = more;
        continue;
      }
      if (best !== undefined) return best;
      if (count === 1) return { count, body: undefined };
      count = Math.max(1, Math.min(count - 1, Math.floor((count * limit * 0.9) / body.length)));
    }
  }

  /** The JSON array of the first `count` points: one copy per run of points of one batch. */
  #array(count: number): Uint8Array {
    const points = this.#points;
    let size = 1 + count;
    for (let i = 0; i < count; i++) size += points[i].end - points[i].start;
    const body = new Uint8Array(size);
    body[0] = 0x5b; // [
    let o = 1;
    for (let i = 0; i < count;) {
      const { batch, start } = points[i];
      let end = points[i].end;
      // Points of one batch follow each other in its buffer, one comma apart.
      for (i++; i < count && points[i].batch === batch && points[i].start === end + 1; i++) {
        end = points[i].end;
      }
      if (o > 1) body[o++] = 0x2c; // ,
      body.set(batch.json.subarray(start, end), o);
      o += end - start;
    }
    body[o] = 0x5d; // ]
    return body;
  }

  /** POSTs one body until the server answers for it; undefined once destroyed. */
  async #post(body: Uint8Array, points: readonly Point[]): Promise<Outcome | undefined> {
    const s = this.#s;
    for (;;) {
      if (this.#done) return undefined;
      const timeout = new AbortController();
      const timer = setTimeout(() => timeout.abort(), s.requestTimeoutMs);
      if (!this.#refd) unrefTimer(timer);
      let status: number;
      let text: string;
      try {
        const response = await s.fetch(s.url, {
          method: "POST",
          headers: s.headers,
          body: body as Uint8Array<ArrayBuffer>,
          signal: AbortSignal.any([this.#abort.signal, timeout.signal]),
        });
        status = response.status;
        text = await response.text();
      } catch (e) {
        if (this.#done) return undefined;
        const why = timeout.signal.aborted ? `no answer within ${s.requestTimeoutMs} ms` : explain(e);
        await this.#failed(new Error(`POST ${s.url} failed: ${why}`, { cause: e }));
        continue;
      } finally {
        clearTimeout(timer);
      }
      if (this.#done) return undefined;
      if (status >= 200 && status < 300) {
        this.#passed();
        return { kind: "stored", rejections: this.#rejections(text, points, false) ?? new Map() };
      }
      if (tooLarge(status, text)) {
        // maxBodyBytes is above the server's limit: say so, then send smaller bodies. The
        // server answered: it is up, and other requests may go out again.
        this.#failing = false;
        const error = new HttpError(s.url, status, text);
        this.#onError(error);
        return { kind: "tooLarge", reason: error.message };
      }
      if (status === 400) {
        const rejections = this.#rejections(text, points, true);
        if (rejections !== undefined) {
          this.#passed();
          return { kind: "stored", rejections };
        }
        // Not OpenTSDB's answer about these points (a proxy, a wrong path): keep them and retry.
      }
      await this.#failed(new HttpError(s.url, status, text));
    }
  }

  #passed(): void {
    this.#backoff.reset();
    this.#failing = false;
  }

  /**
   * Reports a failed request and waits before it is sent again. Requests out
   * at once that fail wait out one backoff delay together, so the delay grows
   * once per round of failures, not once per request.
   */
  async #failed(error: Error): Promise<void> {
    // Before the report: points sent from an error listener wait too.
    this.#failing = true;
    this.#onError(error);
    this.#pause ??= sleep(this.#backoff.next(), this.#abort.signal, (timer) => {
      this.#timer = timer;
      if (!this.#refd) unrefTimer(timer);
    }).then(() => {
      this.#timer = undefined;
      this.#pause = undefined;
    });
    await this.#pause;
  }

  /**
   * Reads `?details` errors and matches them to the body's points, by index.
   * An OpenTSDB refusal without details (`{"error":{"message":…}}`) refuses
   * the whole body, with the server's message; an error that matches no
   * point still counts, against the first point not yet refused (with the
   * server's copy of the point as its line). Undefined when a refusal is not
   * an OpenTSDB answer at all.
   */
  #rejections(text: string, points: readonly Point[], refused: boolean): Map<number, Rejection> | undefined {
    const result = new Map<number, Rejection>();
    const count = points.length;
    let answer: unknown;
    try {
      answer = text ? JSON.parse(text) : undefined;
    } catch {
      answer = undefined;
    }
    const errors = (answer as { errors?: unknown })?.errors;
    if (!Array.isArray(errors)) {
      if (!refused) return result;
      const message = (answer as { error?: { message?: unknown } })?.error?.message;
      if (typeof message !== "string") return undefined;
      const reason = message;
      for (let i = 0; i < count; i++) result.set(i, { line: lineOfPoint(points[i]), reason });
      return result;
    }
    const lines = points.map(lineOfPoint);
    const byKey = new Map<string, number[]>();
    for (let i = 0; i < count; i++) {
      const key = lineKey(lines[i]);
      const list = byKey.get(key);
      if (list) list.push(i);
      else byKey.set(key, [i]);
    }
    const unmatched: Rejection[] = [];
    for (const item of errors.slice(0, count)) {
      const datapoint = (item as { datapoint?: Record<string, unknown> })?.datapoint ?? {};
      const reason = String((item as { error?: unknown })?.error ?? "refused");
      // Points of one cell in one body share the key: the echoed value tells which was refused.
      const list = byKey.get(pointKey(datapoint.metric, datapoint.timestamp, datapoint.tags));
      const same = list?.findIndex((i) => Number(lines[i].split(" ")[3]) === Number(datapoint.value));
      const index = list?.splice(same !== undefined && same >= 0 ? same : 0, 1)[0];
      if (index === undefined) unmatched.push({ line: JSON.stringify(datapoint), reason });
      else result.set(index, { line: lines[index], reason });
    }
    for (let i = 0; i < count && unmatched.length > 0; i++) {
      if (!result.has(i)) result.set(i, unmatched.shift()!);
    }
    return result;
  }

  /** The server answered for `points`: settle the batches they finish, oldest first. */
  #settle(points: readonly Point[], rejections: ReadonlyMap<number, Rejection>): void {
    for (let i = 0; i < points.length; i++) {
      const batch = points[i].batch;
      const rejection = rejections.get(i);
      if (rejection !== undefined) batch.rejections.push(rejection);
      batch.left--;
    }
    while (this.#batches.length > 0 && this.#batches[0].left === 0) {
      const batch = this.#batches.shift()!;
      batch.done(undefined, batch.rejections.length > 0 ? batch.rejections : undefined);
    }
  }

  #finish(error?: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.#abort.abort();
    const lost = connectionClosed(error);
    const batches = this.#batches;
    this.#batches = [];
    this.#points = [];
    this.#requests = [];
    this.#busy.clear();
    this.#waitingBytes = 0;
    for (const b of batches) queueMicrotask(() => b.done(lost));
    this.#waiters.rejectAll(lost);
    this.#resolveClosed(error);
    this.#resume();
  }
}

/**
 * Makes a transport that sends points to OpenTSDB's `/api/put` over HTTP.
 * The client's host and port (default 4242, OpenTSDB's HTTP port too) name
 * the server.
 *
 * @param options body limit, gzip, credentials, timeouts and retries
 * @returns the transport, to pass as the client's `transport` option
 * @throws {OptionsError} for an option that cannot work
 *
 * @example
 * ```ts
 * import { Client } from "@x/potsdb";
 * import { httpTransport } from "@x/potsdb/http";
 *
 * const metrics = new Client("127.0.0.1:4242", {
 *   transport: httpTransport({ gzip: true, maxBodyBytes: 8192, bearerToken: "t0ken" }),
 *   hostTag: "web1",
 *   milliseconds: true,
 * });
 * metrics.addEventListener("drop", (event) => {
 *   const { reason, rejections = [] } = event.detail;
 *   if (reason === "rejected") for (const r of rejections) console.warn(r.line, r.reason);
 * });
 * metrics.send("app.requests", 1, { route: "home" });
 * await metrics.close();
 * ```
 */
export function httpTransport(options: HttpTransportOptions = {}): Transport {
  const scheme = options.scheme ?? "http";
  if (scheme !== "http" && scheme !== "https") throw new OptionsError(`scheme must be "http" or "https"`);
  const path = options.path ?? "/api/put";
  if (typeof path !== "string" || !path.startsWith("/") || path.includes("?")) {
    throw new OptionsError(`path must start with "/" and have no query, got ${JSON.stringify(path)}`);
  }
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < MIN_MAX_BODY) {
    throw new OptionsError(`maxBodyBytes must be an integer >= ${MIN_MAX_BODY}, got ${maxBodyBytes}`);
  }
  const maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1 || maxInFlight > MAX_IN_FLIGHT) {
    throw new OptionsError(`maxInFlight must be an integer from 1 to ${MAX_IN_FLIGHT}, got ${maxInFlight}`);
  }
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  if (!Number.isInteger(requestTimeoutMs) || requestTimeoutMs < 1 || requestTimeoutMs > MAX_TIMER_MS) {
    throw new OptionsError(
      `requestTimeoutMs must be an integer from 1 to ${MAX_TIMER_MS} (a timer's limit), got ${requestTimeoutMs}`,
    );
  }
  if (options.basicAuth && options.bearerToken !== undefined) {
    throw new OptionsError("pass basicAuth or bearerToken, not both");
  }
  const headers: Record<string, string> = { ...options.headers, "content-type": "application/json" };
  const gzipOn = options.gzip ?? true;
  const gzipLevel = options.gzipLevel ?? 1;
  if (!Number.isInteger(gzipLevel) || gzipLevel < 1 || gzipLevel > 9) {
    throw new OptionsError(`gzipLevel must be an integer from 1 to 9, got ${gzipLevel}`);
  }
  if (gzipOn) {
    if (typeof CompressionStream !== "function") {
      throw new OptionsError("gzip needs CompressionStream, which this runtime lacks: pass gzip: false");
    }
    headers["content-encoding"] = "gzip";
  }
  if (options.basicAuth) {
    const { username, password } = options.basicAuth;
    if (typeof username !== "string" || username.includes(":") || typeof password !== "string") {
      throw new OptionsError("basicAuth needs a username without ':' and a password, both strings");
    }
    const bytes = encoder.encode(`${username}:${password}`);
    headers.authorization = "Basic " + btoa(String.fromCharCode(...bytes));
  } else if (options.bearerToken !== undefined) {
    if (typeof options.bearerToken !== "string" || !/^[\x21-\x7e]+$/.test(options.bearerToken)) {
      throw new OptionsError("bearerToken must be a non-empty string of visible ASCII characters");
    }
    headers.authorization = `Bearer ${options.bearerToken}`;
  }
  const fetcher = options.fetch ?? ((input: string, init: RequestInit) => fetch(input, init));
  // Always: only the details tell which points of a refused body the server stored.
  let query = "?details";
  if (options.sync) {
    query += "&sync";
    const t = options.syncTimeoutMs;
    if (t !== undefined) {
      if (!Number.isInteger(t) || t < 1 || t >= requestTimeoutMs) {
        throw new OptionsError(
          `syncTimeoutMs must be an integer from 1 to below requestTimeoutMs (${requestTimeoutMs}), got ${t}`,
        );
      }
      query += `&sync_timeout=${t}`;
    }
  } else if (options.syncTimeoutMs !== undefined) throw new OptionsError("syncTimeoutMs needs sync: true");
  return {
    name: `http${gzipOn ? "+gzip" : ""}`,
    acknowledges: true,
    connect({ host, port, signal, onError }: ConnectOptions): Promise<Connection> {
      if (signal.aborted) return Promise.reject(signal.reason);
      const hostPart = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
      const settings: Settings = {
        url: `${scheme}://${hostPart}:${port}${path}${query}`,
        headers,
        gzip: gzipOn,
        gzipLevel,
        maxBodyBytes,
        maxInFlight,
        requestTimeoutMs,
        retry: options.retry,
        fetch: fetcher,
      };
      return Promise.resolve(new HttpConnection(settings, (error) => onError?.(error)));
    },
  };
}
