/**
 * The client's options: what each means, its default, and the checks that
 * turn a wrong one into an `OptionsError` at construction.
 *
 * @module
 */

import type { BackoffOptions } from "./backoff.ts";
import { OptionsError, ValidationError } from "./errors.ts";
import { DEFAULT_MAX_TAGS, type EncoderOptions, PutEncoder, sanitizeName } from "./put.ts";
import { MAX_TIMER_MS } from "./runtime.ts";
import { defaultTransport } from "./transport/default.ts";
import type { TlsOptions, Transport } from "./transport/types.ts";
import { spoolFactory } from "./spool/default.ts";
import type { ResolvedSpoolOptions, SpoolOptions } from "./spool/types.ts";
import type { Address, Clock, WriterOptions } from "./writer.ts";
import type { MeterOptions } from "./meter_registry.ts";

/** Options of `Client`; every one has a default (the meters' `reportMs` and `maxMeters` too). */
export interface ClientOptions extends MeterOptions {
  /** TCP port, for hosts given without one. Default 4242. */
  port?: number;
  /** Most points waiting to be written; when full the oldest is dropped. 0 = unbounded. Default 100000. */
  qsize?: number;
  /**
   * The `host` tag added to every point that has none: `true` = this
   * machine's hostname, a string = that name, `false`/`null` = none. Default true.
   */
  hostTag?: boolean | string | null;
  /** Most metrics written per second (token bucket, bursts up to one second's worth). 0 = unlimited. Default 0. */
  mps?: number;
  /** Most tags per point, host tag included (OpenTSDB's `tsd.storage.max_tags`). Default 8. */
  maxTags?: number;
  /** Replace invalid characters with `_` and drop empty tags instead of throwing. Default false. */
  sanitize?: boolean;
  /** Default timestamps (and Dates) in milliseconds instead of seconds. Default false. */
  milliseconds?: boolean;
  /** How to reach the server. Default: `autoTransport` (`node:net` on Node, Deno and Bun). */
  transport?: Transport;
  /**
   * Connect with TLS: `true` (the runtime's CAs, the host's name checked) or
   * `{ ca, cert, key, servername, rejectUnauthorized }` with PEM strings.
   * The handshake counts in `connectTimeoutMs`; a certificate refused is a
   * `ConnectError`, retried like any failed connect. Honoured by the
   * `node:net` (default), Deno and Bun transports, and by `socketsTransport`
   * as `tls: true`; `httpTransport` takes `scheme: "https"` instead. Default false.
   */
  tls?: boolean | TlsOptions;
  /** Longest wait for one connection attempt, in ms. Default 5000. */
  connectTimeoutMs?: number;
  /** How long `close()` may take to deliver what is queued, in ms. Default 10000. */
  closeTimeoutMs?: number;
  /**
   * How long, in ms, pending points may keep the process alive without any
   * progress (a script that ends without `close()` against a dead server
   * exits after this). Default 2000.
   */
  lingerMs?: number;
  /**
   * A connection that makes no write progress while bytes wait, or leaves a
   * probe unanswered, for this long is taken for dead: it is destroyed, its
   * address cools down, and what it did not acknowledge is written again on
   * the next address. In ms. Default 15000. 0 turns liveness off: no
   * watchdog, no `version` probes, so nothing is confirmed (telnet writes
   * count as `unconfirmed`) and nothing is written again (at-most-once).
   */
  stallTimeoutMs?: number;
  /**
   * How often to send OpenTSDB's `version` command while lines were written
   * since its last answer: an answer confirms every line before it. A server
   * that never answers (VictoriaMetrics) gets one probe per connection. In
   * ms; 0 = never (at-most-once). Default 5000.
   */
  heartbeatMs?: number;
  /** TCP keepalive on idle connections (node:net, Deno, Bun), in ms; 0 = off. Default 10000. */
  keepAliveMs?: number;
  /**
   * With several addresses, move to another one at random this often
   * (± 10 %), so that a restarted TSD gets its share back. In ms; 0 = never.
   * Default 0.
   */
  rebalanceMs?: number;
  /** Largest single write in bytes (lines are coalesced up to it). Default 65536. */
  batchBytes?: number;
  /** Reconnect backoff: `initialMs` (100), `maxMs` (30000), `factor` (2); jittered. */
  reconnect?: BackoffOptions;
  /** Closes the client (as `close()`) when aborted. */
  signal?: AbortSignal;
  /**
   * Time source (tests): `now()` for timestamps, `monotonic()` (else `now()`) for the rate limit, the
   * backoff and liveness, and its sleeps.
   */
  clock?: Clock;
  /**
   * A directory where points wait on disk instead of being dropped, and
   * where the next process finds and delivers them: `{ dir, maxBytes?,
   * mode?, fsync? }` (see {@linkcode SpoolOptions}). Node, Deno and Bun
   * only (the root entry); refused on Workers. Default: none.
   */
  spool?: SpoolOptions;
  /**
   * Drop a point whose metric, timestamp and tags (in the same order, default
   * and host tags included) equal those of a point already taken for that
   * metric's latest timestamp, whatever its value, as potsdb does. Counted in
   * `stats().dropped.duplicate`. Default true.
   */
  dedup?: boolean;
  /**
   * Tags added to every point that has no tag of the same key (the point's own
   * win). They count towards `maxTags`; not `host` (see `hostTag`). Checked once,
   * here. Default none.
   */
  tags?: Readonly<Record<string, string | number | bigint | boolean>>;
  /** Prepended as it is to every metric name (write the separator: `"myapp."`). Default none. */
  prefix?: string;
  /**
   * Every this many ms (0 = never; else at least 1000), send the client's own
   * counters as `potsdb.client.*` points, with the default and host tags. Default 0.
   */
  selfMetricsMs?: number;
}

