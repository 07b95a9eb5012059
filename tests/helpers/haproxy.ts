// HAProxy (Debian package `haproxy`) as a TCP load balancer in front of
// several TSDs: `mode tcp`, `balance roundrobin`, health checks every
// `checkMs` (one failure marks a server down, one success up again; the
// sessions of a server marked down are closed), and a
// stats page to read each server's state and the sessions it counted. In the
// foreground (-db) on free loopback ports, its config in a potsdb-haproxy-*
// directory under POTSDB_TSDB_TMPDIR (or the system's temp dir).

import { writeFileSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { accepts } from "../../scripts/influxdb.ts";
import { ensureBinary, freePort, httpGet } from "../../scripts/tsdb.ts";
import { launch, serverDir } from "./daemon.ts";

/** A running HAProxy. */
export interface Haproxy {
  /** The frontend's port, where clients connect. */
  port: number;
  /** State of each backend server by name (`tsd0`, `tsd1`, …): "UP", "DOWN", "no check"… */
  servers(): Promise<Record<string, string>>;
  /** Connections the frontend accepted since HAProxy started. */
  sessions(): Promise<number>;
  /**
   * Takes a server out (maintenance: no new connections, no health checks) and closes its
   * sessions: its clients reconnect to the others while it still runs.
   */
  drain(server: string): Promise<void>;
  /** Puts a drained server back; it takes connections again once a health check passes. */
  ready(server: string): Promise<void>;
  /** Stops it (SIGTERM, then SIGKILL) and removes its directory. */
  dispose(): Promise<void>;
}

/** Options of {@linkcode startHaproxy}. */
export interface HaproxyOptions {
  /** Health-check interval in ms. Default 200. */
  checkMs?: number;
}

/** Starts HAProxy in front of `backends` (named tsd0, tsd1, … in that order). */
export async function startHaproxy(
  backends: readonly { host: string; port: number }[],
  options: HaproxyOptions = {},
): Promise<Haproxy> {
  const binary = ensureBinary("haproxy", "haproxy");
  const [port, statsPort] = [await freePort(), await freePort()];
  const dir = serverDir("potsdb-haproxy-");
  const config = join(dir, "haproxy.cfg");
  const socket = join(dir, "admin.sock");
  const check = options.checkMs ?? 200;
  writeFileSync(
    config,
    [
      "global",
      "  maxconn 2000",
      `  stats socket ${socket} mode 600 level admin`,
      "defaults",
      "  mode tcp",
      "  timeout connect 1s",
      "  timeout client 120s",
      "  timeout server 120s",
      // A connect to a server that just went away is tried again on another one.
      "  retries 2",
      "  option redispatch",
      "frontend tsd",
      `  bind 127.0.0.1:${port}`,
      "  default_backend tsds",
      "frontend stats",
      "  mode http",
      `  bind 127.0.0.1:${statsPort}`,
      "  stats enable",
      "  stats uri /stats",
      "backend tsds",
      "  balance roundrobin",
      // A server marked down has its sessions closed: a TSD that keeps a connection open while it
      // stops reading (InfluxDB stopping) no longer swallows what its clients write.
      `  default-server check inter ${check}ms fastinter ${check}ms downinter ${check}ms fall 1 rise 1 ` +
      "on-marked-down shutdown-sessions",
      ...backends.map((b, i) => `  server tsd${i} ${b.host}:${b.port}`),
      "",
    ].join("\n"),
  );
  const csv = async () => {
    const response = await httpGet(`http://127.0.0.1:${statsPort}/stats;csv`);
    if (response.status !== 200) throw new Error(`haproxy stats: HTTP ${response.status}`);
    const [header, ...rows] = response.body.trim().split("\n");
    const columns = header.replace(/^# /, "").split(",");
    return rows.map((row) => {
      const cells = row.split(",");
      return Object.fromEntries(columns.map((c, i) => [c, cells[i]]));
    });
  };
  const proc = await launch({
    name: "haproxy",
    dir,
    binary,
    args: ["-db", "-f", config],
    ready: async () => (await accepts("127.0.0.1", port)) && (await csv()).length > 0,
  });
  return {
    port,
    async servers() {
      const out: Record<string, string> = {};
      for (const row of await csv()) {
        if (row.pxname === "tsds" && row.svname !== "BACKEND") out[row.svname] = row.status;
      }
      return out;
    },
    async sessions() {
      const row = (await csv()).find((r) => r.pxname === "tsd" && r.svname === "FRONTEND");
      return Number(row?.stot ?? NaN);
    },
    async drain(server) {
      await admin(socket, `set server tsds/${server} state maint`);
      await admin(socket, `shutdown sessions server tsds/${server}`);
    },
    async ready(server) {
      await admin(socket, `set server tsds/${server} state ready`);
    },
    dispose: () => proc.dispose(),
  };
}

/** One command on HAProxy's admin socket; an answer other than empty is an error. */
function admin(path: string, command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let answer = "";
    const socket = net.connect({ path }, () => socket.end(command + "\n"));
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => answer += d);
    socket.on("error", reject);
    socket.on("close", () => {
      if (answer.trim() === "") resolve();
      else reject(new Error(`haproxy "${command}": ${answer.trim()}`));
    });
  });
}
