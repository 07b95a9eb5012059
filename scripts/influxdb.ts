// A local InfluxDB 1.x (Debian package `influxdb`) for the tests: its
// `[[opentsdb]]` service takes telnet `put` and HTTP `/api/put` on one port.
// Loopback only, free ports, a generated config and a temporary directory,
// ready when /ping answers, its database is made and the opentsdb port
// accepts connections; stopped by PID.
//
// As a module:  const influx = await startInfluxdb(); …; await influx.dispose();
// As a command: deno run -A scripts/influxdb.ts   prints the ports, runs until Ctrl-C.

import { type ChildProcess, spawn } from "node:child_process";
import * as net from "node:net";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { ensureBinary, freePort, httpGet, isMain, TSDB_TMPDIR_ENV } from "./tsdb.ts";

/** One series of an InfluxQL answer. */
export interface InfluxSeries {
  name: string;
  /** Tags of the series when the query groups by them. */
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

/** A running InfluxDB that this process started. */
export interface Influxdb {
  host: string;
  /** HTTP API port (`/ping`, `/query`). */
  httpPort: number;
  /** The opentsdb service's port: telnet `put` and HTTP `/api/put`. */
  opentsdbPort: number;
  /** The database the opentsdb service writes to. */
  database: string;
  dir: string;
  /**
   * Runs an InfluxQL query against `database` and returns the first
   * statement's series, timestamps in `epoch` units (default ms) since the
   * epoch; an error answer throws.
   */
  query(q: string, epoch?: "ms" | "ns"): Promise<InfluxSeries[]>;
  /** Stops it (SIGTERM, then SIGKILL) and removes its directory. */
  dispose(): Promise<void>;
}

/** Options of {@linkcode startInfluxdb}. */
export interface InfluxdbOptions {
  /** Points the opentsdb service buffers before writing. Default 1000. */
  batchSize?: number;
  /** Longest a point waits in that buffer. Default "100ms". */
  batchTimeout?: string;
  /** How long to wait for readiness. Default 30000 ms. */
  readyTimeoutMs?: number;
}

const DATABASE = "opentsdb";

/** Starts InfluxDB on free loopback ports and waits until its opentsdb service is ready. */
export async function startInfluxdb(options: InfluxdbOptions = {}): Promise<Influxdb> {
  const binary = ensureBinary("influxd", "influxdb");
  const host = "127.0.0.1";
  const [rpcPort, httpPort, opentsdbPort] = [await freePort(), await freePort(), await freePort()];
  const parent = process.env[TSDB_TMPDIR_ENV] || tmpdir();
  mkdirSync(parent, { recursive: true });
  const dir = mkdtempSync(join(parent, "potsdb-influx-"));
  const config = writeInfluxConfig(dir, { host, rpcPort, httpPort, opentsdbPort }, options);
  const url = `http://${host}:${httpPort}`;
  let log = "";
  const child: ChildProcess = spawn(binary, ["-config", config], { stdio: ["ignore", "ignore", "pipe"] });
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (d: string) => log = (log + d).slice(-8000));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const query = influxQuery(url);
  const influx: Influxdb = {
    host,
    httpPort,
    opentsdbPort,
    database: DATABASE,
    dir,
    query: (q, epoch) => query(q, epoch),
    async dispose() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
    for (;;) {
      if (child.exitCode !== null) throw new Error(`influxd exited with ${child.exitCode}: ${log}`);
      if (await ready()) break;
      if (Date.now() > deadline) throw new Error(`influxd did not become ready at ${url}: ${log}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } catch (e) {
    await influx.dispose();
    throw e;
  }
  return influx;

  function ready(): Promise<boolean> {
    return influxReady(url, host, opentsdbPort).catch(() => false);
  }
}

/** The loopback ports one InfluxDB listens on. */
export interface InfluxPorts {
  host: string;
  /** The meta service's RPC port (top-level bind-address). */
  rpcPort: number;
  httpPort: number;
  /** The opentsdb service's port. */
  opentsdbPort: number;
}

/**
 * Writes `dir/influxdb.conf`: data, meta and WAL under `dir`, every listener on loopback, the
 * opentsdb service on, reporting and the other services off. Returns the file's path.
 */
export function writeInfluxConfig(
  dir: string,
  p: InfluxPorts,
  options: Pick<InfluxdbOptions, "batchSize" | "batchTimeout"> = {},
): string {
  const config = join(dir, "influxdb.conf");
  writeFileSync(
    config,
    `reporting-enabled = false
bind-address = "${p.host}:${p.rpcPort}"
[meta]
  dir = "${dir}/meta"
  logging-enabled = false
[data]
  dir = "${dir}/data"
  wal-dir = "${dir}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
[http]
  enabled = true
  bind-address = "${p.host}:${p.httpPort}"
  log-enabled = false
  pprof-enabled = false
[logging]
  level = "warn"
[[opentsdb]]
  enabled = true
  bind-address = "${p.host}:${p.opentsdbPort}"
  database = "${DATABASE}"
  batch-size = ${options.batchSize ?? 1000}
  batch-timeout = "${options.batchTimeout ?? "100ms"}"
  log-point-errors = true
`,
  );
  return config;
}

/**
 * InfluxQL against the opentsdb database at `url`: the first statement's series, timestamps in
 * `epoch` units; an error answer throws.
 */
export function influxQuery(
  url: string,
): (q: string, epoch?: "ms" | "ns", method?: "GET" | "POST") => Promise<InfluxSeries[]> {
  return async (q, epoch = "ms", method = "GET") => {
    const response = await httpGet(
      `${url}/query?db=${DATABASE}&epoch=${epoch}&q=${encodeURIComponent(q)}`,
      {},
      method,
    );
    const body = JSON.parse(response.body) as {
      error?: string;
      results?: { error?: string; series?: InfluxSeries[] }[];
    };
    const error = body.error ?? body.results?.[0]?.error;
    if (response.status !== 200 || error) {
      throw new Error(`${q}: HTTP ${response.status} ${error ?? response.body}`);
    }
    return body.results?.[0]?.series ?? [];
  };
}

/**
 * Whether the InfluxDB at `url` is ready for the tests: the HTTP API answers, the database
 * exists (the opentsdb service would make it only at its first write, and queries before that
 * fail), and the opentsdb port accepts connections.
 */
export async function influxReady(url: string, host: string, opentsdbPort: number): Promise<boolean> {
  if ((await httpGet(`${url}/ping`)).status !== 204) return false;
  await influxQuery(url)(`CREATE DATABASE "${DATABASE}"`, "ms", "POST");
  return await accepts(host, opentsdbPort);
}

/** Whether a TCP connect to the port succeeds (closed at once). */
export function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

if (isMain(import.meta)) {
  const influx = await startInfluxdb();
  console.log(
    `InfluxDB ready: http=http://${influx.host}:${influx.httpPort} ` +
      `opentsdb (telnet and /api/put)=${influx.host}:${influx.opentsdbPort} dir=${influx.dir}`,
  );
  const stop = async () => {
    await influx.dispose();
    process.exit(0);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
