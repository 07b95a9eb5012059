// The disk spool: its record format and CRC, the segment files, the commit
// point, recovery (torn and corrupt tails cut off and counted), maxBytes,
// the directory lock, failure to memory-only, and the client with a spool
// (overflow and always modes, in-process against fake servers).

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { spawn } from "node:child_process";
import { Client, OptionsError, SpoolError } from "../mod.ts";
import { crc32 } from "../src/spool/crc32.ts";
import { FileSpool } from "../src/spool/file.ts";
import { nodeDisk, type SpoolDisk } from "../src/spool/disk.ts";
import { acquireLock, processAlive } from "../src/spool/lock.ts";
import {
  countLines,
  frameRecord,
  RECORD_HEADER_BYTES,
  scanRecords,
  SEGMENT_HEADER_BYTES,
  segmentId,
} from "../src/spool/segment.ts";
import type { ResolvedSpoolOptions } from "../src/spool/types.ts";
import { DropOldestQueue } from "../src/queue.ts";
import { BufferPool, InFlightLedger } from "../src/ledger.ts";
import { SpoolFeed } from "../src/spool/feed.ts";
import { closedPort, startServer, waitFor } from "./helpers/servers.ts";

const utf8 = new TextEncoder();
const text = new TextDecoder();

function tempDir(): string {
  return fs.mkdtempSync(join(tmpdir(), "potsdb-spool-test-"));
}

