/**
 * HTTP `/api/put` against telnet `put`, to the same local servers in one run:
 * a VictoriaMetrics and an InfluxDB 1.x (Debian packages `victoria-metrics`
 * and `influxdb`), both on loopback, started here and stopped at the end.
 *
 * Each variant queues `--points` distinct points at once (`qsize` large
 * enough, `dedup` off), then `close()`; its rate is points ÷ the time from the
 * first `send()` until `close()` resolves. Over HTTP that is once the server
 * has answered for every point; over telnet, InfluxDB answers the last probe
 * once it has read every line, VictoriaMetrics answers none, so there the last
 * lines may still be in the kernel's buffers (a few MB: a few percent of the
 * points). Each run then checks, untimed, that the server stored every point:
 * VictoriaMetrics' `vm_rows_inserted_total` for its listener, InfluxDB's
 * `count(value)`. Variants alternate within each round, so a busy moment of
 * the machine falls on all of them alike.
 *
 * Usage: deno run -A bench/http_bench.ts [--points 300000] [--rounds 3] [--in-flight 1,2,4,8]
 *        bun bench/http_bench.ts …; node build/bench/http_bench.js … (tsc build)
 * Prints one line per measurement and a table of medians (min–max).
 *
 * @module
 */

import process from "node:process";
import { Client } from "../mod.ts";
import { httpTransport } from "../src/transport/http.ts";
import { startTsdb, type Tsdb } from "../scripts/tsdb.ts";
import { type Influxdb, startInfluxdb } from "../scripts/influxdb.ts";
import type { Transport } from "../src/transport/types.ts";

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1];
}
const POINTS = Number(flag("points", "300000"));
const ROUNDS = Number(flag("rounds", "3"));
const IN_FLIGHT = flag("in-flight", "1,4").split(",").map(Number);
const GZIP = flag("gzip", "on") !== "off";
const MAX_BODY = Number(flag("max-body", "8192"));
const SERIES = 1000;
const runtime = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : `node ${process.version}`;

interface Server {
  name: string;
  telnetPort: number;
  httpPort: number;
  /** How often to ask the server for its count, ms. */
  pollMs: number;
  /** Starts counting the points stored from now on under `metric` (or by the listener, for VictoriaMetrics). */
  counter(metric: string, http: boolean): Promise<() => Promise<number>>;
}

function victoria(tsdb: Tsdb): Server {
  const inserted = async (http: boolean) => {
    const type = http ? "opentsdbhttp" : "opentsdb";
    const m = (await tsdb.metrics()).match(
      new RegExp(`^vm_rows_inserted_total\\{type="${type}"\\} (\\d+)`, "m"),
    );
    return m ? Number(m[1]) : 0;
  };
  return {
    name: "VictoriaMetrics",
    telnetPort: tsdb.telnetPort,
    httpPort: tsdb.opentsdbHttpPort,
    pollMs: 10,
    async counter(_metric, http) {
      const base = await inserted(http);
      return async () => (await inserted(http)) - base;
    },
  };
}

function influx(db: Influxdb): Server {
  return {
    name: "InfluxDB",
    telnetPort: db.opentsdbPort,
    httpPort: db.opentsdbPort,
    pollMs: 50,
    counter(metric) {
      return Promise.resolve(async () => {
        const series = await db.query(`SELECT count(value) FROM "${metric}"`);
        return Number(series[0]?.values[0]?.[1] ?? 0);
      });
    },
  };
}

interface Variant {
  name: string;
  http: boolean;
  transport?: () => Transport;
}

const variants: Variant[] = [
  ...(process.argv.includes("--no-telnet") ? [] : [{ name: "telnet", http: false }]),
  ...IN_FLIGHT.map((n) => ({
    name: `http, maxInFlight ${n}`,
    http: true,
    transport: () => httpTransport({ maxInFlight: n, gzip: GZIP, maxBodyBytes: MAX_BODY }),
  })),
];

let runNo = 0;
/** The client process's CPU time per point, by variant. */
const cpuNs = new Map<string, number[]>();
async function measure(server: Server, v: Variant): Promise<number> {
  const metric = `bench.http.r${process.pid}.n${runNo++}`;
  const client = new Client("127.0.0.1", {
    port: v.http ? server.httpPort : server.telnetPort,
    transport: v.transport?.(),
    hostTag: false,
    dedup: false,
    qsize: POINTS + 1,
  });
  let errors = 0;
  client.addEventListener("error", () => errors++);
  const stored = await server.counter(metric, v.http);
  const ts = Math.floor(Date.now() / 1000) - 3600;
  const start = performance.now();
  const cpu = process.cpuUsage();
  for (let i = 0; i < POINTS; i++) {
    client.send(metric, i, { series: String(i % SERIES), dc: "eu" }, ts + Math.floor(i / SERIES));
  }
  const stats = await client.close();
  const seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  const key = `${server.name}\t${v.name}`;
  cpuNs.set(key, [...(cpuNs.get(key) ?? []), (used.user + used.system) * 1000 / POINTS]);
  // Not timed: that the server has them all (VictoriaMetrics updates its counter about once a second).
  let seen = 0;
  for (let polls = 0; seen < POINTS; polls++) {
    if (polls * server.pollMs > 60_000) break;
    await new Promise((r) => setTimeout(r, server.pollMs));
    seen = await stored();
  }
  if (errors > 0) {
    console.log(`${server.name} ${v.name}: ${errors} errors, ${stats.connectFailures} failed requests`);
  }
  if (stats.sent !== POINTS || stats.dropped.total !== 0 || seen !== POINTS) {
    throw new Error(
      `${server.name} ${v.name}: sent ${stats.sent}, dropped ${stats.dropped.total}, stored ${seen}`,
    );
  }
  return POINTS / seconds;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const tsdb = await startTsdb({ flags: ["-loggerLevel=FATAL"] });
const db = await startInfluxdb({ batchSize: 5000, batchTimeout: "10ms" });
try {
  const servers = [victoria(tsdb), influx(db)];
  const rates = new Map<string, number[]>();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const server of servers) {
      for (const v of variants) {
        const rate = await measure(server, v);
        const key = `${server.name}\t${v.name}`;
        rates.set(key, [...(rates.get(key) ?? []), rate]);
        console.log(
          `round ${round} ${runtime} ${server.name} ${v.name}: ${
            (rate / 1000).toFixed(0)
          } k points/s, client CPU ${cpuNs.get(key)!.at(-1)!.toFixed(0)} ns/point`,
        );
      }
    }
  }
  console.log(
    `\n${runtime}, ${POINTS.toLocaleString("en")} points, ${ROUNDS} rounds: median (min–max), k points/s`,
  );
  for (const server of servers) {
    const telnet = median(rates.get(`${server.name}\ttelnet`) ?? [NaN]);
    for (const v of variants) {
      const xs = rates.get(`${server.name}\t${v.name}`)!;
      const k = (x: number) => (x / 1000).toFixed(0);
      console.log(
        `${server.name.padEnd(16)} ${v.name.padEnd(22)} ${k(median(xs)).padStart(5)} (${k(Math.min(...xs))}–${
          k(Math.max(...xs))
        })  ${(median(xs) / telnet).toFixed(2)}× telnet, client CPU ${
          median(cpuNs.get(`${server.name}\t${v.name}`)!).toFixed(0)
        } ns/point`,
      );
    }
  }
} finally {
  await tsdb.dispose();
  await db.dispose();
}
