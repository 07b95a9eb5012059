// A local VictoriaMetrics (Debian package `victoria-metrics`) for the tests,
// the demo and CI: loopback only, free ports, a temporary data directory,
// ready when /health answers, stopped by PID.
//
// As a module:  const tsdb = await startTsdb(); …; await tsdb.stop();
// As a command: node build/scripts/tsdb.js   (or deno run -A scripts/tsdb.ts)
//               prints the ports, runs until Ctrl-C.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

/** One series as `/api/v1/export` returns it. */
export interface ExportedSeries {
  metric: Record<string, string>;
  values: number[];
  timestamps: number[];
}

/** Where a VictoriaMetrics listens. */
export interface TsdbEndpoints {
  /** `127.0.0.1` */
  host: string;
  /** HTTP API port (`/health`, `/api/v1/export`, `/internal/force_flush`). */
  httpPort: number;
  /** OpenTSDB telnet `put` port. */
  telnetPort: number;
  /** OpenTSDB HTTP `/api/put` port. */
  opentsdbHttpPort: number;
}

/** The query side of a VictoriaMetrics, whoever runs it. */
export interface TsdbApi extends TsdbEndpoints {
  /** `http://127.0.0.1:<httpPort>` */
  url: string;
  /** Makes recently ingested points visible to queries. */
  forceFlush(): Promise<void>;
  /** Force-flushes, then exports every series matching `match` (e.g. `{__name__=~"demo.*"}`). */
  exportSeries(match: string): Promise<ExportedSeries[]>;
  /** Text of `/metrics` (counters such as `vm_rows_inserted_total`). */
  metrics(): Promise<string>;
}

/** A running VictoriaMetrics that this process started. */
export interface Tsdb extends TsdbApi {
  dataDir: string;
  /** Stops the server (SIGTERM, then SIGKILL) and keeps its data and ports. */
  stop(): Promise<void>;
  /** Sends `signal` to the server process, e.g. SIGSTOP and SIGCONT to freeze it and let it go on. */
  signal(signal: "SIGSTOP" | "SIGCONT"): void;
  /** Starts it again on the same ports and data. */
  start(): Promise<void>;
  /** Stops it and removes its data directory. */
  dispose(): Promise<void>;
}

/** Options of {@linkcode startTsdb}. */
export interface TsdbOptions {
  /** Extra command-line flags, e.g. `-httpAuth.username=u`. */
  flags?: string[];
  /** How long to wait for /health. Default 20000 ms. */
  readyTimeoutMs?: number;
}

const BINARY = "victoria-metrics";

/**
 * Environment variables through which a test runner hands one running
 * server to its child processes (see {@linkcode tsdbEnv}, {@linkcode tsdbFromEnv}).
 */
export const TSDB_ENV = {
  host: "POTSDB_TSDB_HOST",
  httpPort: "POTSDB_TSDB_HTTP_PORT",
  telnetPort: "POTSDB_TSDB_TELNET_PORT",
  opentsdbHttpPort: "POTSDB_TSDB_OTHTTP_PORT",
} as const;

/** Parent of the temporary data directories; a CI script sets it to find leftovers. */
export const TSDB_TMPDIR_ENV = "POTSDB_TSDB_TMPDIR";

/**
 * The variables that describe `tsdb` to a child process.
 *
 * @example
 * ```ts
 * const tsdb = await startTsdb();
 * spawn("deno", ["test", "-A"], { env: { ...process.env, ...tsdbEnv(tsdb) } });
 * ```
 */
export function tsdbEnv(tsdb: TsdbEndpoints): Record<string, string> {
  return {
    [TSDB_ENV.host]: tsdb.host,
    [TSDB_ENV.httpPort]: String(tsdb.httpPort),
    [TSDB_ENV.telnetPort]: String(tsdb.telnetPort),
    [TSDB_ENV.opentsdbHttpPort]: String(tsdb.opentsdbHttpPort),
  };
}

