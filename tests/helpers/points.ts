// The points of the exact-arrival tests (tests/e2e/exact_test.ts against
// VictoriaMetrics, tests/e2e/influxdb_test.ts against InfluxDB): METRICS
// metrics × TAG_SETS.length tag sets × POINTS_PER_SERIES timestamps, each
// series with one kind of value.

import type { Tags, Value } from "../../mod.ts";

export const METRICS = 10;
export const POINTS_PER_SERIES = 1000;

// Ten tag sets of three to seven tags each; the host tag makes them four to
// eight (OpenTSDB's default maximum). One brings its own host, which wins.
export const TAG_SETS: Tags[] = [
  { dc: "eu1", rack: "r1", cpu: 0 },
  { dc: "eu1", rack: "r1", cpu: 1 },
  { dc: "eu1", rack: "r2", cpu: 0 },
  { dc: "us-east", rack: "r7", cpu: 3, env: "prod" },
  { dc: "us-east", rack: "r7", cpu: 3, env: "staging" },
  { dc: "ap_south", zone: "a/b", shard: "s-01", role: "db.primary" },
  { dc: "ap_south", zone: "a/b", shard: "s-02", role: "db.replica", tier: "gold" },
  { a: "1", b: "2", c: "3", d: "4", e: "5", f: "6", g: "7" },
  { service: "api", version: "1.2.3", region: "eu" },
  { service: "api", version: "1.2.3", region: "eu", host: "web-1" },
];

// VictoriaMetrics keeps a block of a series' values as decimals with one
// exponent and 64-bit mantissas: a series mixing 1e20 with 83 gets 0 back for
// the 83, and fractions keep about 12 significant digits. So each series holds
// one kind of value, of one magnitude, and any difference is the client's doing.
const KINDS = 8;
export function valueOf(series: number, j: number): Value {
  const sign = j % 2 ? 1 : -1;
  switch (series % KINDS) {
    case 0:
      return j * 1000 + series; // integer
    case 1:
      return -(j * 7 + series); // negative integer
    case 2:
      return (j * 31 + series) / 100; // fractional, two decimals
    case 3:
      return -(j + 0.125); // negative fractional
    case 4:
      return sign * (1 + (j % 9)) * 1e20; // large: written as 1e+20 … 9e+20
    case 5:
      return sign * (2 ** 53 - j); // 2**53 and the integers just below it
    case 6:
      return ((j + 1) * 15) / 1e8; // small: 1.5e-7 …
    default:
      return BigInt(j) * 1_000_003n - 9_000_000_000n; // a bigint
  }
}