/**
 * {@linkcode ClientOptions} checked, with every default filled in: the
 * writer's settings, and the client's own.
 */
export interface ResolvedOptions extends Omit<WriterOptions, "events" | "spool"> {
  closeTimeoutMs: number;
  encoder: EncoderOptions;
  spool: ResolvedSpoolOptions | undefined;
  selfMetricsMs: number;
}

/**
 * Checks a client's options and fills in the defaults.
 *
 * @param host `host`, `host:port`, `[v6]:port`, or several of them
 * @param options what the caller passed
 * @returns the options the client runs with
 * @throws {OptionsError} for an option that cannot work
 *
 * @example
 * ```ts
 * import { resolveOptions } from "./options.ts";
 * import { MemoryTransport } from "./transport/memory.ts";
 *
 * const o = resolveOptions(["a", "b:4243"], { transport: new MemoryTransport(), hostTag: "web1" });
 * console.assert(o.addresses[1].port === 4243 && o.qsize === 100_000);
 * ```
 */
export function resolveOptions(host: string | readonly string[], options: ClientOptions): ResolvedOptions {
  const port = integer("port", options.port ?? 4242, 1, 65535);
  const mps = options.mps ?? 0;
  if (!(mps >= 0) || !Number.isFinite(mps)) throw new OptionsError(`mps must be >= 0, got ${mps}`);
  const plain = options.transport ?? defaultTransport();
  if (plain === undefined) {
    throw new OptionsError(
      "this runtime has no TCP sockets: pass a transport, e.g. socketsTransport(connect) from " +
        '"@x/potsdb/sockets" or httpTransport() from "@x/potsdb/http"',
    );
  }
  const transport = withTls(plain, options.tls);
  const encoder: EncoderOptions = {
    maxTags: integer("maxTags", options.maxTags ?? DEFAULT_MAX_TAGS, 1),
    sanitize: options.sanitize,
    host: hostTag(options.hostTag, transport),
    milliseconds: options.milliseconds,
    dedup: flag("dedup", options.dedup ?? true),
    tags: options.tags,
    prefix: options.prefix,
  };
  checkEncoder(encoder);
  const selfMetricsMs = selfMetrics(options.selfMetricsMs ?? 0);
  if (selfMetricsMs > 0) {
    const tags = (encoder.host === undefined ? 0 : 1) + Object.keys(options.tags ?? {}).length;
    // `potsdb.client.dropped` adds a `reason` tag.
    if (tags === 0 || tags + 1 > encoder.maxTags!) {
      throw new OptionsError(
        tags === 0
          ? "selfMetricsMs needs a host tag or default tags to tag the client's points with"
          : `selfMetricsMs: the client's points need ${
            tags + 1
          } tags, more than maxTags (${encoder.maxTags})`,
      );
    }
  }
  return {
    addresses: parseAddresses(host, port),
    qsize: integer("qsize", options.qsize ?? 100_000, 0),
    mps,
    batchBytes: integer("batchBytes", options.batchBytes ?? 65536, 1024),
    connectTimeoutMs: integer("connectTimeoutMs", options.connectTimeoutMs ?? 5000, 1, MAX_TIMER_MS),
    stallTimeoutMs: integer("stallTimeoutMs", options.stallTimeoutMs ?? 15_000, 0, MAX_TIMER_MS),
    heartbeatMs: integer("heartbeatMs", options.heartbeatMs ?? 5000, 0, MAX_TIMER_MS),
    keepAliveMs: integer("keepAliveMs", options.keepAliveMs ?? 10_000, 0, MAX_TIMER_MS),
    rebalanceMs: integer("rebalanceMs", options.rebalanceMs ?? 0, 0, MAX_TIMER_MS),
    closeTimeoutMs: integer("closeTimeoutMs", options.closeTimeoutMs ?? 10_000, 0, MAX_TIMER_MS),
    lingerMs: integer("lingerMs", options.lingerMs ?? 2000, 0, MAX_TIMER_MS),
    transport,
    encoder,
    reconnect: options.reconnect,
    clock: options.clock,
    spool: resolveSpool(options.spool),
    selfMetricsMs,
  };
}

