/**
 * Splits what a server sends into lines, for every transport.
 *
 * @module
 */

/** Longest server line kept; the rest of an overlong line is cut off. */
const MAX_LINE = 4096;

/**
 * Returns a function that takes decoded text chunks and calls `onLine` for
 * each complete line (without `\n` or `\r\n`). Memory stays bounded when a
 * peer sends endless bytes without a newline.
 *
 * @param onLine receives each line
 * @returns the chunk sink
 *
 * @example
 * ```ts
 * import { lineSplitter } from "@x/potsdb";
 *
 * const lines: string[] = [];
 * const push = lineSplitter((l) => lines.push(l));
 * push("put: illegal");
 * push(" argument\r\nnext\n");
 * console.assert(lines.join("|") === "put: illegal argument|next");
 * ```
 */
export function lineSplitter(onLine: (line: string) => void): (chunk: string) => void {
  let partial = "";
  return (chunk: string) => {
    let start = 0;
    let nl = chunk.indexOf("\n");
    while (nl !== -1) {
      let line = partial + chunk.slice(start, nl);
      partial = "";
      if (line.endsWith("\r")) line = line.slice(0, -1);
      onLine(line.length > MAX_LINE ? line.slice(0, MAX_LINE) : line);
      start = nl + 1;
      nl = chunk.indexOf("\n", start);
    }
    if (start < chunk.length && partial.length < MAX_LINE) {
      partial = (partial + chunk.slice(start)).slice(0, MAX_LINE);
    }
  };
}
