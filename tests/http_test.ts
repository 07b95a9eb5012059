// httpTransport: against an in-process fake OpenTSDB HTTP server (node:http)
// for refusals, retries, timeouts and the body limit, and against
// VictoriaMetrics' OpenTSDB HTTP listener for what really arrives.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";
import {
  Client,
  type ClientStats,
  type ConnectError,
  type DropDetail,
  OptionsError,
  type Rejection,
} from "../mod.ts";
import { HttpError, httpTransport, type HttpTransportOptions } from "../src/transport/http.ts";
import { startTsdb, type Tsdb } from "../scripts/tsdb.ts";
import { closedPort, HANG_GUARD_MS, settles, waitFor } from "./helpers/servers.ts";

const TS = 1700000000;
const fast = { initialMs: 5, maxMs: 20 };

interface JsonPoint {
  metric: string;
  timestamp: number;
  value: number | string;
  tags: Record<string, string>;
}

interface SeenRequest {
  url: string;
  headers: http.IncomingHttpHeaders;
  /** Bytes on the wire. */
  size: number;
  points: JsonPoint[];
}

interface Reply {
  status: number;
  body?: string;
  /** Answer only after this many ms. */
  delayMs?: number;
  /** Answer only once this settles (and `delayMs` has passed). */
  after?: Promise<unknown>;
}