const SPOOL_MODES = ["overflow", "always"];
const SPOOL_FSYNCS = ["never", "interval", "always"];

function resolveSpool(option: SpoolOptions | undefined): ResolvedSpoolOptions | undefined {
  if (option === undefined) return undefined;
  if (typeof option !== "object" || option === null) {
    throw new OptionsError("spool must be an object: { dir, maxBytes?, mode?, fsync? }");
  }
  if (typeof option.dir !== "string" || option.dir === "") {
    throw new OptionsError("spool.dir must be a non-empty string");
  }
  const mode = option.mode ?? "overflow";
  if (!SPOOL_MODES.includes(mode)) {
    throw new OptionsError(`spool.mode must be "overflow" or "always", got ${mode}`);
  }
  const fsync = option.fsync ?? "interval";
  if (!SPOOL_FSYNCS.includes(fsync)) {
    throw new OptionsError(`spool.fsync must be "never", "interval" or "always", got ${fsync}`);
  }
  const maxBytes = integer("spool.maxBytes", option.maxBytes ?? 256 * 1024 * 1024, 64 * 1024);
  if (spoolFactory() === undefined) {
    throw new OptionsError(
      "spool: this runtime has no file system (a Worker): the disk spool needs node:fs, and is " +
        "available from the root entry on Node, Deno and Bun",
    );
  }
  return { dir: option.dir, maxBytes, mode, fsync };
}

/**
 * Checks a whole number option.
 *
 * @param name the option, for the message
 * @param value its value
 * @param min smallest allowed
 * @param max largest allowed
 * @returns `value`
 * @throws {OptionsError} when it is not a whole number in range
 */
export function integer(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new OptionsError(`${name} must be an integer in ${min}..${max}, got ${value}`);
  }
  return value;
}

/** The transport as is, or one that passes the checked `tls` settings to every connect. */
function withTls(transport: Transport, option: ClientOptions["tls"]): Transport {
  if (option === undefined || option === false) return transport;
  const tls = tlsOptions(option);
  if (!transport.checkTls) {
    throw new OptionsError(
      `tls: the ${transport.name} transport does not do TLS` +
        (transport.name.startsWith("http") ? '; use httpTransport({ scheme: "https" })' : ""),
    );
  }
  try {
    transport.checkTls(tls);
  } catch (e) {
    throw new OptionsError(`tls: ${(e as Error).message}`);
  }
  return {
    name: transport.name,
    connect: (o) => transport.connect({ ...o, tls }),
    hostname: transport.hostname?.bind(transport),
    checkTls: transport.checkTls.bind(transport),
    acknowledges: transport.acknowledges,
  };
}

const PEM = /-----BEGIN [A-Z0-9 ]+-----/;