async function withDir(fn: (dir: string) => Promise<void> | void): Promise<void> {
  const dir = tempDir();
  try {
    await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function options(dir: string, extra: Partial<ResolvedSpoolOptions> = {}): ResolvedSpoolOptions {
  return { dir, maxBytes: 64 << 20, mode: "overflow", fsync: "never", ...extra };
}

/** `count` lines `put m <first+i> ...` as bytes. */
function lines(first: number, count: number): Uint8Array {
  let s = "";
  for (let i = first; i < first + count; i++) s += `put spool.t 1700000000 ${i} k=v\n`;
  return utf8.encode(s);
}

/** The values of the lines in `data`. */
function values(data: Uint8Array): number[] {
  return text.decode(data).split("\n").slice(0, -1).map((l) => Number(l.split(" ")[3]));
}

/** Reads everything unread, committing each batch after it is read. */
function drain(spool: FileSpool, maxLines = 1e9, maxBytes = 65536, commit = true): number[] {
  const got: number[] = [];
  for (let b = spool.read(maxLines, maxBytes); b; b = spool.read(maxLines, maxBytes)) {
    assert.equal(countLines(b.data, 0, b.data.length), b.count, "a batch's count is its lines");
    got.push(...values(b.data));
    if (commit) spool.commit(b.end);
  }
  return got;
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

function segments(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => segmentId(n) !== undefined).sort();
}

function diskBytes(dir: string): number {
  return segments(dir).reduce((n, name) => n + fs.statSync(join(dir, name)).size, 0);
}

function noErrors(e: SpoolError): never {
  throw e;
}

describe("spool: CRC-32 and records", () => {
  it("computes the standard CRC-32 check values, in one piece or several", () => {
    assert.equal(crc32(utf8.encode("123456789")), 0xcbf43926);
    assert.equal(crc32(new Uint8Array(0)), 0);
    assert.equal(crc32(utf8.encode("The quick brown fox jumps over the lazy dog")), 0x414fa339);
    const big = new Uint8Array(10_000).map((_, i) => (i * 31 + 7) & 0xff);
    for (const cut of [0, 1, 7, 8, 9, 5000, 9999]) {
      assert.equal(crc32(big.subarray(cut), crc32(big.subarray(0, cut))), crc32(big));
    }
    // Byte at a time (the definition) against the sliced table.
    let c = ~0;
    for (const b of big) {
      c ^= b;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    }
    assert.equal(crc32(big), ~c >>> 0);
  });

  it("frames records that scan back, and stops at any damaged byte", () => {
    const a = frameRecord(lines(0, 3), 3);
    const b = frameRecord(lines(3, 2), 2);
    const buf = new Uint8Array(a.length + b.length);
    buf.set(a);
    buf.set(b, a.length);
    assert.deepEqual(scanRecords(buf, 0), { end: buf.length, records: 2, lines: 5, corrupt: false });
    for (const at of [0, 4, 8, RECORD_HEADER_BYTES + 3, a.length - 1]) {
      const bad = buf.slice();
      bad[at] ^= 0x20;
      const scan = scanRecords(bad, 0);
      assert.equal(scan.end, 0, `damage at ${at} ends the scan before the first record`);
      assert.ok(scan.corrupt);
    }
    for (let cut = a.length + 1; cut < buf.length; cut += 7) {
      const scan = scanRecords(buf.subarray(0, cut), 0);
      assert.deepEqual(scan, { end: a.length, records: 1, lines: 3, corrupt: true });
    }
  });
});

describe("spool: FileSpool", () => {
  it("reads back in order, commits, and the next spool finds only what was not committed", () =>
    withDir((dir) => {
      const spool = new FileSpool(options(dir), noErrors);
      assert.equal(spool.recovered, 0);
      for (let i = 0; i < 10; i++) assert.ok(spool.append(lines(i * 100, 100), 100));
      assert.equal(spool.spooled, 1000);
      assert.equal(spool.unread, 1000);
      const first = spool.read(250, 1 << 20)!;
      assert.deepEqual(values(first.data), range(0, 250));
      const second = spool.read(250, 1 << 20)!;
      assert.deepEqual(values(second.data), range(250, 500));
      assert.equal(spool.unread, 500);
      assert.equal(spool.spooled, 1000, "read is not delivered");
      spool.commit(first.end);
      assert.equal(spool.spooled, 750);
      spool.close();

      const next = new FileSpool(options(dir), noErrors);
      assert.equal(next.recovered, 750, "the second batch was read, not committed: it comes again");
      assert.deepEqual(drain(next, 333), range(250, 1000));
      assert.equal(next.spooled, 0);
      next.close();
      const third = new FileSpool(options(dir), noErrors);
      assert.equal(third.recovered, 0);
      third.close();
      assert.deepEqual(segments(dir), [], "delivered segments are deleted");
    }));

  it("commits in the middle of a record (a line-limited read) and resumes exactly there", () =>
    withDir((dir) => {
      const spool = new FileSpool(options(dir), noErrors);
      spool.append(lines(0, 10), 10);
      spool.append(lines(10, 10), 10);
      const b = spool.read(7, 1 << 20)!;
      assert.deepEqual(values(b.data), range(0, 7));
      spool.commit(b.end);
      const c = spool.read(7, 1 << 20)!;
      assert.deepEqual(values(c.data), range(7, 14), "a batch runs on into the next record");
      spool.commit(c.end);
      spool.close();
      const next = new FileSpool(options(dir), noErrors);
      assert.equal(next.recovered, 6);
      assert.deepEqual(drain(next, 4), range(14, 20));
      next.close();
    }));

  it("respects maxBytes per batch but always takes the first line", () =>
    withDir((dir) => {
      const spool = new FileSpool(options(dir), noErrors);
      spool.append(lines(0, 100), 100);
      const lineBytes = lines(0, 1).length;
      const b = spool.read(1000, lineBytes * 10 + 5)!;
      assert.equal(b.count, 10);
      const one = spool.read(1000, 1)!;
      assert.equal(one.count, 1);
      assert.deepEqual(values(one.data), [10]);
      assert.deepEqual(drain(spool, 1000, 1 << 20, false), range(11, 100));
      spool.close();
    }));

  it("rewind() makes what was read and not committed unread again", () =>
    withDir((dir) => {
      const spool = new FileSpool(options(dir), noErrors);
      spool.append(lines(0, 50), 50);
      spool.commit(spool.read(20, 1 << 20)!.end);
      spool.read(20, 1 << 20);
      assert.equal(spool.unread, 10);
      spool.rewind();
      assert.equal(spool.unread, 30);
      assert.equal(spool.spooled, 30);
      assert.deepEqual(drain(spool), range(20, 50));
      spool.close();
    }));

  it("serves reads from disk when the reader falls behind the in-memory tail", () =>
    withDir((dir) => {
      // 2,000 records of 100 lines (~7 MiB per 100k lines): more than the in-memory tail holds.
      const spool = new FileSpool(options(dir, { segmentBytes: 1 << 20 }), noErrors);
      const n = 200_000;
      for (let i = 0; i < n; i += 100) spool.append(lines(i, 100), 100);
      assert.ok(segments(dir).length > 5);
      const got = drain(spool, 1e9, 65536);
      assert.equal(got.length, n);
      for (let i = 0; i < n; i++) if (got[i] !== i) assert.fail(`line ${i} is ${got[i]}`);
      assert.equal(spool.spooled, 0);
      assert.ok(segments(dir).length <= 1, "delivered segments are deleted as delivery passes them");
      spool.close();
    }));

  it("cuts a torn tail off at start, counts it, and replays the rest intact", () =>
    withDir((dir) => {
      const spool = new FileSpool(options(dir), noErrors);
      spool.append(lines(0, 100), 100);
      spool.append(lines(100, 100), 100);
      spool.append(lines(200, 100), 100);
      spool.close();
      const [name] = segments(dir);
      const path = join(dir, name);
      const size = fs.statSync(path).size;
      const recordBytes = RECORD_HEADER_BYTES + lines(200, 100).length;
      const cut = size - Math.floor(recordBytes / 2); // in the middle of the third record
      fs.truncateSync(path, cut);

      const next = new FileSpool(options(dir), noErrors);
      assert.equal(next.recovered, 200);
      assert.equal(next.corruptTails, 1);
      assert.equal(next.corruptBytes, cut - (size - recordBytes));
      assert.equal(fs.statSync(path).size, size - recordBytes, "the torn bytes are cut off the file");
      assert.deepEqual(drain(next, 1e9, 1 << 20, false), range(0, 200));
      next.close();
      const again = new FileSpool(options(dir), noErrors);
      assert.equal(again.corruptTails, 0, "counted once");
      assert.equal(again.recovered, 200);
      again.close();
    }));

  it("cuts from a corrupt record on, keeps later segments, and drops a segment with a bad header", () =>
    withDir((dir) => {
      const spool = new FileSpool(options(dir, { segmentBytes: 16 * 1024 }), noErrors);
      for (let i = 0; i < 40; i++) spool.append(lines(i * 50, 50), 50); // ~2.8 KiB each: several segments
      spool.close();
      const names = segments(dir);
      assert.ok(names.length >= 4, `${names.length} segments`);
      const counts = names.map((n) => scanRecords(fs.readFileSync(join(dir, n)), SEGMENT_HEADER_BYTES).lines);
      // A flipped byte in the second record of the first segment.
      const first = join(dir, names[0]);
      const bytes = fs.readFileSync(first);
      const second = SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES + lines(0, 50).length;
      bytes[second + RECORD_HEADER_BYTES + 10] ^= 1;
      fs.writeFileSync(first, bytes);
      // The last segment's magic overwritten.
      const last = join(dir, names[names.length - 1]);
      const lastBytes = fs.readFileSync(last);
      lastBytes[0] = 0;
      fs.writeFileSync(last, lastBytes);

      const next = new FileSpool(options(dir), noErrors);
      assert.equal(next.corruptTails, 2);
      const middle = counts.slice(1, -1).reduce((a, b) => a + b, 0);
      assert.equal(next.recovered, 50 + middle);
      const got = drain(next, 1e9, 1 << 20, false);
      assert.deepEqual(got.slice(0, 50), range(0, 50));
      assert.deepEqual(got.slice(50), range(counts[0], counts[0] + middle), "later segments intact");
      next.close();
    }));

  it("holds maxBytes: the oldest segment goes and its unread lines are counted", () =>
    withDir((dir) => {
      const maxBytes = 256 * 1024;
      const spool = new FileSpool(options(dir, { maxBytes }), noErrors);
      const n = 40_000; // ~1.4 MiB of lines
      let most = 0;
      for (let i = 0; i < n; i += 100) {
        assert.ok(spool.append(lines(i, 100), 100));
        most = Math.max(most, diskBytes(dir));
        assert.equal(spool.bytes, diskBytes(dir));
      }
      assert.ok(most <= maxBytes, `${most} bytes on disk > maxBytes ${maxBytes}`);
      assert.ok(spool.droppedFull > 0);
      assert.equal(spool.droppedFull + spool.unread, n, "every line is unread or counted as dropped");
      const got = drain(spool);
      assert.equal(got.length, spool.consumed - spool.droppedFull);
      assert.deepEqual(got, range(n - got.length, n), "the newest survive, in order");
      spool.close();
    }));

  it("drops a segment under a batch being delivered without losing count of it", () =>
    withDir((dir) => {
      const spool = new FileSpool(options(dir, { maxBytes: 64 * 1024 }), noErrors);
      spool.append(lines(0, 100), 100);
      const inFlight = spool.read(50, 1 << 20)!;
      for (let i = 100; i < 5000; i += 100) spool.append(lines(i, 100), 100);
      assert.ok(!spool.onDisk(inFlight.start), "its segment was dropped");
      assert.equal(
        spool.droppedFull + spool.unread + 50,
        5000,
        "the 50 in flight are not counted as dropped",
      );
      spool.commit(inFlight.end); // delivered after all
      assert.equal(spool.spooled, spool.unread);
      spool.close();
    }));

  it("syncs with fsync always and interval, and reopens cleanly", async () => {
    for (const fsync of ["always", "interval"] as const) {
      await withDir((dir) => {
        const spool = new FileSpool(options(dir, { fsync }), noErrors);
        for (let i = 0; i < 1000; i += 100) spool.append(lines(i, 100), 100);
        spool.commit(spool.read(150, 1 << 20)!.end);
        spool.close();
        const next = new FileSpool(options(dir, { fsync }), noErrors);
        assert.deepEqual(drain(next), range(150, 1000));
        next.close();
      });
    }
  });

  it("an unwritable directory: inactive, reported once, nothing thrown", () =>
    withDir((dir) => {
      const file = join(dir, "a-file");
      fs.writeFileSync(file, "");
      const errors: SpoolError[] = [];
      const spool = new FileSpool(options(join(file, "spool")), (e) => errors.push(e));
      assert.equal(spool.active, false);
      assert.equal(errors.length, 1);
      assert.ok(errors[0] instanceof SpoolError && errors[0].code === "SPOOL_FAILED");
      assert.equal(spool.append(lines(0, 1), 1), false);
      assert.equal(spool.read(10, 1000), undefined);
      spool.close();
    }));

  it("a directory that goes away while in use: inactive at the next new segment, reported", () =>
    withDir((dir) => {
      const sub = join(dir, "spool");
      const errors: SpoolError[] = [];
      const spool = new FileSpool(options(sub, { segmentBytes: 8192 }), (e) => errors.push(e));
      assert.ok(spool.append(lines(0, 10), 10));
      fs.rmSync(sub, { recursive: true });
      let ok = true;
      for (let i = 0; i < 1000 && ok; i++) ok = spool.append(lines(i, 100), 100);
      assert.equal(ok, false);
      assert.equal(spool.active, false);
      assert.equal(errors.length, 1);
      spool.close();
    }));
});

/** The real disk, failing the calls `fail` picks (an EIO, as a bad sector would). */
function failingDisk(fail: (call: string, path: string | number) => boolean): SpoolDisk {
  const names = new Map<number, string>();
  const check = (call: string, target: string | number) => {
    if (fail(call, typeof target === "number" ? names.get(target) ?? target : target)) {
      throw Object.assign(new Error(`EIO: i/o error, ${call}`), { code: "EIO" });
    }
  };
  return {
    ...nodeDisk,
    open(path, flags) {
      check(`open:${flags}`, path);
      const fd = nodeDisk.open(path, flags);
      names.set(fd, path);
      return fd;
    },
    read(fd, buf, offset, length, position) {
      check("read", fd);
      return nodeDisk.read(fd, buf, offset, length, position);
    },
    write(fd, data, offset, length, position) {
      check("write", fd);
      return nodeDisk.write(fd, data, offset, length, position);
    },
  };
}

/** The writer's side of `spool`, as the writer sets it up (no rate limit). */
function feedOn(
  spool: FileSpool,
  accepted: () => number,
  queue = new DropOldestQueue(1000),
  batchBytes = 65536,
): SpoolFeed {
  return new SpoolFeed(spool, {
    queue,
    buffers: new BufferPool(batchBytes, 4),
    limiter: undefined,
    host: { accepted, stopped: () => false, pumpFull() {} },
  });
}

describe("spool: failures part-way", () => {
  it("a read that fails part-way hands out nothing and loses no line from the counts (#20.2)", () =>
    withDir((dir) => {
      const small = options(dir, { segmentBytes: 8192 });
      const first = new FileSpool(small, noErrors);
      for (let i = 0; i < 400; i += 10) assert.ok(first.append(lines(i, 10), 10));
      first.close();
      const names = segments(dir);
      assert.ok(names.length >= 2, "the lines span several segments");
      // Reading back from disk: the second segment cannot be opened.
      const errors: SpoolError[] = [];
      const disk = failingDisk((call, path) => call === "open:r" && String(path).endsWith(names[1]));
      const spool = new FileSpool(small, (e) => errors.push(e), disk);
      assert.equal(spool.recovered, 400);
      assert.equal(spool.read(1000, 1 << 20), undefined, "nothing half-read is handed out");
      assert.equal(spool.active, false);
      assert.equal(errors.length, 1);
      assert.equal(spool.unread, 400, "the lines taken before the failure are still waiting");
      assert.equal(spool.consumed, 0);
      spool.close();
      const next = new FileSpool(small, noErrors);
      assert.deepEqual(drain(next), range(0, 400), "all on disk for the next process, once each");
      next.close();
    }));

  it("a batch whose first segment a full spool dropped is on disk once after it is appended again", () =>
    withDir((dir) => {
      const spool = new FileSpool(options(dir, { maxBytes: 64 * 1024, segmentBytes: 8192 }), noErrors);
      let n = 0;
      while (segments(dir).length < 2) {
        assert.ok(spool.append(lines(n, 10), 10));
        n += 10;
      }
      // Delivered up to 5 lines before the first segment's end; then a batch that runs on from
      // there into the second segment.
      const inFirst = n - 10;
      spool.commit(spool.read(inFirst - 5, 1 << 20)!.end);
      const batch = spool.read(10, 1 << 20)!;
      assert.deepEqual(values(batch.data), range(inFirst - 5, inFirst + 5));
      const firstSegment = segments(dir)[0];
      while (segments(dir)[0] === firstSegment) {
        assert.ok(spool.append(lines(n, 10), 10));
        n += 10;
      }
      assert.equal(spool.droppedFull, 0, "the dropped segment held only lines in flight");
      // What the writer does at close: the batch is not on disk whole, so it is appended again.
      assert.equal(spool.onDisk(batch.start), false);
      assert.ok(spool.append(batch.data, batch.count));
      spool.rewind();
      const waiting = n - (inFirst - 5);
      assert.equal(
        spool.unread + spool.droppedFull,
        waiting,
        "each line waits once, or was dropped and counted",
      );
      const got = drain(spool);
      assert.equal(got.length, waiting - spool.droppedFull);
      assert.equal(new Set(got).size, got.length, "no line twice");
      for (const v of batch.count ? values(batch.data) : []) assert.ok(got.includes(v), `${v} kept`);
      spool.close();
    }));

  it("a batch given back on disk and then dropped by a full spool is counted as dropped", () =>
    withDir((dir) => {
      const spool = new FileSpool(options(dir, { maxBytes: 64 * 1024, segmentBytes: 8192 }), noErrors);
      assert.ok(spool.append(lines(0, 100), 100));
      const batch = spool.read(100, 1 << 20)!;
      // What the writer does at close or exit: this batch will not be delivered; still on disk.
      assert.equal(spool.onDisk(batch.start), true);
      assert.equal(spool.unread, 100, "waiting again");
      // More is spilled than the spool holds: the oldest segment, with the batch, goes.
      let n = 100;
      while (spool.droppedFull < 100) {
        assert.ok(spool.append(lines(n, 10), 10));
        n += 10;
      }
      assert.equal(spool.unread + spool.droppedFull, n, "every line waits or was dropped and counted");
      spool.rewind();
      assert.equal(spool.unread + spool.droppedFull, n);
      const got = drain(spool);
      assert.equal(got.length, n - spool.droppedFull);
      assert.equal(new Set(got).size, got.length);
      spool.close();
    }));

  it("a rewrite at close that the spool fails part-way counts a batch a full spool dropped in flight as lost", () =>
    withDir((dir) => {
      const small = options(dir, { maxBytes: 64 * 1024, segmentBytes: 8192 });
      let failing = false;
      const spool = new FileSpool(small, () => {}, failingDisk((call) => failing && call === "write"));
      const queue = new DropOldestQueue(1000);
      let accepted = 0;
      const feed = feedOn(spool, () => accepted, queue);
      const ledger = new InFlightLedger();
      assert.ok(spool.append(lines(0, 100), 100));
      accepted = 100;
      const fromDisk = feed.read();
      assert.ok(typeof fromDisk === "object" && fromDisk.count === 100);
      ledger.written(fromDisk);
      // Newer lines spill to disk until a full spool drops the segment under the batch in flight.
      const firstSegment = segments(dir)[0];
      while (segments(dir)[0] === firstSegment) {
        assert.ok(spool.append(lines(accepted, 10), 10));
        accepted += 10;
      }
      // A batch taken from the queue, older than what waits on disk: persist writes all again in order.
      ledger.written({ data: lines(accepted, 10), count: 10, seq: 100 });
      accepted += 10;
      failing = true;
      const { lost } = feed.persist(ledger, true);
      assert.equal(spool.active, false);
      const next = new FileSpool(small, noErrors);
      try {
        assert.equal(
          lost + spool.droppedFull + next.recovered,
          accepted,
          "every line is on disk, dropped and counted, or lost and counted",
        );
        assert.ok(lost >= 110, "the batch the full spool dropped and the one from memory are lost");
      } finally {
        next.close();
      }
    }));

  it("a rewrite at close that fails after writing some batches again counts each line once", () =>
    withDir((dir) => {
      const small = options(dir, { maxBytes: 1 << 20 });
      let writes = 0;
      let failing = false;
      const disk = failingDisk((call) => failing && call === "write" && ++writes > 1);
      const spool = new FileSpool(small, () => {}, disk);
      let accepted = 0;
      const feed = feedOn(spool, () => accepted, new DropOldestQueue(1000), 64 * 30); // 64 lines a batch
      const ledger = new InFlightLedger();
      assert.ok(spool.append(lines(0, 100), 100));
      accepted = 100;
      const fromDisk = feed.read();
      assert.ok(typeof fromDisk === "object" && fromDisk.count < 100, "part of the lines is read");
      ledger.written(fromDisk);
      // A batch from memory, with lines still unread on disk: persist writes everything again in
      // order. The first append (the batch read from disk) succeeds, the next one fails.
      ledger.written({ data: lines(100, 10), count: 10, seq: 100 });
      accepted += 10;
      failing = true;
      const { lost } = feed.persist(ledger, true);
      assert.equal(spool.active, false);
      assert.equal(lost, 10, "the batch only in memory is lost, and counted");
      // The batch written again is on disk twice now (its old record was never let go): the next
      // process may deliver it twice, but here every line counts once, as waiting or lost.
      assert.equal(spool.unread + lost, accepted, "each line counted once");
      const next = new FileSpool(small, noErrors);
      try {
        const got = drain(next);
        assert.deepEqual(
          [...new Set(got)].sort((a, b) => a - b),
          range(0, 100),
          "every line from disk is there",
        );
      } finally {
        next.close();
      }
    }));

  it("a batch in flight whose segment a full spool dropped goes back to disk before the newer lines", () =>
    withDir((dir) => {
      const small = options(dir, { maxBytes: 64 * 1024, segmentBytes: 8192 });
      const spool = new FileSpool(small, noErrors);
      let accepted = 0;
      const feed = feedOn(spool, () => accepted);
      const ledger = new InFlightLedger();
      assert.ok(spool.append(lines(0, 20), 20));
      accepted = 20;
      const inFlight = feed.read();
      assert.ok(typeof inFlight === "object" && inFlight.count === 20);
      ledger.written(inFlight);
      const firstSegment = segments(dir)[0];
      while (segments(dir)[0] === firstSegment) {
        assert.ok(spool.append(lines(accepted, 10), 10));
        accepted += 10;
      }
      const { lost } = feed.persist(ledger, true);
      assert.equal(lost, 0);
      const next = new FileSpool(small, noErrors);
      try {
        const got = drain(next);
        assert.deepEqual(got.slice(0, 20), range(0, 20), "the batch in flight comes first");
        assert.deepEqual(got, [...got].sort((a, b) => a - b), "all in send order");
        assert.equal(got.length + spool.droppedFull, accepted, "each line once, or dropped and counted");
      } finally {
        next.close();
      }
    }));

  it("rewind after a failure counts what was read and not committed as waiting again", () =>
    withDir((dir) => {
      const small = options(dir, { segmentBytes: 8192 });
      let failing = false;
      const errors: SpoolError[] = [];
      const spool = new FileSpool(small, (e) => errors.push(e), failingDisk(() => failing));
      assert.ok(spool.append(lines(0, 100), 100));
      const batch = spool.read(60, 1 << 20)!;
      assert.equal(spool.unread, 40);
      failing = true;
      assert.equal(spool.append(lines(100, 10), 10), false);
      assert.equal(spool.active, false);
      assert.equal(spool.onDisk(batch.start), true);
      spool.rewind();
      assert.equal(spool.unread, 100, "the 60 in flight wait on disk again: counted, not lost");
      spool.close();
      const next = new FileSpool(small, noErrors);
      assert.deepEqual(drain(next), range(0, 100));
      next.close();
    }));
});

describe("spool: the directory lock", () => {
  it("refuses a second spool on the same directory in this process, until the first closes", () =>
    withDir((dir) => {
      const spool = new FileSpool(options(dir), noErrors);
      assert.throws(() => new FileSpool(options(dir), noErrors), OptionsError);
      assert.throws(() => new FileSpool(options(join(dir, ".")), noErrors), OptionsError);
      spool.close();
      new FileSpool(options(dir), noErrors).close();
    }));

  it("refuses the same directory reached through a symlink in this process", () =>
    withDir((dir) => {
      const real = join(dir, "real");
      fs.mkdirSync(real);
      const link = join(dir, "link");
      fs.symlinkSync(real, link, "dir");
      const spool = new FileSpool(options(real), noErrors);
      // The lock file names this pid: without the canonical path it would pass for a leftover.
      assert.throws(() => new FileSpool(options(link), noErrors), OptionsError);
      spool.close();
      new FileSpool(options(link), noErrors).close();
    }));

  it("refuses a directory locked by a live process, and takes over one of a dead pid", () =>
    withDir(async (dir) => {
      const lock = join(dir, "lock");
      fs.writeFileSync(lock, `${process.ppid}\n`); // our parent: alive
      assert.ok(processAlive(process.ppid));
      assert.throws(
        () => acquireLock(dir),
        (e: Error) => e instanceof OptionsError && /locked by/.test(e.message),
      );
      const dead = await deadPid();
      assert.equal(processAlive(dead), false);
      fs.writeFileSync(lock, `${dead}\n`);
      const spool = new FileSpool(options(dir), noErrors);
      assert.equal(spool.tookOverLock, true);
      assert.equal(fs.readFileSync(lock, "utf8").trim(), String(process.pid));
      spool.close();
      assert.equal(fs.existsSync(lock), false, "released at close");
      fs.writeFileSync(lock, "garbage");
      const again = new FileSpool(options(dir), noErrors);
      assert.equal(again.tookOverLock, true, "an unreadable lock is stale");
      again.close();
    }));
});

/**
 * Two (or more) simulated processes on the real file system: each is `nodeDisk` with its own
 * pid, alive while in `alive`; `before` runs ahead of each of its calls (to slip another
 * process's steps in between, or to crash it there by throwing).
 */
function processDisk(pid: number, alive: Set<number>, before: (call: string) => void = () => {}): SpoolDisk {
  alive.add(pid);
  const wrapped: Record<string, unknown> = { pid, processAlive: (p: number) => alive.has(p) };
  for (const [name, fn] of Object.entries(nodeDisk)) {
    if (typeof fn !== "function" || name === "processAlive" || name === "join") continue;
    wrapped[name] = (...args: unknown[]) => {
      before(name);
      return (fn as (...a: unknown[]) => unknown)(...args);
    };
  }
  wrapped.join = nodeDisk.join;
  return wrapped as unknown as SpoolDisk;
}

class Crash extends Error {}

describe("spool: the lock between processes, step by step (#20.3)", () => {
  for (const start of ["a dead pid", "an empty file", "no lock"]) {
    it(`whichever step of a takeover another process slips in at (${start}): never two holders`, () =>
      withDir((dir) => {
        const lock = join(dir, "lock");
        for (let at = 0; at < 40; at++) {
          for (const name of fs.readdirSync(dir)) fs.rmSync(join(dir, name));
          if (start === "a dead pid") fs.writeFileSync(lock, "999999999\n");
          if (start === "an empty file") fs.writeFileSync(lock, "");
          const alive = new Set<number>();
          let calls = 0;
          let b: ReturnType<typeof acquireLock> | undefined;
          let bError: unknown;
          const diskB = processDisk(2_000_000 + at, alive);
          const diskA = processDisk(1_000_000 + at, alive, () => {
            if (calls++ !== at) return;
            try {
              b = acquireLock(dir, diskB); // B runs its whole takeover between two calls of A
            } catch (e) {
              bError = e;
            }
          });
          let a: ReturnType<typeof acquireLock> | undefined;
          try {
            a = acquireLock(dir, diskA);
          } catch (e) {
            assert.ok(e instanceof OptionsError, String(e));
          }
          if (bError !== undefined) assert.ok(bError instanceof OptionsError, String(bError));
          const holders = [a, b].filter((l) => l !== undefined);
          assert.equal(holders.length, 1, `step ${at}: ${holders.length} holders`);
          const text = fs.readFileSync(lock, "utf8").trim();
          assert.equal(
            text,
            String(a !== undefined ? diskA.pid : diskB.pid),
            `step ${at}: the lock names its holder`,
          );
          a?.release();
          b?.release();
          if (calls <= at) break; // A made fewer calls than that: every step was tried
        }
      }));
  }

  it("a process that dies at any step of taking the lock never blocks the next one", () =>
    withDir((dir) => {
      const lock = join(dir, "lock");
      for (let at = 0; at < 40; at++) {
        for (const name of fs.readdirSync(dir)) fs.rmSync(join(dir, name));
        fs.writeFileSync(lock, "999999999\n");
        const alive = new Set<number>();
        let calls = 0;
        const pidA = 3_000_000 + at;
        const diskA = processDisk(pidA, alive, () => {
          if (calls++ === at) {
            alive.delete(pidA); // killed here: whatever it made stays behind
            throw new Crash();
          }
        });
        let finished = false;
        try {
          acquireLock(dir, diskA).release();
          finished = true;
        } catch (e) {
          assert.ok(e instanceof Crash, String(e));
        }
        const next = acquireLock(dir, processDisk(4_000_000 + at, alive));
        assert.equal(fs.readFileSync(lock, "utf8").trim(), String(4_000_000 + at), `step ${at}`);
        next.release();
        if (finished) break;
      }
    }));
});

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["--version"], { stdio: "ignore" });
  await new Promise((resolve) => child.once("exit", resolve));
  return child.pid!;
}

