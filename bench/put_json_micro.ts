// Cost of putLinesToJson per point: 64 KiB chunks of encoder-like lines, best of rounds.
import { type JsonPoint, putLinesToJson } from "../src/transport/put_json.ts";
const enc = new TextEncoder();
const chunks: Uint8Array[] = [];
let text = "";
let lines = 0;
for (let i = 0; i < 300_000; i++) {
  text += `put bench.http.metric ${1700000000 + (i >> 10)} ${i} series=${i % 1000} dc=eu\n`;
  lines++;
  if (text.length > 65000) {
    chunks.push(enc.encode(text));
    text = "";
  }
}
chunks.push(enc.encode(text));
let best = Infinity;
for (let round = 0; round < 10; round++) {
  const t = performance.now();
  let n = 0;
  for (const c of chunks) {
    const into: JsonPoint<null>[] = [];
    putLinesToJson(c, null, into);
    n += into.length;
  }
  best = Math.min(best, ((performance.now() - t) * 1e6) / n);
}
console.log(`putLinesToJson: ${best.toFixed(0)} ns/point (${lines} lines, best of 10)`);