interface FakeTsd {
  port: number;
  /** Every request the server answered, in order. */
  requests: SeenRequest[];
  /** Points of the requests answered with 2xx, minus those refused in details. */
  stored: JsonPoint[];
  /** Requests the client gave up on: their connection closed before the answer. */
  abandoned: number;
  /** Most requests the server held unanswered at once. */
  maxOpen: number;
  /** Requests that arrived while another one unanswered carried a point of the same cell. */
  cellOverlaps: number;
  /** Resolves when the server has received its `n`-th request (from 1). */
  received(n: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * A fake OpenTSDB `/api/put`: like OpenTSDB with default settings it refuses
 * bodies over `maxBody` bytes on the wire ("Chunked request not supported"),
 * gunzips, and lets `reply` decide the answer. A request whose answer is
 * aborted by the client is not recorded (the "server" never processed it).
 */
async function startFakeTsd(
  reply: (points: JsonPoint[], n: number, request: http.IncomingMessage) => Reply = () => ({ status: 204 }),
  maxBody = 8192,
): Promise<FakeTsd> {
  const requests: SeenRequest[] = [];
  const stored: JsonPoint[] = [];
  const counts = { abandoned: 0, maxOpen: 0, cellOverlaps: 0 };
  const open = new Set<Set<string>>();
  const arrivals: { n: number; resolve: () => void }[] = [];
  let n = 0;
  const sockets = new Set<import("node:net").Socket>();
  const server = http.createServer((request, response) => {
    response.on("close", () => {
      if (!response.writableEnded) counts.abandoned++;
    });
    const chunks: Buffer[] = [];
    request.on("data", (c: Buffer) => chunks.push(c));
    request.on("end", () => {
      const raw = Buffer.concat(chunks);
      if (raw.length > maxBody) {
        response.writeHead(400, { "content-type": "application/json" });
        response.end(JSON.stringify({ error: { code: 400, message: "Chunked request not supported." } }));
        return;
      }
      const text = request.headers["content-encoding"] === "gzip"
        ? gunzipSync(raw).toString("utf8")
        : raw.toString("utf8");
      const points = JSON.parse(text) as JsonPoint[];
      const cells = new Set(points.map((p) => `${p.metric} ${p.timestamp} ${JSON.stringify(p.tags)}`));
      if ([...open].some((other) => [...cells].some((c) => other.has(c)))) counts.cellOverlaps++;
      open.add(cells);
      counts.maxOpen = Math.max(counts.maxOpen, open.size);
      const answer = reply(points, n++, request);
      for (const a of arrivals.filter((a) => a.n <= n)) {
        arrivals.splice(arrivals.indexOf(a), 1);
        a.resolve();
      }
      response.on("close", () => open.delete(cells));
      const send = () => {
        open.delete(cells);
        // Not request.destroyed: a request read to its end is destroyed (autoDestroy) while its answer may still go.
        if (response.destroyed || response.socket?.destroyed !== false) return;
        requests.push({ url: request.url ?? "", headers: request.headers, size: raw.length, points });
        if (answer.status >= 200 && answer.status < 300) stored.push(...points);
        else if (answer.status === 400 && answer.body?.includes('"errors"')) {
          const refused = (JSON.parse(answer.body).errors as { datapoint: JsonPoint }[]).map((e) =>
            e.datapoint
          );
          stored.push(
            ...points.filter((p) => !refused.some((r) => r.metric === p.metric && r.tags.i === p.tags.i)),
          );
        }
        response.writeHead(answer.status, { "content-type": "application/json" });
        response.end(answer.body ?? "");
      };
      const later = () => answer.delayMs ? setTimeout(send, answer.delayMs) : send();
      if (answer.after) answer.after.then(later, later);
      else later();
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    stored,
    get abandoned() {
      return counts.abandoned;
    },
    get maxOpen() {
      return counts.maxOpen;
    },
    get cellOverlaps() {
      return counts.cellOverlaps;
    },
    received(k: number) {
      if (n >= k) return Promise.resolve();
      return new Promise((resolve) => arrivals.push({ n: k, resolve }));
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function point(i: number, ts = TS + i): JsonPoint {
  return { metric: "http.points", timestamp: ts, value: i, tags: { i: String(i), host: "h1" } };
}

function client(port: number, options: HttpTransportOptions = {}, more: Record<string, unknown> = {}) {
  return new Client(`127.0.0.1:${port}`, {
    transport: httpTransport({ retry: fast, ...options }),
    hostTag: "h1",
    ...more,
  });
}

/** The points in the order of their `i` tag: requests out side by side may be answered in any order. */
function inOrder(points: JsonPoint[]): JsonPoint[] {
  return [...points].sort((a, b) => Number(a.tags.i) - Number(b.tags.i));
}

function balanced(s: ClientStats) {
  assert.equal(s.accepted, s.sent + s.queued + s.dropped.total, JSON.stringify(s));
}

describe("httpTransport against a fake OpenTSDB", () => {
  for (const gzip of [true, false]) {
    it(`POSTs JSON points in bodies of at most 8192 bytes (gzip ${gzip ? "on" : "off"})`, async () => {
      const tsd = await startFakeTsd();
      try {
        const c = client(tsd.port, { gzip });
        const n = 3000;
        for (let i = 0; i < n; i++) c.send("http.points", i, { i }, TS + i);
        const stats = await c.close({ timeoutMs: 10_000 });
        assert.deepEqual(inOrder(tsd.stored), Array.from({ length: n }, (_, i) => point(i)));
        assert.equal(stats.sent, n);
        assert.equal(stats.dropped.total, 0);
        balanced(stats);
        assert.ok(tsd.requests.length > 1, "several requests");
        for (const r of tsd.requests) {
          assert.equal(r.url, "/api/put?details");
          assert.ok(r.size <= 8192, `body of ${r.size} bytes`);
          assert.equal(r.headers["content-length"], String(r.size));
          assert.equal(r.headers["transfer-encoding"], undefined);
          assert.equal(r.headers.expect, undefined);
          assert.equal(r.headers["content-type"], "application/json");
          assert.equal(r.headers["content-encoding"], gzip ? "gzip" : undefined);
          assert.equal(r.headers.authorization, undefined);
        }
        // Bodies are filled: all but the last use most of the limit.
        const sizes = tsd.requests.map((r) => r.size).slice(0, -1);
        assert.ok(Math.min(...sizes) > 8192 * 0.6, `sizes ${sizes.join(",")}`);
      } finally {
        await tsd.close();
      }
    });
  }

  it("a server limit below maxBodyBytes: the transport shrinks its bodies, nothing is lost", async () => {
    const tsd = await startFakeTsd(undefined, 8192);
    try {
      // One request at a time: the halvings are two refused requests, in order (in flight: below).
      const c = client(tsd.port, { gzip: false, maxBodyBytes: 32768, maxInFlight: 1 });
      const errors: ConnectError[] = [];
      c.addEventListener("error", (e) => errors.push((e as CustomEvent<ConnectError>).detail));
      const n = 2000;
      for (let i = 0; i < n; i++) c.send("http.points", i, { i }, TS + i);
      const stats = await c.close({ timeoutMs: 10_000 });
      assert.deepEqual(tsd.stored, Array.from({ length: n }, (_, i) => point(i)));
      assert.equal(stats.dropped.total, 0);
      assert.equal(stats.sent, n);
      // Each refused body is reported, and halving gets under the limit in two steps.
      assert.equal(errors.length, 2);
      assert.match(errors[0].message, /HTTP 400: .*Chunked request not supported/);
      assert.ok(tsd.requests.every((r) => r.size <= 8192));
    } finally {
      await tsd.close();
    }
  });

  it("VictoriaMetrics' answer to a too large body also shrinks the bodies", async () => {
    // gzip off: the JSON the server parsed is, byte for byte, the body on the wire.
    const tsd = await startFakeTsd((points) =>
      JSON.stringify(points).length > 4096
        ? {
          status: 400,
          body:
            "too big HTTP OpenTSDB request; mustn't exceed `-opentsdbhttp.maxInsertRequestSize=4096` bytes",
        }
        : { status: 204 }
    );
    try {
      const c = client(tsd.port, { gzip: false, maxInFlight: 1 });
      const n = 500;
      for (let i = 0; i < n; i++) c.send("http.points", i, { i }, TS + i);
      const stats = await c.close({ timeoutMs: 10_000 });
      assert.deepEqual(tsd.stored, Array.from({ length: n }, (_, i) => point(i)));
      assert.equal(stats.dropped.total, 0);
    } finally {
      await tsd.close();
    }
  });

  it("a refusal that merely mentions 'too large' is a refusal, not a body limit", async () => {
    const tsd = await startFakeTsd((points) => {
      const errors = points.filter((p) => Number(p.value) < 0).map((p) => ({
        datapoint: p,
        error: "Value too large: request entity too large",
      }));
      return errors.length === 0 ? { status: 204 } : {
        status: 400,
        body: JSON.stringify({ success: points.length - errors.length, failed: errors.length, errors }),
      };
    });
    try {
      const c = client(tsd.port, { gzip: false });
      const n = 1000;
      for (let i = 0; i < n; i++) c.send("http.points", i === 0 ? -1 : i, { i }, TS + i);
      const stats = await c.close({ timeoutMs: 10_000 });
      assert.equal(stats.dropped.rejected, 1);
      assert.equal(stats.sent, n - 1);
      // Stored once each: nothing was resent as if the body had been too large.
      assert.deepEqual(inOrder(tsd.stored), Array.from({ length: n - 1 }, (_, i) => point(i + 1)));
      // All but the smallest (the rest at the end), in whatever order they were answered.
      const sizes = tsd.requests.map((r) => r.size).sort((a, b) => b - a).slice(0, -1);
      assert.ok(sizes.every((size) => size > 4096), `the body limit stayed: ${sizes.join(",")}`);
    } finally {
      await tsd.close();
    }
  });

  it("a lowered body limit grows back after a run of successful requests", async () => {
    // One 413 (a proxy, a server briefly configured lower), then bodies of 8192 bytes pass again.
    const tsd = await startFakeTsd((_p, n) =>
      n === 0
        ? { status: 413, body: "<html><body>413 Request Entity Too Large</body></html>" }
        : { status: 204 }
    );
    try {
      const c = client(tsd.port, { gzip: false, maxInFlight: 1 });
      const errors: ConnectError[] = [];
      c.addEventListener("error", (e) => errors.push((e as CustomEvent<ConnectError>).detail));
      const n = 5000;
      for (let i = 0; i < n; i++) c.send("http.points", i, { i }, TS + i);
      const stats = await c.close({ timeoutMs: 20_000 });
      assert.equal(stats.sent, n);
      assert.deepEqual(tsd.stored, Array.from({ length: n }, (_, i) => point(i)));
      assert.equal(errors.length, 1, "the 413 is reported once");
      const sizes = tsd.requests.map((r) => r.size);
      assert.ok(sizes[1] <= 4096, `halved after the 413: ${sizes[1]}`);
      assert.ok(sizes.every((size) => size <= 8192));
      assert.ok(sizes.slice(2, -1).some((size) => size > 4096 + 1024), `grew back: ${sizes.join(",")}`);
    } finally {
      await tsd.close();
    }
  });

  it("a server whose limit is below one point: the others pass, that point is refused", async () => {
    const tsd = await startFakeTsd(undefined, 400);
    try {
      const c = client(tsd.port, { gzip: false, maxInFlight: 1 });
      const drops: DropDetail[] = [];
      c.addEventListener("drop", (e) => drops.push((e as CustomEvent<DropDetail>).detail));
      for (let i = 0; i < 30; i++) c.send("http.points", i, { i }, TS + i);
      c.send("http.points", 99, { big: "x".repeat(500) }, TS);
      const stats = await c.close({ timeoutMs: 10_000 });
      assert.deepEqual(tsd.stored, Array.from({ length: 30 }, (_, i) => point(i)));
      assert.equal(stats.sent, 30);
      assert.equal(stats.dropped.rejected, 1);
      const [rejection] = drops.flatMap((d) => d.rejections ?? []);
      assert.equal(rejection.line, `put http.points ${TS} 99 big=${"x".repeat(500)} host=h1`);
      assert.match(rejection.reason, /body limit/);
    } finally {
      await tsd.close();
    }
  });

  it("400 with details: refused points are dropped, counted and reported, never resent", async () => {
    // Like OpenTSDB: refuse negative values, echo the point with its value as a string.
    const tsd = await startFakeTsd((points) => {
      // The echo lists tags in another order than sent.
      const errors = points.filter((p) => Number(p.value) < 0).map((p) => ({
        datapoint: {
          ...p,
          value: String(p.value),
          tags: Object.fromEntries(Object.entries(p.tags).reverse()),
        },
        error: "Unable to store the value",
      }));
      if (errors.length === 0) return { status: 204 };
      return {
        status: 400,
        body: JSON.stringify({ success: points.length - errors.length, failed: errors.length, errors }),
      };
    });
    try {
      const c = client(tsd.port);
      const drops: DropDetail[] = [];
      c.addEventListener("drop", (e) => drops.push((e as CustomEvent<DropDetail>).detail));
      const values = [1, -2, 3, -4, 5, 6, -7, 8];
      // Tag keys where one is a prefix of the other sort differently as "k=v" words.
      values.forEach((v, i) => c.send("http.points", v, { i, "i.b": "x" }, TS + i));
      const stats = await c.close({ timeoutMs: 5000 });
      assert.equal(stats.dropped.rejected, 3);
      assert.equal(stats.sent, 5);
      assert.equal(stats.dropped.total, 3);
      balanced(stats);
      assert.equal(tsd.requests.length, 1, "nothing was resent");
      const rejections = drops.flatMap((d) => d.rejections ?? []);
      assert.deepEqual(drops.map((d) => d.reason), ["rejected"]);
      assert.deepEqual(
        rejections,
        [1, 3, 6].map((i): Rejection => ({
          line: `put http.points ${TS + i} ${values[i]} i=${i} i.b=x host=h1`,
          reason: "Unable to store the value",
        })),
      );
      assert.deepEqual(tsd.stored.map((p) => p.value), [1, 3, 5, 6, 8]);
    } finally {
      await tsd.close();
    }
  });

  it("two points of one cell in one body, one refused: the rejection names that one", async () => {
    // The server echoes the refused point; metric, timestamp and tags match both, the value one.
    const tsd = await startFakeTsd((points) => {
      const refused = points.filter((p) => p.value === 2);
      return refused.length === 0 ? { status: 204 } : {
        status: 400,
        body: JSON.stringify({
          success: points.length - 1,
          failed: 1,
          errors: refused.map((p) => ({ datapoint: { ...p, value: String(p.value) }, error: "refused" })),
        }),
      };
    });
    try {
      const c = client(tsd.port, { gzip: false }, { dedup: false });
      const drops: DropDetail[] = [];
      c.addEventListener("drop", (e) => drops.push((e as CustomEvent<DropDetail>).detail));
      for (const value of [1, 2, 3]) c.send("http.points", value, { i: 0 }, TS);
      const stats = await c.close({ timeoutMs: 10_000 });
      assert.equal(stats.dropped.rejected, 1);
      assert.deepEqual(drops.flatMap((d) => d.rejections ?? []).map((r) => r.line), [
        `put http.points ${TS} 2 i=0 host=h1`,
      ]);
    } finally {
      await tsd.close();
    }
  });

  it("details: false still counts exactly: the server stored the good points of a refused body", async () => {
    // Like OpenTSDB: each point is stored or refused on its own; without `?details` a body
    // with a refused point gets a generic 400 that names none of them.
    const stored: JsonPoint[] = [];
    const tsd = await startFakeTsd((points, _n, request) => {
      const bad = points.filter((p) => Number(p.value) < 0);
      stored.push(...points.filter((p) => Number(p.value) >= 0));
      if (bad.length === 0) return { status: 204 };
      if (!new URL(request.url ?? "/", "http://x").searchParams.has("details")) {
        return {
          status: 400,
          body: JSON.stringify({
            error: {
              code: 400,
              message: "One or more data points had errors",
              details: 'Please see the TSD logs or append "details" to the put request',
            },
          }),
        };
      }
      const errors = bad.map((p) => ({ datapoint: p, error: "Unable to store the value" }));
      return {
        status: 400,
        body: JSON.stringify({ success: points.length - bad.length, failed: bad.length, errors }),
      };
    });
    try {
      const c = client(tsd.port, { details: false });
      const values = [1, -2, 3, 4, -5];
      values.forEach((v, i) => c.send("http.points", v, { i }, TS + i));
      const stats = await c.close({ timeoutMs: 5000 });
      assert.deepEqual(stored.map((p) => p.value), [1, 3, 4]);
      assert.equal(stats.dropped.rejected, 2, "only the refused points count as dropped");
      assert.equal(stats.sent, 3);
      balanced(stats);
    } finally {
      await tsd.close();
    }
  });

  it("400 with OpenTSDB's error object refuses the body; a 400 of another kind is retried", async () => {
    const tsd = await startFakeTsd((_points, n) =>
      n === 0
        ? { status: 400, body: "unsupported path requested" }
        : n === 1
        ? { status: 400, body: JSON.stringify({ error: { code: 400, message: "No datapoints found" } }) }
        : { status: 204 }
    );
    try {
      const c = client(tsd.port);
      const errors: ConnectError[] = [];
      c.addEventListener("error", (e) => errors.push((e as CustomEvent<ConnectError>).detail));
      c.send("http.points", 1, { i: 1 }, TS);
      await c.flush({ timeoutMs: 5000 });
      c.send("http.points", 2, { i: 2 }, TS);
      const stats = await c.close({ timeoutMs: 5000 });
      assert.equal(errors.length, 1);
      assert.ok(errors[0].cause instanceof HttpError);
      assert.equal((errors[0].cause as HttpError).status, 400);
      assert.equal(stats.dropped.rejected, 1);
      assert.equal(stats.sent, 1);
      assert.deepEqual(tsd.stored.map((p) => p.value), [2]);
    } finally {
      await tsd.close();
    }
  });

  it("503 then 200: the body is retried with backoff, in order, nothing lost", async () => {
    const tsd = await startFakeTsd((
      _p,
      n,
    ) => (n < 3 ? { status: 503, body: "overloaded" } : { status: 204 }));
    try {
      const c = client(tsd.port, { gzip: false, maxInFlight: 1 });
      const errors: ConnectError[] = [];
      c.addEventListener("error", (e) => errors.push((e as CustomEvent<ConnectError>).detail));
      const n = 500;
      for (let i = 0; i < n; i++) c.send("http.points", i, { i }, TS + i);
      const stats = await c.close({ timeoutMs: 10_000 });
      assert.deepEqual(tsd.stored, Array.from({ length: n }, (_, i) => point(i)));
      assert.equal(errors.length, 3);
      for (const e of errors) {
        assert.equal(e.code, "CONNECT_FAILED");
        assert.equal((e.cause as HttpError).status, 503);
        assert.match(e.message, /HTTP 503: overloaded/);
      }
      assert.equal(stats.connectFailures, 3);
      assert.equal(stats.sent, n);
      assert.equal(stats.dropped.total, 0);
      // The failed body was sent again whole: the first three requests carry the same points.
      assert.deepEqual(tsd.requests[1].points, tsd.requests[0].points);
    } finally {
      await tsd.close();
    }
  });

  it("a server slower than requestTimeoutMs: the request is abandoned and sent again", async () => {
    const tsd = await startFakeTsd((_p, n) => (n === 0 ? { status: 204, delayMs: 2000 } : { status: 204 }));
    try {
      const c = client(tsd.port, { requestTimeoutMs: 200 });
      const errors: ConnectError[] = [];
      c.addEventListener("error", (e) => errors.push((e as CustomEvent<ConnectError>).detail));
      for (let i = 0; i < 10; i++) c.send("http.points", i, { i }, TS + i);
      const stats = await c.close({ timeoutMs: HANG_GUARD_MS });
      // The client hung up on the slow request (the server saw it go before answering) and
      // sent the body again: stored once, from the second request.
      await waitFor(() => tsd.abandoned === 1, HANG_GUARD_MS, "the server to see the request abandoned");
      assert.equal(errors.length, 1);
      assert.match(errors[0].message, /no answer within 200 ms/);
      assert.deepEqual(tsd.stored, Array.from({ length: 10 }, (_, i) => point(i)));
      assert.equal(stats.sent, 10);
    } finally {
      await tsd.close();
    }
  });

  it("a request that times out is really aborted: the server sees its connection closed", async () => {
    // A server that reads the request and never answers.
    const ends: ("answered" | "aborted")[] = [];
    const sockets = new Set<import("node:net").Socket>();
    const server = http.createServer((request, response) => {
      request.resume();
      response.on("close", () => ends.push(response.writableEnded ? "answered" : "aborted"));
    });
    server.on("connection", (socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    try {
      const c = client((server.address() as AddressInfo).port, { requestTimeoutMs: 100 });
      const errors: ConnectError[] = [];
      c.addEventListener("error", (e) => errors.push((e as CustomEvent<ConnectError>).detail));
      c.send("http.points", 1, { i: 1 }, TS);
      await waitFor(() => ends.length >= 1, 10_000, "the server to see the request end");
      assert.equal(ends[0], "aborted", "the client closed the request's connection");
      assert.match(errors[0].message, /no answer within 100 ms/);
      const stats = await c.close({ timeoutMs: 50 });
      // Never answered, so never counted as sent; kept until close() gave up.
      assert.equal(stats.sent, 0);
      assert.equal(stats.dropped.closed, 1);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("nobody listening: each failed request is reported; close() keeps its deadline and counts the rest", async () => {
    const port = await closedPort();
    const c = client(port, {}, { reconnect: fast });
    const errors: ConnectError[] = [];
    c.addEventListener("error", (e) => errors.push((e as CustomEvent<ConnectError>).detail));
    for (let i = 0; i < 5; i++) c.send("http.points", i, { i }, TS + i);
    await waitFor(() => errors.length >= 2, HANG_GUARD_MS, "two failed requests");
    // Refused for ever, close() returns only through its deadline (the guard catches a hang).
    const stats = await settles(c.close({ timeoutMs: 300 }), "close({ timeoutMs: 300 })");
    assert.equal(stats.sent, 0);
    assert.equal(stats.dropped.closed, 5);
    balanced(stats);
    assert.match(errors[0].message, new RegExp(`POST http://127.0.0.1:${port}/api/put\\?details failed`));
  });

  it("Basic auth and bearer token headers; a 401 is reported and retried, not dropped", async () => {
    // RFC 7617: the credentials are UTF-8 before base64.
    const good = "Basic " + Buffer.from("üser:pa:ss", "utf8").toString("base64");
    const tsd = await startFakeTsd((_p, _n, request) =>
      request.headers.authorization === good || request.headers.authorization === "Bearer t0k.en"
        ? { status: 204 }
        : { status: 401, body: "Unauthorized" }
    );
    try {
      const ok = client(tsd.port, { basicAuth: { username: "üser", password: "pa:ss" } });
      ok.send("http.points", 0, { i: 0 }, TS);
      assert.equal((await ok.close({ timeoutMs: 5000 })).sent, 1);
      const bearer = client(tsd.port, { bearerToken: "t0k.en" });
      bearer.send("http.points", 1, { i: 1 }, TS + 1);
      assert.equal((await bearer.close({ timeoutMs: 5000 })).sent, 1);
      assert.equal(tsd.requests[0].headers.authorization, good);
      assert.equal(tsd.requests[1].headers.authorization, "Bearer t0k.en");

      const wrong = client(tsd.port, { basicAuth: { username: "üser", password: "nope" } });
      const errors: ConnectError[] = [];
      wrong.addEventListener("error", (e) => errors.push((e as CustomEvent<ConnectError>).detail));
      wrong.send("http.points", 2, { i: 2 }, TS + 2);
      await waitFor(() => errors.length >= 2, HANG_GUARD_MS, "two refused requests");
      assert.equal(wrong.stats().queued, 1, "the point is kept while the credentials are refused");
      const stats = await wrong.close({ timeoutMs: 100 });
      assert.equal((errors[0].cause as HttpError).status, 401);
      assert.equal(stats.dropped.closed, 1);
      assert.equal(stats.dropped.rejected, 0);
      assert.deepEqual(tsd.stored, [point(0), point(1)]);
    } finally {
      await tsd.close();
    }
  });

  it("bad options are OptionsErrors at the call site", () => {
    assert.throws(() => httpTransport({ maxBodyBytes: 1000 }), OptionsError);
    for (const gzipLevel of [0, 10, 1.5]) assert.throws(() => httpTransport({ gzipLevel }), OptionsError);
    assert.throws(() => httpTransport({ requestTimeoutMs: 0 }), OptionsError);
    // Runtimes fire a timer above 2^31-1 ms at once: every request would time out.
    assert.throws(() => httpTransport({ requestTimeoutMs: 2 ** 31 }), OptionsError);
    assert.ok(httpTransport({ requestTimeoutMs: 2 ** 31 - 1 }));
    assert.throws(() => httpTransport({ path: "api/put" }), OptionsError);
    assert.throws(() => httpTransport({ path: "/api/put?details" }), OptionsError);
    assert.throws(
      () => httpTransport({ basicAuth: { username: "a", password: "b" }, bearerToken: "c" }),
      OptionsError,
    );
    assert.throws(() => httpTransport({ basicAuth: { username: "a:b", password: "c" } }), OptionsError);
    assert.throws(() => httpTransport({ bearerToken: "two words" }), OptionsError);
    assert.throws(() => httpTransport({ scheme: "ftp" as "http" }), OptionsError);
    assert.throws(() => new Client("h", { transport: httpTransport() }), OptionsError, "no hostname");
  });
});

describe("httpTransport with requests in flight", () => {
  const cellOf = (p: JsonPoint) => `${p.metric} ${p.timestamp} ${p.tags.i}`;
  const byCell = (a: JsonPoint, b: JsonPoint) => cellOf(a) < cellOf(b) ? -1 : cellOf(a) > cellOf(b) ? 1 : 0;
  /** Settles when `promise` does, or after `ms`: a test whose mechanism fails then fails its assertions. */
  const orFallback = (promise: Promise<void>, ms = 5000) =>
    Promise.race([promise, new Promise<void>((r) => setTimeout(r, ms).unref?.())]);

  it("requests go out side by side, never more than maxInFlight; every point is stored once", async () => {
    // The first answer waits until three requests are out: that proves three go out at once.
    const tsd: FakeTsd = await startFakeTsd((_p, n) =>
      n === 0 ? { status: 204, after: orFallback(tsd.received(3)) } : { status: 204, delayMs: (n % 3) * 5 }
    );
    try {
      const c = client(tsd.port, { gzip: false, maxInFlight: 3 });
      const n = 3000;
      for (let i = 0; i < n; i++) c.send("http.points", i, { i }, TS + i);
      const stats = await c.close({ timeoutMs: 20_000 });
      assert.equal(tsd.maxOpen, 3);
      assert.deepEqual(
        [...tsd.stored].sort(byCell),
        Array.from({ length: n }, (_, i) => point(i)).sort(byCell),
      );
      assert.equal(stats.sent, n);
      assert.equal(stats.dropped.total, 0);
      balanced(stats);
    } finally {
      await tsd.close();
    }
  });

  it("a cell is never in two requests at once, so the value sent last is stored last", async () => {
    // 50 cells, so that every body shares cells with the one before. The first answer waits
    // for a second request (1 s at most): one that went out beside it would be answered first.
    const tsd: FakeTsd = await startFakeTsd((_p, n) =>
      n === 0 ? { status: 204, after: orFallback(tsd.received(2), 1000) } : { status: 204 }
    );
    try {
      const c = client(tsd.port, { gzip: false, maxInFlight: 4 }, { dedup: false });
      const cells = 50;
      const rounds = 20;
      for (let r = 0; r < rounds; r++) {
        for (let i = 0; i < cells; i++) c.send("http.points", r, { i }, TS + i);
      }
      const stats = await c.close({ timeoutMs: 20_000 });
      assert.equal(stats.sent, cells * rounds);
      assert.equal(tsd.cellOverlaps, 0);
      const values = new Map<string, number[]>();
      for (const p of tsd.stored) values.set(p.tags.i, [...(values.get(p.tags.i) ?? []), Number(p.value)]);
      assert.equal(values.size, cells);
      for (const [cell, v] of values) {
        assert.deepEqual(
          v,
          Array.from({ length: rounds }, (_, r) => r),
          `cell ${cell}`,
        );
      }
    } finally {
      await tsd.close();
    }
  });

  it("bodies refused as too large while others are out: the limit halves once per refusal of its own size", async () => {
    const tsd = await startFakeTsd(undefined, 8192);
    try {
      const c = client(tsd.port, { gzip: false, maxBodyBytes: 32768, maxInFlight: 4 });
      const errors: ConnectError[] = [];
      c.addEventListener("error", (e) => errors.push((e as CustomEvent<ConnectError>).detail));
      const n = 4000;
      for (let i = 0; i < n; i++) c.send("http.points", i, { i }, TS + i);
      const stats = await c.close({ timeoutMs: 20_000 });
      assert.deepEqual(
        [...tsd.stored].sort(byCell),
        Array.from({ length: n }, (_, i) => point(i)).sort(byCell),
      );
      assert.equal(stats.sent, n);
      assert.equal(stats.dropped.total, 0);
      // 32768 → 16384 → 8192: at most four requests out are refused at each size.
      assert.ok(errors.length >= 2 && errors.length <= 8, `${errors.length} refusals`);
      for (const e of errors) assert.match(e.message, /Chunked request not supported/);
      assert.ok(tsd.requests.every((r) => r.size <= 8192));
      // Halved to the server's limit, not below it: every body but the last fills most of it.
      const sizes = tsd.requests.map((r) => r.size).sort((a, b) => b - a);
      assert.ok(sizes.slice(0, -1).every((size) => size > 4096), `bodies: ${sizes.join(",")}`);
    } finally {
      await tsd.close();
    }
  });

  it("503 to every request out: each failure is reported, the same bodies go again, nothing is lost", async () => {
    // Four bodies out at once (the first answer waits for the fourth), all refused with 503.
    const tsd: FakeTsd = await startFakeTsd((_p, n) =>
      n === 0
        ? { status: 503, body: "overloaded", after: orFallback(tsd.received(4)) }
        : n < 4
        ? { status: 503, body: "overloaded" }
        : { status: 204 }
    );
    try {
      const c = client(tsd.port, { gzip: false, maxInFlight: 4 });
      const n = 2000;
      for (let i = 0; i < n; i++) c.send("http.points", i, { i }, TS + i);
      const stats = await c.close({ timeoutMs: 20_000 });
      assert.equal(stats.connectFailures, 4);
      assert.equal(stats.sent, n);
      assert.equal(stats.dropped.total, 0);
      assert.deepEqual(
        [...tsd.stored].sort(byCell),
        Array.from({ length: n }, (_, i) => point(i)).sort(byCell),
      );
    } finally {
      await tsd.close();
    }
  });

  it("after a failed request no new one goes out until a request passes", async () => {
    const tsd = await startFakeTsd((_p, n) =>
      n === 0 ? { status: 503, body: "overloaded" } : { status: 204 }
    );
    try {
      // One body first; the points sent when its failure is reported find free slots, but must
      // wait: a server that failed one request would most likely fail them all.
      const c = client(tsd.port, { gzip: false, maxInFlight: 4, retry: { initialMs: 100, maxMs: 100 } });
      const n = 2000;
      const failed = new Promise<void>((resolve) =>
        c.addEventListener("error", () => {
          for (let i = 50; i < n; i++) c.send("http.points", i, { i }, TS + i);
          resolve();
        }, { once: true })
      );
      for (let i = 0; i < 50; i++) c.send("http.points", i, { i }, TS + i);
      await settles(failed, "the 503 is reported");
      const stats = await c.close({ timeoutMs: 20_000 });
      assert.equal(stats.connectFailures, 1);
      const first = tsd.requests[0].points.map(cellOf);
      assert.deepEqual(first, Array.from({ length: 50 }, (_, i) => cellOf(point(i))));
      assert.deepEqual(tsd.requests[1].points.map(cellOf), first, "the failed body went again first");
      assert.deepEqual(
        [...tsd.stored].sort(byCell),
        Array.from({ length: n }, (_, i) => point(i)).sort(byCell),
      );
    } finally {
      await tsd.close();
    }
  });

  it("takes lines for every request out and 256 KiB more, then asks the writer to wait", async () => {
    // A server that never answers: the writer writes until write() says no, then waits for ready().
    const fetches: RequestInit[] = [];
    const never = (_url: string, init: RequestInit) => {
      fetches.push(init);
      return new Promise<Response>(() => {});
    };
    for (const options of [{}, { gzip: false, maxInFlight: 1 }, { maxInFlight: 8 }]) {
      fetches.length = 0;
      const connection = await httpTransport({ fetch: never, ...options }).connect({
        host: "127.0.0.1",
        port: 4242,
        signal: new AbortController().signal,
        onLine: () => {},
      });
      // 100 lines of distinct cells a write, about 4 KiB.
      let i = 0;
      const lines = () =>
        new TextEncoder().encode(
          Array.from({ length: 100 }, () => `put http.points ${TS} 1 host=h1 i=${i++}\n`).join(""),
        );
      const max = options.maxInFlight ?? 4;
      let taken = 0;
      for (let rounds = 0; rounds < 1000; rounds++) {
        let chunk = lines();
        for (; connection.write(chunk, () => {}); chunk = lines()) taken += chunk.length;
        taken += chunk.length;
        // With every request out, nothing more is taken: ready() would wait for an answer.
        if (fetches.length === max) break;
        await settles(connection.ready(), "ready() while fewer requests are out");
      }
      // 256 KiB wait to be cut into the next body; each request out took at most that much.
      assert.equal(fetches.length, max, "requests out");
      assert.ok(taken >= 256 * 1024, `${taken} bytes taken`);
      assert.ok(taken < (max + 1) * (256 * 1024 + 4096), `${taken} bytes taken`);
      connection.destroy();
    }
  });

  it("gzipLevel: a body at level 9 holds more points than at level 1 (node:zlib)", async () => {
    const requests: number[] = [];
    for (const gzipLevel of [1, 9]) {
      const tsd = await startFakeTsd();
      try {
        const c = client(tsd.port, { gzipLevel, maxInFlight: 1 });
        for (let i = 0; i < 20_000; i++) {
          c.send("http.points", i % 977, { i: i % 1000 }, TS + Math.floor(i / 1000));
        }
        const stats = await c.close({ timeoutMs: 20_000 });
        assert.equal(stats.sent, 20_000);
        requests.push(tsd.requests.length);
      } finally {
        await tsd.close();
      }
    }
    assert.ok(requests[1] < requests[0], `requests at level 1 and 9: ${requests.join(", ")}`);
  });

  it("maxInFlight outside 1–64 is an OptionsError", () => {
    for (const bad of [0, 65, 1.5, Number.NaN]) {
      assert.throws(() => httpTransport({ maxInFlight: bad }), OptionsError);
    }
  });
});

describe("httpTransport against VictoriaMetrics' /api/put", () => {
  let tsdb: Tsdb;
  before(async () => {
    tsdb = await startTsdb();
  });
  after(async () => {
    await tsdb?.dispose();
  });

  for (const gzip of [true, false]) {
    it(`every point arrives exactly (gzip ${gzip ? "on" : "off"})`, async () => {
      const metric = `potsdb.http.exact.${gzip ? "gz" : "plain"}`;
      const now = Math.floor(Date.now() / 1000);
      const c = new Client(`127.0.0.1:${tsdb.opentsdbHttpPort}`, {
        transport: httpTransport({ gzip }),
        hostTag: "h1",
      });
      const n = 3000;
      const series = 10;
      for (let i = 0; i < n; i++) {
        c.send(metric, i % 2 ? i + 0.25 : 0 - i, { s: i % series }, now - n + i);
      }
      const stats = await c.close({ timeoutMs: 20_000 });
      assert.equal(stats.sent, n);
      assert.equal(stats.dropped.total, 0);
      const exported = await tsdb.exportSeries(`{__name__="${metric}"}`);
      assert.equal(exported.length, series);
      for (const s of exported) {
        assert.equal(s.metric.host, "h1");
        const k = Number(s.metric.s);
        const want = Array.from({ length: n / series }, (_, j) => j * series + k);
        assert.deepEqual(s.timestamps, want.map((i) => (now - n + i) * 1000));
        assert.deepEqual(s.values, want.map((i) => (i % 2 ? i + 0.25 : 0 - i)));
      }
    });
  }

  it("millisecond timestamps arrive as sent", async () => {
    const metric = "potsdb.http.ms";
    const base = Date.now() - 60_000;
    const c = new Client(`127.0.0.1:${tsdb.opentsdbHttpPort}`, {
      transport: httpTransport(),
      hostTag: "h1",
      milliseconds: true,
    });
    for (let i = 0; i < 5; i++) c.send(metric, i, { a: "b" }, new Date(base + i * 7));
    assert.equal((await c.close({ timeoutMs: 10_000 })).sent, 5);
    const [s] = await tsdb.exportSeries(`{__name__="${metric}"}`);
    assert.deepEqual(s.timestamps, [0, 1, 2, 3, 4].map((i) => base + i * 7));
  });
});

describe("httpTransport and VictoriaMetrics' -httpAuth", () => {
  // In VictoriaMetrics 1.79 -httpAuth.* guards the main HTTP port only, not the
  // OpenTSDB HTTP listener (which stores without credentials). The main port
  // is the real server here that answers wrong credentials with 401.
  let tsdb: Tsdb;
  before(async () => {
    tsdb = await startTsdb({ flags: ["-httpAuth.username=u", "-httpAuth.password=p"] });
  });
  after(async () => {
    await tsdb?.dispose();
  });

  it("wrong credentials are reported (401) and the points kept, not silently dropped", async () => {
    const c = new Client(`127.0.0.1:${tsdb.httpPort}`, {
      transport: httpTransport({ basicAuth: { username: "u", password: "wrong" }, retry: fast }),
      hostTag: "h1",
    });
    const errors: ConnectError[] = [];
    c.addEventListener("error", (e) => errors.push((e as CustomEvent<ConnectError>).detail));
    c.send("potsdb.http.auth", 1, { a: "b" });
    await waitFor(() => errors.length >= 2, HANG_GUARD_MS, "two refused requests");
    assert.equal((errors[0].cause as HttpError).status, 401);
    assert.equal(c.stats().queued, 1);
    const stats = await c.close({ timeoutMs: 100 });
    assert.equal(stats.sent, 0);
    assert.equal(stats.dropped.closed, 1);
    assert.equal(stats.dropped.rejected, 0);
  });

  it("the OpenTSDB HTTP listener stores points sent with Basic credentials", async () => {
    const metric = "potsdb.http.authed";
    const c = new Client(`127.0.0.1:${tsdb.opentsdbHttpPort}`, {
      transport: httpTransport({ basicAuth: { username: "u", password: "p" } }),
      hostTag: "h1",
    });
    const now = Math.floor(Date.now() / 1000);
    c.send(metric, 42, { a: "b" }, now);
    assert.equal((await c.close({ timeoutMs: 10_000 })).sent, 1);
    const [s] = await tsdb.exportSeries(`{__name__="${metric}"}`);
    assert.deepEqual(s.values, [42]);
  });
});