describe("spool: DropOldestQueue's overflow hook", () => {
  it("lets the hook take lines off the front instead of dropping the oldest", () => {
    const q = new DropOldestQueue(10);
    const taken: string[] = [];
    q.overflow = () => {
      const b = q.peek(4, 1 << 20)!;
      taken.push(text.decode(b.data));
      q.discard(b.count);
    };
    for (let i = 0; i < 25; i++) q.push(`${i}\n`);
    assert.equal(q.dropped, 0);
    // Full at the 11th, 15th, 19th and 23rd push: four lines off the front each time.
    assert.deepEqual(taken.join("").split("\n").slice(0, -1).map(Number), range(0, 16));
    assert.deepEqual(
      text.decode(q.take(100, 1 << 20)!.data).split("\n").slice(0, -1).map(Number),
      range(16, 25),
    );
  });
});

/** Lines a fake server got, as values of `spool.seq`. */
function seqValues(all: string[]): number[] {
  return all.filter((l) => l.startsWith("put spool.seq ")).map((l) => Number(l.split(" ")[3]));
}

function assertAccounting(s: ReturnType<Client["stats"]>): void {
  assert.equal(s.accepted, s.sent + s.queued + s.dropped.total, JSON.stringify(s));
  assert.ok(s.spooled <= s.queued, "spooled points are part of queued");
}