function tlsOptions(option: true | TlsOptions): TlsOptions {
  if (option === true) return {};
  if (typeof option !== "object" || option === null || Array.isArray(option)) {
    throw new OptionsError(
      "tls must be true, false or an object { ca, cert, key, servername, rejectUnauthorized }",
    );
  }
  const { ca, cert, key, servername, rejectUnauthorized } = option;
  const tls: TlsOptions = {};
  if (ca !== undefined) {
    const list = typeof ca === "string" ? [ca] : ca;
    if (!Array.isArray(list) || list.length === 0) {
      throw new OptionsError("tls.ca must be a PEM string or a non-empty array of them");
    }
    for (const c of list) pem("tls.ca", c, "CERTIFICATE");
    tls.ca = typeof ca === "string" ? ca : [...list];
  }
  if ((cert === undefined) !== (key === undefined)) {
    throw new OptionsError("tls.cert and tls.key go together: pass both or neither");
  }
  if (cert !== undefined) tls.cert = pem("tls.cert", cert, "CERTIFICATE");
  if (key !== undefined) tls.key = pem("tls.key", key, "PRIVATE KEY");
  if (servername !== undefined) {
    if (typeof servername !== "string" || servername === "" || /[\s/]/.test(servername)) {
      throw new OptionsError(`tls.servername must be a host name, got ${JSON.stringify(servername)}`);
    }
    tls.servername = servername;
  }
  if (rejectUnauthorized !== undefined) {
    if (typeof rejectUnauthorized !== "boolean") {
      throw new OptionsError("tls.rejectUnauthorized must be a boolean");
    }
    tls.rejectUnauthorized = rejectUnauthorized;
  }
  return tls;
}

function pem(name: string, value: unknown, kind: string): string {
  if (typeof value !== "string" || !PEM.test(value) || !value.includes(kind)) {
    throw new OptionsError(
      `${name} must be PEM text ("-----BEGIN ...${kind}-----"), not a file name: read the file first`,
    );
  }
  return value;
}

/** The host tag, default tags and prefix go through the encoder's own checks, once. */
function checkEncoder(encoder: EncoderOptions): void {
  try {
    new PutEncoder(encoder);
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    const option = e.field === "host tag" ? "hostTag" : e.field === "prefix" ? "prefix" : "tags";
    throw new OptionsError(`${option}: ${e.message}`);
  }
}

function flag(name: string, value: unknown): boolean {
  if (typeof value !== "boolean") throw new OptionsError(`${name} must be true or false, got ${value}`);
  return value;
}

// Two rounds within one second would carry the same timestamp: duplicates for the server.
function selfMetrics(ms: number): number {
  if (ms === 0) return 0;
  return integer("selfMetricsMs (0 = off)", ms, 1000, MAX_TIMER_MS);
}

function hostTag(option: ClientOptions["hostTag"], transport: Transport): string | undefined {
  const value = option === undefined ? true : option;
  if (typeof value === "string") return value; // the encoder checks it
  if (value === false || value === null) return undefined;
  if (value !== true) throw new OptionsError("hostTag must be true, false, null or a string");
  const name = transport.hostname?.();
  if (!name) {
    throw new OptionsError(
      `hostTag: true needs this machine's hostname, which the ${transport.name} transport ` +
        "cannot tell: pass hostTag as a string, or false",
    );
  }
  return sanitizeName(name);
}

function parseAddresses(host: string | readonly string[], port: number): Address[] {
  const hosts = typeof host === "string" ? [host] : host;
  if (hosts.length === 0) throw new OptionsError("at least one host is needed");
  return hosts.map((h) => {
    if (typeof h !== "string" || h === "") throw new OptionsError(`host must be a non-empty string`);
    const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(h);
    if (v6) return { host: v6[1], port: v6[2] ? toPort(v6[2], h) : port };
    const hp = /^([^:]+):(\d+)$/.exec(h);
    if (hp) return { host: hp[1], port: toPort(hp[2], h) };
    return { host: h, port };
  });
}

function toPort(s: string, where: string): number {
  const port = Number(s);
  if (!(port >= 1 && port <= 65535)) throw new OptionsError(`bad port in ${JSON.stringify(where)}`);
  return port;
}
