// vmagent (Debian package `victoria-metrics`) between clients and a
// VictoriaMetrics: it takes OpenTSDB telnet `put` on a free loopback port and
// forwards by remote write, through its persistent queue on disk
// (-remoteWrite.tmpDataPath, in a potsdb-vmagent-* directory under
// POTSDB_TSDB_TMPDIR or the system's temp dir). Stopped and started again on
// the same ports and queue.

import { ensureBinary, freePort, httpGet } from "../../scripts/tsdb.ts";
import { accepts } from "../../scripts/influxdb.ts";
import { launch, serverDir } from "./daemon.ts";

/** A running vmagent. */
export interface Vmagent {
  /** Its OpenTSDB telnet port. */
  port: number;
  /** Text of its `/metrics` (e.g. `vmagent_rows_inserted_total{type="opentsdb"}`). */
  metrics(): Promise<string>;
  /** Stops it (SIGTERM, then SIGKILL after 10 s): it writes what it holds to its queue on disk first. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and queue; ready when /health answers and the port accepts. */
  start(): Promise<void>;
  /** Stops it and removes its queue. */
  dispose(): Promise<void>;
}

/** Starts vmagent forwarding to the VictoriaMetrics whose HTTP API is at `url` (`http://host:port`). */
export async function startVmagent(url: string): Promise<Vmagent> {
  const binary = ensureBinary("vmagent", "victoria-metrics");
  const [port, httpPort] = [await freePort(), await freePort()];
  const dir = serverDir("potsdb-vmagent-");
  const proc = await launch({
    name: "vmagent",
    dir,
    binary,
    args: [
      `-opentsdbListenAddr=127.0.0.1:${port}`,
      `-httpListenAddr=127.0.0.1:${httpPort}`,
      `-remoteWrite.url=${url}/api/v1/write`,
      `-remoteWrite.tmpDataPath=${dir}/queue`,
      "-remoteWrite.flushInterval=200ms",
      "-loggerLevel=ERROR",
    ],
    ready: async () =>
      (await httpGet(`http://127.0.0.1:${httpPort}/health`)).body.trim() === "OK" &&
      await accepts("127.0.0.1", port),
  });
  return {
    port,
    async metrics() {
      const response = await httpGet(`http://127.0.0.1:${httpPort}/metrics`);
      if (response.status !== 200) throw new Error(`vmagent /metrics: HTTP ${response.status}`);
      return response.body;
    },
    stop: () => proc.stop(),
    start: () => proc.start(),
    dispose: () => proc.dispose(),
  };
}