/**
 * The server a parent process described in the environment, or undefined
 * when the variables are absent. Bad port variables are an error.
 *
 * @example
 * ```ts
 * const tsdb = tsdbFromEnv() ?? await startTsdb();
 * const series = await tsdb.exportSeries('{__name__=~"app.*"}');
 * ```
 */
export function tsdbFromEnv(env: Record<string, string | undefined> = process.env): TsdbApi | undefined {
  const names = [TSDB_ENV.httpPort, TSDB_ENV.telnetPort, TSDB_ENV.opentsdbHttpPort];
  const set = names.filter((n) => env[n] !== undefined && env[n] !== "");
  if (set.length === 0) return undefined;
  const port = (name: string) => {
    const n = Number(env[name]);
    if (!Number.isInteger(n) || n < 1 || n > 65535) {
      throw new Error(`${name} must be a TCP port, got ${JSON.stringify(env[name])}`);
    }
    return n;
  };
  return attachTsdb({
    host: env[TSDB_ENV.host] || "127.0.0.1",
    httpPort: port(TSDB_ENV.httpPort),
    telnetPort: port(TSDB_ENV.telnetPort),
    opentsdbHttpPort: port(TSDB_ENV.opentsdbHttpPort),
  });
}

/**
 * The query side of a VictoriaMetrics listening at `endpoints`.
 *
 * @example
 * ```ts
 * const tsdb = attachTsdb({ host: "127.0.0.1", httpPort: 8428, telnetPort: 4242, opentsdbHttpPort: 4243 });
 * console.log(await tsdb.metrics());
 * ```
 */
export function attachTsdb(endpoints: TsdbEndpoints, flags: string[] = []): TsdbApi {
  const url = `http://${endpoints.host}:${endpoints.httpPort}`;
  const auth = authHeader(flags);
  const get = async (path: string) => {
    const response = await httpGet(url + path, auth);
    if (response.status !== 200) throw new Error(`${path}: HTTP ${response.status} ${response.body}`);
    return response.body;
  };
  const api: TsdbApi = {
    ...endpoints,
    url,
    async forceFlush() {
      await get("/internal/force_flush");
    },
    async exportSeries(match) {
      await api.forceFlush();
      const text = await get(`/api/v1/export?match[]=${encodeURIComponent(match)}`);
      return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as ExportedSeries);
    },
    async metrics() {
      return await get("/metrics");
    },
  };
  return api;
}

/**
 * A binary's path, installing its Debian package when running as root.
 *
 * @param binary the command, e.g. `victoria-metrics` or `influxd`
 * @param pkg its Debian package
 */
