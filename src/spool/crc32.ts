/**
 * CRC-32 (IEEE 802.3, the one of zlib, gzip and PNG), table-driven and
 * slicing by eight bytes at a time: the spool's record checksum.
 *
 * @module
 */

// Eight tables of 256 entries: TABLES[k][b] is the CRC of byte b followed by k zero bytes.
const TABLES = makeTables();

function makeTables(): Int32Array {
  const t = new Int32Array(256 * 8);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n];
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff] ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
}

/**
 * The CRC-32 of `data`, or of what came before it when `crc` is the CRC of
 * that (so a checksum can be computed over several parts).
 *
 * @param data the bytes
 * @param crc the CRC of the preceding bytes; 0 to start
 * @returns the CRC as an unsigned 32-bit integer
 *
 * @example
 * ```ts
 * import { crc32 } from "./crc32.ts";
 *
 * const bytes = new TextEncoder().encode("123456789");
 * console.assert(crc32(bytes) === 0xcbf43926);
 * console.assert(crc32(bytes.subarray(4), crc32(bytes.subarray(0, 4))) === 0xcbf43926);
 * ```
 */
export function crc32(data: Uint8Array, crc = 0): number {
  const t = TABLES;
  let c = ~crc;
  let i = 0;
  const n = data.length;
  const fast = n - (n & 7);
  while (i < fast) {
    const a = (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)) ^ c;
    const b = data[i + 4] | (data[i + 5] << 8) | (data[i + 6] << 16) | (data[i + 7] << 24);
    c = t[1792 + (a & 0xff)] ^ t[1536 + ((a >>> 8) & 0xff)] ^ t[1280 + ((a >>> 16) & 0xff)] ^
      t[1024 + (a >>> 24)] ^ t[768 + (b & 0xff)] ^ t[512 + ((b >>> 8) & 0xff)] ^
      t[256 + ((b >>> 16) & 0xff)] ^ t[b >>> 24];
    i += 8;
  }
  while (i < n) c = t[(c ^ data[i++]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
