// InfluxDB 1.x as a TSD that a test stops and starts again on the same ports
// and data (scripts/influxdb.ts starts one for good and removes its data when
// it stops): several of them make a fleet behind a load balancer. Loopback
// only; the data directory is named potsdb-influx-* under POTSDB_TSDB_TMPDIR
// (or the system's temp dir), where .ci/run finds a leftover process.

import { influxQuery, influxReady, type InfluxSeries, writeInfluxConfig } from "../../scripts/influxdb.ts";
import { ensureBinary, freePort } from "../../scripts/tsdb.ts";
import { launch, serverDir } from "./daemon.ts";

/** A restartable InfluxDB whose opentsdb service takes telnet `put`. */
export interface InfluxTsd {
  host: string;
  /** The opentsdb service's port (telnet `put`; it answers `version` with "InfluxDB TSDB proxy", no newline). */
  opentsdbPort: number;
  httpPort: number;
  readonly running: boolean;
  /** Runs an InfluxQL query on the `opentsdb` database; timestamps in ms. */
  query(q: string): Promise<InfluxSeries[]>;
  /**
   * Stops it (SIGTERM, then SIGKILL after `stopGraceMs`); ports and data stay. InfluxDB 1.6
   * never finishes a SIGTERM while a telnet connection is open: its opentsdb service stops
   * storing what it reads and waits for the connection forever, so only the SIGKILL ends it.
   */
  stop(): Promise<void>;
  /** Starts it again; ready when the database exists and the opentsdb port accepts. */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  dispose(): Promise<void>;
}

/** Options of {@linkcode startInfluxTsd}. */
export interface InfluxTsdOptions {
  /** Points the opentsdb service buffers before writing. Default 100. */
  batchSize?: number;
  /** Longest a point waits in that buffer. Default "50ms". */
  batchTimeout?: string;
  /** From SIGTERM to SIGKILL at `stop()`. Default 2000 ms (see `stop()`). */
  stopGraceMs?: number;
}

/** Starts one on free loopback ports. */
export async function startInfluxTsd(options: InfluxTsdOptions = {}): Promise<InfluxTsd> {
  const binary = ensureBinary("influxd", "influxdb");
  const host = "127.0.0.1";
  const [rpcPort, httpPort, opentsdbPort] = [await freePort(), await freePort(), await freePort()];
  const dir = serverDir("potsdb-influx-");
  const config = writeInfluxConfig(dir, { host, rpcPort, httpPort, opentsdbPort }, {
    batchSize: options.batchSize ?? 100,
    batchTimeout: options.batchTimeout ?? "50ms",
  });
  const url = `http://${host}:${httpPort}`;
  const query = influxQuery(url);
  const proc = await launch({
    name: "influxd",
    dir,
    binary,
    args: ["-config", config],
    stopGraceMs: options.stopGraceMs ?? 2000,
    ready: () => influxReady(url, host, opentsdbPort),
  });
  return {
    host,
    opentsdbPort,
    httpPort,
    get running() {
      return proc.running;
    },
    query: (q) => query(q),
    stop: () => proc.stop(),
    start: () => proc.start(),
    dispose: () => proc.dispose(),
  };
}
