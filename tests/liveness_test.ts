// The pieces of dead-peer detection, with a hand-driven clock: when a probe is due, when a
// connection is stalled, when a server counts as silent; and how addresses are chosen.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { isProbeAnswer, isProbeAnswerTail, Liveness } from "../src/liveness.ts";
import { type Address, AddressBook } from "../src/addresses.ts";

function live(expectAnswers = false, heartbeatMs = 5000) {
  const clock = { now: 0 };
  const l = new Liveness({ heartbeatMs, stallTimeoutMs: 15000, expectAnswers, now: () => clock.now });
  return { l, clock };
}

describe("Liveness", () => {
  it("probes only after lines were written, and only every heartbeatMs", () => {
    const { l, clock } = live();
    clock.now = 10_000;
    assert.equal(l.tick(false), undefined, "nothing written: never the first bytes");
    l.written(5);
    assert.equal(l.tick(false), "probe");
    l.probeSent();
    clock.now = 12_000;
    l.written(9);
    assert.equal(l.tick(false), undefined, "one probe at a time");
    assert.equal(l.answered(), 5);
    assert.equal(l.state, "acknowledging");
    assert.equal(l.tick(false), undefined, "not due yet");
    clock.now = 15_000;
    assert.equal(l.tick(false), "probe", "lines 5..8 not covered yet");
    l.probeSent();
    assert.equal(l.answered(), 9);
    clock.now = 20_000;
    assert.equal(l.tick(false), undefined, "nothing new since the answer");
  });

  it("an unanswered first probe makes an unknown server silent: no more probes, nothing kept", () => {
    const { l, clock } = live();
    assert.equal(l.retaining, true, "kept, to be confirmed by an answer");
    assert.equal(l.replays, false, "but not written again until the server has answered once");
    clock.now = 5000;
    l.written(1);
    assert.equal(l.tick(false), "probe");
    l.probeSent();
    clock.now = 20_001;
    l.written(50);
    assert.equal(l.tick(false), "silent");
    assert.equal(l.state, "silent");
    clock.now = 100_000;
    l.written(5000);
    assert.equal(l.tick(false), undefined);
  });

  it("a late answer on a silent connection: the server answers after all, so lines are kept and probed again", () => {
    const { l, clock } = live();
    clock.now = 5000;
    l.written(1);
    assert.equal(l.tick(false), "probe");
    l.probeSent();
    clock.now = 20_001;
    assert.equal(l.tick(false), "silent");
    l.written(50);
    assert.equal(l.answered(), undefined, "it confirms nothing: the lines it covered went as unconfirmed");
    assert.equal(l.state, "acknowledging");
    assert.equal(l.retaining, true);
    assert.equal(l.replays, true);
    clock.now = 30_000;
    l.written(60);
    assert.equal(l.tick(false), "probe");
    l.probeSent();
    assert.equal(l.answered(), 60);
  });

  it("an unanswered probe is a stall where the server answered before", () => {
    const known = live(true);
    assert.equal(known.l.replays, true);
    known.clock.now = 5000;
    known.l.written(1);
    assert.equal(known.l.tick(false), "probe");
    known.l.probeSent();
    known.clock.now = 20_001;
    assert.equal(known.l.tick(false), "stalled");
    const proven = live();
    proven.clock.now = 5000;
    proven.l.written(1);
    proven.l.tick(false);
    proven.l.probeSent();
    proven.l.answered();
    assert.equal(proven.l.replays, true);
    proven.clock.now = 10_000;
    proven.l.written(2);
    assert.equal(proven.l.tick(false), "probe");
    proven.l.probeSent();
    proven.clock.now = 25_001;
    assert.equal(proven.l.tick(false), "stalled");
  });

  it("no write progress while bytes wait is a stall, probes or not", () => {
    const { l, clock } = live(false, 0);
    clock.now = 14_000;
    assert.equal(l.tick(true), undefined);
    l.progressed();
    clock.now = 29_000;
    assert.equal(l.tick(true), undefined);
    assert.equal(l.tick(false), undefined, "nothing waiting: idle, not stalled");
    clock.now = 29_001;
    assert.equal(l.tick(true), "stalled");
  });

  it("knows OpenTSDB's answer to version", () => {
    assert.ok(isProbeAnswer("net.opentsdb.tools 2.4.0 built at revision 1a2b3c4 (MINT)"));
    assert.ok(isProbeAnswerTail("Built on 2019/01/01 00:00:00 +0000 by user@host:/path"));
    assert.ok(!isProbeAnswer("put: illegal argument: net.opentsdb"));
  });
});

describe("AddressBook", () => {
  const addresses: Address[] = [{ host: "a", port: 1 }, { host: "b", port: 1 }, { host: "c", port: 1 }];

  it("spreads clients of one process evenly over the addresses", () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const { address } = new AddressBook(addresses, {}, () => 0).next();
      counts.set(address.host, (counts.get(address.host) ?? 0) + 1);
    }
    assert.deepEqual([...counts.values()], [10, 10, 10]);
  });

  it("skips an address that cools down, and waits for the first ready when all do", () => {
    let now = 0;
    const book = new AddressBook(addresses, { initialMs: 1000, maxMs: 8000 }, () => now, () => 0.999);
    const first = book.next().address;
    book.failed(first);
    const second = book.next().address;
    assert.notEqual(second, first);
    book.failed(second);
    const third = book.next().address;
    book.failed(third);
    assert.equal(new Set([first, second, third]).size, 3);
    const { address, waitMs } = book.next();
    assert.equal(address, first, "the one whose cool-down ends first");
    assert.ok(waitMs > 0 && waitMs <= 1000, String(waitMs));
    now = 1000;
    assert.deepEqual(book.next(), { address: first, waitMs: 0 });
    book.failed(first); // a second failure in a row: longer
    book.connected(second);
    assert.equal(book.next().address, second);
  });

  it("moves to another address at random on a rebalance", () => {
    const book = new AddressBook(addresses, {}, () => 0, () => 0.5);
    const current = book.next().address;
    assert.ok(book.moveFrom(current));
    assert.notEqual(book.next().address, current);
    const single = new AddressBook([addresses[0]], {}, () => 0);
    assert.equal(single.moveFrom(addresses[0]), false);
  });
});
