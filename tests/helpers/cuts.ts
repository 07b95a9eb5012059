// What a stream of points loses when its connections are cut, measured
// without clocks. A client's points are numbered 0, 1, 2, … in send order, so
// `stats().sent` read at a `connect` and at the next `disconnect` names the
// points written on that connection. A server stores what it reads in order,
// so on a cut connection only a tail of what was written to it can be missing
// (what was in flight at the cut), and a point written on a connection that
// was not cut (the last one, ended by close()) must arrive.

import type { Client } from "../../mod.ts";

/** One client, and what its events told. */
export interface Tracked {
  client: Client;
  /** Per connection: `stats().sent` when it opened and when it ended; points [from, to) were written on it. */
  conns: { from: number; to?: number }[];
  /** Connections opened plus connects that failed. */
  attempts: number;
  /** Longest time without a connection, from a disconnect to the next connect, in ms. */
  longestGapMs: number;
}

/** Listens to `client`'s connects, disconnects and failed connects. */
export function track(client: Client): Tracked {
  const t: Tracked = { client, conns: [], attempts: 0, longestGapMs: 0 };
  let downAt: number | undefined;
  client.addEventListener("connect", () => {
    t.attempts++;
    t.conns.push({ from: client.stats().sent });
    if (downAt !== undefined) t.longestGapMs = Math.max(t.longestGapMs, Date.now() - downAt);
    downAt = undefined;
  });
  client.addEventListener("disconnect", () => {
    // Lines taken back for replay are out of `sent` already: [from, to) is what this connection
    // carried for good.
    t.conns[t.conns.length - 1].to = client.stats().sent;
    downAt = Date.now();
  });
  client.addEventListener("error", (e) => {
    const error = e.detail;
    if (error.code === "CONNECT_TIMEOUT" || error.message.startsWith("cannot connect")) t.attempts++;
  });
  return t;
}

/** The connections of `t` that were cut, as [from, to) ranges of its stream. */
export function cutRanges(t: Tracked): { from: number; to: number }[] {
  return t.conns.filter((c) => c.to !== undefined) as { from: number; to: number }[];
}

/** Points of a client's stream (copies[seq] = how many arrived) that were lost outside a cut connection. */
export function lostOutsideCuts(t: Tracked, copies: ArrayLike<number>): number[] {
  const cut = cutRanges(t);
  const out: number[] = [];
  for (let seq = 0; seq < copies.length; seq++) {
    if (copies[seq] === 0 && !cut.some((c) => seq >= c.from && seq < c.to)) out.push(seq);
  }
  return out;
}

/** Losses and copies of one client's stream. */
export interface CutFigures {
  lost: number;
  /** Copies beyond the first. */
  duplicated: number;
  /** Points written on cut connections: the most that could be lost. */
  onCut: number;
  /** Problems: a point lost before one that arrived on the same cut connection. */
  notTail: string[];
}

/** Counts what `t`'s stream lost and duplicated, and finds losses that are not a tail. */
export function cutFigures(t: Tracked, copies: ArrayLike<number>): CutFigures {
  const figures: CutFigures = { lost: 0, duplicated: 0, onCut: 0, notTail: [] };
  for (let seq = 0; seq < copies.length; seq++) {
    if (copies[seq] === 0) figures.lost++;
    else figures.duplicated += copies[seq] - 1;
  }
  for (const { from, to } of cutRanges(t)) {
    figures.onCut += to - from;
    let firstLost = -1;
    for (let seq = from; seq < to && seq < copies.length; seq++) {
      if (copies[seq] === 0 && firstLost === -1) firstLost = seq;
      if (copies[seq] > 0 && firstLost !== -1) {
        figures.notTail.push(
          `on the connection that carried ${from}..${to - 1}, ${firstLost} is lost but ${seq} arrived`,
        );
        break;
      }
    }
  }
  return figures;
}
