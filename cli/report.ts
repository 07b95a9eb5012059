/**
 * Terminal output of the demo: compact numbers, sparklines, the summary table.
 *
 * @module
 */

const BARS = "▁▂▃▄▅▆▇█";

/**
 * Draws values as a bar per column, lowest `▁` to highest `█`. More values
 * than `width` are averaged in equal runs.
 *
 * @param values the series in time order
 * @param width most characters
 * @returns the sparkline ("" for no values)
 *
 * @example
 * ```ts
 * import { sparkline } from "./report.ts";
 *
 * console.assert(sparkline([0, 1, 2, 3, 4, 5, 6, 7]) === "▁▂▃▄▅▆▇█");
 * ```
 */
export function sparkline(values: readonly number[], width = 24): string {
  if (values.length === 0) return "";
  const columns = Math.min(width, values.length);
  const points: number[] = [];
  for (let c = 0; c < columns; c++) {
    const from = Math.floor((c * values.length) / columns);
    const to = Math.floor(((c + 1) * values.length) / columns);
    let sum = 0;
    for (let i = from; i < to; i++) sum += values[i];
    points.push(sum / (to - from));
  }
  const low = Math.min(...points);
  const high = Math.max(...points);
  if (high === low) return BARS[0].repeat(columns);
  return points.map((v) => BARS[Math.round(((v - low) / (high - low)) * (BARS.length - 1))]).join("");
}

/**
 * Formats a number in at most about six characters: `1.23k`, `45.6M`,
 * `0.25`, `3`.
 *
 * @param value any number
 * @returns the short text
 *
 * @example
 * ```ts
 * import { compactNumber } from "./report.ts";
 *
 * console.assert(compactNumber(25276514304) === "25.3G");
 * console.assert(compactNumber(0.5) === "0.5");
 * ```
 */
export function compactNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const magnitude = Math.abs(value);
  if (magnitude >= 1e4) {
    const units = ["k", "M", "G", "T", "P", "E"];
    let scaled = value;
    let unit = -1;
    while (Math.abs(scaled) >= 1000 && unit < units.length - 1) {
      scaled /= 1000;
      unit++;
    }
    return trimZeros(scaled.toPrecision(3)) + units[unit];
  }
  if (Number.isInteger(value)) return String(value);
  if (magnitude < 0.01) return value.toExponential(1);
  return trimZeros(value.toPrecision(3));
}

function trimZeros(text: string): string {
  return text.includes(".") && !text.includes("e") ? text.replace(/\.?0+$/, "") : text;
}

/**
 * Formats a count with thousands separators: `12,345`.
 *
 * @param n a count
 * @returns the text
 *
 * @example
 * ```ts
 * import { groupDigits } from "./report.ts";
 *
 * console.assert(groupDigits(1234567) === "1,234,567");
 * ```
 */
export function groupDigits(n: number): string {
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** One row of the summary table. */
export interface SeriesRow {
  /** `metric{tag=value,…}` */
  name: string;
  /** Points sent by this run. */
  sent: number;
  /** The values in time order: read back, or as sent when nothing was read back. */
  values: number[];
}

/**
 * Renders the per-series table: series, points, min/avg/max and a sparkline.
 *
 * @param rows the series, in display order
 * @param readBack whether `values` came from the server (adds a `sent` column to compare)
 * @returns the table, one line per series plus a header, newline-terminated
 *
 * @example
 * ```ts
 * import { seriesTable } from "./report.ts";
 *
 * console.log(seriesTable([{ name: "demo.x{a=b}", sent: 3, values: [1, 2, 3] }], true));
 * ```
 */
export function seriesTable(rows: readonly SeriesRow[], readBack: boolean): string {
  const header = readBack
    ? ["series", "points", "sent", "min", "avg", "max", "trend"]
    : ["series (as sent)", "points", "min", "avg", "max", "trend"];
  const body = rows.map((row) => {
    const v = row.values;
    let min = Infinity, max = -Infinity, sum = 0;
    for (const x of v) {
      if (x < min) min = x;
      if (x > max) max = x;
      sum += x;
    }
    const stats = v.length === 0 ? ["-", "-", "-"] : [min, sum / v.length, max].map(compactNumber);
    const counts = readBack ? [groupDigits(v.length), groupDigits(row.sent)] : [groupDigits(v.length)];
    return [row.name, ...counts, ...stats, sparkline(v)];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const last = header.length - 1;
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 || i === last ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join("  ").trimEnd() + "\n";
  return line(header) + body.map(line).join("");
}