export function ensureBinary(binary = BINARY, pkg = "victoria-metrics"): string {
  const found = spawnSync("sh", ["-c", `command -v ${binary}`], { encoding: "utf8" });
  if (found.status === 0 && found.stdout.trim()) return found.stdout.trim();
  const command = `apt-get update && apt-get install -y ${pkg}`;
  if (process.getuid?.() !== 0) {
    throw new Error(`${binary} is not installed; run: sudo sh -c '${command}'`);
  }
  console.error(`# installing ${binary}: ${command}`);
  const install = spawnSync("sh", ["-c", `DEBIAN_FRONTEND=noninteractive ${command}`], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (install.status !== 0) throw new Error(`installing ${pkg} failed (exit ${install.status})`);
  return ensureBinary(binary, pkg);
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Starts VictoriaMetrics on free loopback ports and waits until it is healthy. */
export async function startTsdb(options: TsdbOptions = {}): Promise<Tsdb> {
  // A free port can be taken by another process between our probe and the server's bind:
  // then the server exits at once, and a second set of ports is tried.
  for (let attempt = 1;; attempt++) {
    try {
      return await startTsdbOnce(options);
    } catch (e) {
      if (attempt === 3 || !/exited with/.test((e as Error).message)) throw e;
    }
  }
}

async function startTsdbOnce(options: TsdbOptions): Promise<Tsdb> {
  const binary = ensureBinary();
  const host = "127.0.0.1";
  const [httpPort, telnetPort, opentsdbHttpPort] = [await freePort(), await freePort(), await freePort()];
  const parent = process.env[TSDB_TMPDIR_ENV] || tmpdir();
  mkdirSync(parent, { recursive: true });
  const dataDir = mkdtempSync(join(parent, "potsdb-vm-"));
  const api = attachTsdb({ host, httpPort, telnetPort, opentsdbHttpPort }, options.flags ?? []);
  const url = api.url;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let frozen = false;

  const tsdb: Tsdb = {
    ...api,
    dataDir,
    async start() {
      child = spawn(binary, [
        `-storageDataPath=${dataDir}`,
        `-httpListenAddr=${host}:${httpPort}`,
        `-opentsdbListenAddr=${host}:${telnetPort}`,
        `-opentsdbHTTPListenAddr=${host}:${opentsdbHttpPort}`,
        "-loggerLevel=ERROR",
        ...(options.flags ?? []),
      ], { stdio: ["ignore", "ignore", "inherit"] });
      const proc = child;
      exited = new Promise((resolve) => proc.once("exit", () => resolve()));
      const deadline = Date.now() + (options.readyTimeoutMs ?? 20_000);
      for (;;) {
        if (proc.exitCode !== null) throw new Error(`${BINARY} exited with ${proc.exitCode}`);
        try {
          if ((await httpGet(url + "/health", {})).body.trim() === "OK") break;
        } catch {
          // not listening yet
        }
        if (Date.now() > deadline) {
          proc.kill("SIGKILL");
          throw new Error(`${BINARY} did not become healthy at ${url}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async stop() {
      const proc = child;
      if (!proc || proc.exitCode !== null) return;
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
    signal(name) {
      // process.kill, not child.kill: Deno's child.kill takes any signal for the end of the
      // process and ignores every later one, the SIGTERM of stop() included.
      if (child?.pid !== undefined && child.exitCode === null) process.kill(child.pid, name);
      frozen = name === "SIGSTOP";
    },
    async dispose() {
      if (frozen) tsdb.signal("SIGCONT"); // a frozen server cannot stop
      await tsdb.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  try {
    await tsdb.start();
  } catch (e) {
    await tsdb.dispose();
    throw e;
  }
  return tsdb;
}

/**
 * One GET (or `method`) on a connection of its own, closed after the
 * response. Pooled keep-alive connections (Deno's fetch keeps one open that
 * never carries a request) hold VictoriaMetrics' graceful shutdown for its full 5 s.
 */
export function httpGet(
  url: string,
  headers: Record<string, string> = {},
  method = "GET",
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      { method, agent: false, headers: { ...headers, connection: "close" } },
      (response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => body += chunk);
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
        response.on("error", reject);
      },
    );
    request.on("error", reject);
    request.end();
  });
}

function authHeader(flags: string[]): Record<string, string> {
  const user = flags.find((f) => f.startsWith("-httpAuth.username="))?.split("=")[1];
  const pass = flags.find((f) => f.startsWith("-httpAuth.password="))?.split("=")[1];
  return user ? { authorization: "Basic " + btoa(`${user}:${pass ?? ""}`) } : {};
}

/** Whether the module of `importMeta` is the program being run (Deno, Bun and Node alike). */
export function isMain(importMeta: ImportMeta = import.meta): boolean {
  const meta = importMeta as ImportMeta & { main?: boolean };
  if (typeof meta.main === "boolean") return meta.main;
  const entry = process.argv[1];
  return entry !== undefined && existsSync(entry) && meta.url.endsWith(entry.replace(/\\/g, "/"));
}

// No top-level await: the CLI's demo imports this module, and require() must be able to load it.
if (isMain()) {
  startTsdb().then((tsdb) => {
    console.log(
      `VictoriaMetrics ready: http=${tsdb.url} telnet=${tsdb.host}:${tsdb.telnetPort} ` +
        `opentsdb-http=${tsdb.host}:${tsdb.opentsdbHttpPort} data=${tsdb.dataDir}`,
    );
    const stop = async () => {
      await tsdb.dispose();
      process.exit(0);
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}