describe("spool: Client", () => {
  it("overflow: a full queue spills to disk instead of dropping; the next client delivers it all", () =>
    withDir(async (dir) => {
      const down = await closedPort();
      const n = 50_000;
      const a = new Client("127.0.0.1", {
        dedup: false,
        port: down,
        hostTag: false,
        qsize: 1000,
        spool: { dir, fsync: "never" },
      });
      for (let i = 0; i < n; i++) a.send("spool.seq", i, { k: "v" }, 1700000000);
      const mid = a.stats();
      assertAccounting(mid);
      assert.equal(mid.dropped.total, 0);
      assert.ok(mid.spooled >= n - 1000, `${mid.spooled} spooled`);
      const closed = await a.close({ timeoutMs: 0 });
      assertAccounting(closed);
      assert.equal(closed.dropped.total, 0, "nothing dropped: the rest went to disk at close");
      assert.equal(closed.spooled, n);
      assert.equal(closed.queued, n);

      const server = await startServer();
      try {
        const b = new Client("127.0.0.1", {
          dedup: false,
          port: server.port,
          hostTag: false,
          spool: { dir },
        });
        assert.equal(b.stats().spool?.recovered, n);
        assert.equal(b.stats().accepted, n, "recovered points count as accepted");
        b.send("spool.seq", n, { k: "v" }, 1700000000);
        await b.flush({ timeoutMs: 30_000 });
        const s = await b.close();
        assertAccounting(s);
        assert.equal(s.sent, n + 1);
        assert.equal(s.spooled, 0);
        await waitFor(() => server.lines().length >= n + 1, 10_000, "delivery");
        assert.deepEqual(seqValues(server.lines()), range(0, n + 1), "every point once, in order");
      } finally {
        await server.close();
      }
      const c = new Client("127.0.0.1", { dedup: false, port: down, hostTag: false, spool: { dir } });
      assert.equal(c.stats().spooled, 0, "delivered points are off the disk");
      await c.close({ timeoutMs: 0 });
    }));

  it("overflow with a live server: the spool drains first, then the queue, all in order", () =>
    withDir(async (dir) => {
      const server = await startServer();
      try {
        const client = new Client("127.0.0.1", {
          dedup: false,
          port: server.port,
          hostTag: false,
          qsize: 500,
          spool: { dir, fsync: "never" },
        });
        const n = 100_000;
        for (let i = 0; i < n; i++) client.send("spool.seq", i, { k: "v" }, 1700000000);
        assert.ok(client.stats().spooled > 0, "the burst overflowed to disk");
        const s = await client.close({ timeoutMs: 30_000 });
        assertAccounting(s);
        assert.equal(s.sent, n);
        await waitFor(() => server.lines().length >= n, 10_000, "delivery");
        assert.deepEqual(seqValues(server.lines()), range(0, n));
      } finally {
        await server.close();
      }
    }));

  it("always: every point goes through the disk; delivered and removed", () =>
    withDir(async (dir) => {
      const server = await startServer();
      try {
        const client = new Client("127.0.0.1", {
          dedup: false,
          port: server.port,
          hostTag: false,
          spool: { dir, mode: "always" },
        });
        const n = 30_000;
        for (let i = 0; i < n; i++) {
          client.send("spool.seq", i, { k: "v" }, 1700000000);
          if (i % 5000 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
        }
        await client.flush({ timeoutMs: 30_000 });
        const s = await client.close();
        assertAccounting(s);
        assert.equal(s.sent, n);
        assert.equal(s.spooled, 0);
        await waitFor(() => server.lines().length >= n, 10_000, "delivery");
        assert.deepEqual(seqValues(server.lines()), range(0, n));
        assert.deepEqual(segments(dir), []);
      } finally {
        await server.close();
      }
    }));

  it("always: points are on disk once the sending task ends, even with the server down", () =>
    withDir(async (dir) => {
      const down = await closedPort();
      const client = new Client("127.0.0.1", {
        dedup: false,
        port: down,
        hostTag: false,
        spool: { dir, mode: "always" },
      });
      for (let i = 0; i < 100; i++) client.send("spool.seq", i, { k: "v" }, 1700000000);
      assert.equal(client.stats().spooled, 0, "less than a batch: written when this task ends");
      await Promise.resolve();
      assert.equal(client.stats().spooled, 100);
      for (let i = 100; i < 5000; i++) client.send("spool.seq", i, { k: "v" }, 1700000000);
      // Whole batches (64 KiB) are written within send(): at most one batch's lines wait.
      const lineBytes = "put spool.seq 1700000000 4999 k=v\n".length;
      assert.ok(client.stats().spooled >= 5000 - Math.ceil(65536 / lineBytes), "written within send()");
      const s = await client.close({ timeoutMs: 0 });
      assertAccounting(s);
      assert.equal(s.spooled, 5000);
    }));

  it("replays under a rate limit, in order, taking tokens for spooled points too", () =>
    withDir(async (dir) => {
      const down = await closedPort();
      const n = 20_000;
      const a = new Client("127.0.0.1", {
        dedup: false,
        port: down,
        hostTag: false,
        qsize: 1000,
        spool: { dir },
      });
      for (let i = 0; i < n; i++) a.send("spool.seq", i, { k: "v" }, 1700000000);
      await a.close({ timeoutMs: 0 });
      const server = await startServer();
      try {
        const b = new Client("127.0.0.1", {
          dedup: false,
          port: server.port,
          hostTag: false,
          mps: 10_000,
          spool: { dir },
        });
        const s = await b.close({ timeoutMs: 30_000 });
        assertAccounting(s);
        assert.equal(s.sent, n);
        await waitFor(() => server.lines().length >= n, 10_000, "delivery");
        assert.deepEqual(seqValues(server.lines()), range(0, n));
      } finally {
        await server.close();
      }
    }));

  it("holds maxBytes through the client and counts dropped.spoolFull", () =>
    withDir(async (dir) => {
      const down = await closedPort();
      const maxBytes = 256 * 1024;
      const client = new Client("127.0.0.1", {
        dedup: false,
        port: down,
        hostTag: false,
        qsize: 1000,
        spool: { dir, maxBytes, fsync: "never" },
      });
      const n = 50_000;
      for (let i = 0; i < n; i++) client.send("spool.seq", i, { k: "v" }, 1700000000);
      const s = await client.close({ timeoutMs: 0 });
      assertAccounting(s);
      assert.ok(s.dropped.spoolFull > 0);
      assert.equal(s.dropped.queueFull, 0);
      assert.equal(s.dropped.spoolFull + s.spooled, n);
      assert.ok(diskBytes(dir) <= maxBytes, `${diskBytes(dir)} bytes on disk`);
    }));

  it("refuses a second client on the same directory with an OptionsError", () =>
    withDir(async (dir) => {
      const a = new Client("127.0.0.1", { dedup: false, port: 1, hostTag: false, spool: { dir } });
      assert.throws(
        () => new Client("127.0.0.1", { dedup: false, port: 1, hostTag: false, spool: { dir } }),
        (e: Error) => e instanceof OptionsError && e.code === "INVALID_OPTION",
      );
      await a.close({ timeoutMs: 0 });
      await new Client("127.0.0.1", { dedup: false, port: 1, hostTag: false, spool: { dir } }).close({
        timeoutMs: 0,
      });
    }));

  it("an unwritable dir: an error event, memory-only, send() never throws", () =>
    withDir(async (dir) => {
      const file = join(dir, "a-file");
      fs.writeFileSync(file, "");
      const down = await closedPort();
      const client = new Client("127.0.0.1", {
        dedup: false,
        port: down,
        hostTag: false,
        qsize: 100,
        spool: { dir: join(file, "spool") },
      });
      const errors: Error[] = [];
      client.addEventListener("error", (e) => {
        if (e.detail instanceof SpoolError) errors.push(e.detail);
      });
      for (let i = 0; i < 1000; i++) client.send("spool.seq", i, { k: "v" }, 1700000000);
      await waitFor(() => errors.length > 0, 5000, "the error event");
      const s = await client.close({ timeoutMs: 0 });
      assertAccounting(s);
      assert.equal(s.spool?.active, false);
      assert.equal(s.dropped.queueFull, 900, "memory-only: the queue drops as without a spool");
      assert.equal(errors.length, 1);
      assert.equal((errors[0] as SpoolError).code, "SPOOL_FAILED");
    }));

  it("checks the option", () => {
    const bad = [
      {},
      { dir: "" },
      { dir: 5 },
      { dir: "x", mode: "sometimes" },
      { dir: "x", fsync: "weekly" },
      { dir: "x", maxBytes: 1000 },
      { dir: "x", maxBytes: 1.5 },
    ];
    for (const spool of bad) {
      assert.throws(
        () => new Client("localhost", { dedup: false, spool: spool as never }),
        OptionsError,
        JSON.stringify(spool),
      );
    }
  });
});
