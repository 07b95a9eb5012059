// socketsTransport: first against a connect() built on web streams (every
// runtime), then on real workerd through miniflare, where a bundled Worker
// sends to an in-process TCP server on 127.0.0.1.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client, type ConnectError, OptionsError, type ServerError } from "../mod.ts";
import {
  type ConnectFunction,
  type SocketAddress,
  type SocketOptions,
  socketsTransport,
  type WebSocketLike,
} from "../src/transport/sockets.ts";
import { HANG_GUARD_MS, settles, startServer, waitFor } from "./helpers/servers.ts";

const TS = 1700000000;
const decoder = new TextDecoder();

/** A socket whose two sides are web streams the test drives. */
class FakeSocket implements WebSocketLike {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  readonly opened: Promise<unknown>;
  readonly closed: Promise<unknown>;
  received = "";
  writes = 0;
  /** `writer.desiredSize` at each `write()` call made by the adapter. */
  desiredSizes: (number | null)[] = [];
  closeCalls = 0;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #resolveClosed!: () => void;
  #failWrites: Error | undefined;

  readonly address: SocketAddress;
  readonly options: SocketOptions | undefined;

  constructor(
    address: SocketAddress,
    options: SocketOptions | undefined,
    opened: Promise<unknown>,
    sinkDelayMs: number,
  ) {
    this.address = address;
    this.options = options;
    this.opened = opened;
    this.closed = new Promise<void>((resolve) => this.#resolveClosed = resolve);
    this.readable = new ReadableStream<Uint8Array>({ start: (c) => void (this.#controller = c) });
    const writable = new WritableStream<Uint8Array>({
      write: async (chunk) => {
        if (this.#failWrites) throw this.#failWrites;
        if (sinkDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, sinkDelayMs));
        const text = decoder.decode(chunk);
        if (text === "version\n") return; // the client's probe: no data
        this.writes++;
        this.received += text;
      },
    }, new CountQueuingStrategy({ highWaterMark: 1 }));
    const getWriter = writable.getWriter.bind(writable);
    // Record the queue's room at each write: the adapter must wait for it.
    writable.getWriter = () => {
      const writer = getWriter();
      const write = writer.write.bind(writer);
      writer.write = (chunk?: Uint8Array) => {
        this.desiredSizes.push(writer.desiredSize);
        return write(chunk);
      };
      return writer;
    };
    this.writable = writable;
  }

  /** The server sends `text`. */
  reply(text: string): void {
    this.#controller.enqueue(new TextEncoder().encode(text));
  }

  /** The server closes its side. */
  end(): void {
    try {
      this.#controller.close();
    } catch {
      // already closed
    }
    this.#resolveClosed();
  }

  /** Writes fail from now on, and the readable side errors (a reset). */
  reset(error: Error): void {
    this.#failWrites = error;
    try {
      this.#controller.error(error);
    } catch {
      // already closed
    }
    this.#resolveClosed();
  }

  close(): Promise<void> {
    this.closeCalls++;
    this.end();
    return Promise.resolve();
  }
}

interface FakeNetwork {
  connect: ConnectFunction;
  sockets: FakeSocket[];
}

/**
 * A connect() whose sockets open at once, unless `opening` says otherwise for
 * the n-th call: "fail" rejects `opened`, "never" leaves it pending.
 */
function fakeNetwork(
  options: { opening?: (n: number) => "ok" | "fail" | "never"; sinkDelayMs?: number } = {},
): FakeNetwork {
  const sockets: FakeSocket[] = [];
  const connect: ConnectFunction = (address, socketOptions) => {
    const how = options.opening?.(sockets.length) ?? "ok";
    const opened = how === "ok"
      ? Promise.resolve({})
      : how === "fail"
      ? Promise.reject(new Error("connection refused"))
      : new Promise(() => {});
    opened.catch(() => {});
    const socket = new FakeSocket(address, socketOptions, opened, options.sinkDelayMs ?? 0);
    sockets.push(socket);
    return socket;
  };
  return { connect, sockets };
}

function expectedLines(n: number, host = "h1", metric = "edge.points"): string {
  let text = "";
  for (let i = 0; i < n; i++) text += `put ${metric} ${TS + i} ${i} i=${i} host=${host}\n`;
  return text;
}

describe("socketsTransport over a web-streams connect()", () => {
  it("writes the exact bytes, reads server lines, closes the socket", async () => {
    const net = fakeNetwork();
    const client = new Client("tsd.example", { transport: socketsTransport(net.connect), hostTag: "h1" });
    const errors: ServerError[] = [];
    client.addEventListener("server-error", (e) => errors.push((e as CustomEvent<ServerError>).detail));
    for (let i = 0; i < 3; i++) client.send("edge.points", i, { i }, TS + i);
    await client.flush({ timeoutMs: HANG_GUARD_MS });
    const socket = net.sockets[0];
    assert.deepEqual(socket.address, { hostname: "tsd.example", port: 4242 });
    assert.equal(socket.options?.secureTransport, "off");
    socket.reply("put: illegal argument: bad\r\nput: second");
    socket.reply(" half\n");
    await waitFor(() => errors.length === 2, HANG_GUARD_MS, "two server lines");
    assert.deepEqual(errors.map((e) => e.line), ["put: illegal argument: bad", "put: second half"]);
    const stats = await client.close({ timeoutMs: HANG_GUARD_MS });
    assert.equal(socket.received, expectedLines(3));
    assert.equal(stats.sent, 3);
    assert.equal(stats.serverErrors, 2);
    assert.equal(socket.closeCalls, 1);
    assert.equal(net.sockets.length, 1);
  });

  it("waits for the writable's room before each write and keeps order", async () => {
    const net = fakeNetwork({ sinkDelayMs: 1 });
    const client = new Client("h", {
      transport: socketsTransport(net.connect),
      hostTag: "h1",
      batchBytes: 1024,
    });
    const n = 2000;
    for (let i = 0; i < n; i++) client.send("edge.points", i, { i }, TS + i);
    const stats = await client.close({ timeoutMs: HANG_GUARD_MS });
    const socket = net.sockets[0];
    assert.equal(socket.received, expectedLines(n));
    assert.equal(stats.sent, n);
    assert.ok(socket.writes > 50, `small batches make many writes, got ${socket.writes}`);
    assert.ok(
      socket.desiredSizes.every((size) => size !== null && size > 0),
      `a write went into a full queue: ${socket.desiredSizes.filter((s) => !(s! > 0)).length} times`,
    );
  });

  it("a failed open is reported and retried; the points arrive on the next socket", async () => {
    const net = fakeNetwork({ opening: (n) => (n < 2 ? "fail" : "ok") });
    const client = new Client("h", {
      transport: socketsTransport(net.connect),
      hostTag: "h1",
      reconnect: { initialMs: 5, maxMs: 20 },
    });
    const failures: ConnectError[] = [];
    client.addEventListener("error", (e) => failures.push((e as CustomEvent<ConnectError>).detail));
    for (let i = 0; i < 5; i++) client.send("edge.points", i, { i }, TS + i);
    await client.flush({ timeoutMs: HANG_GUARD_MS });
    const stats = await client.close({ timeoutMs: HANG_GUARD_MS });
    assert.equal(failures.length, 2);
    assert.equal(failures[0].code, "CONNECT_FAILED");
    assert.match(failures[0].message, /connection refused/);
    assert.equal(stats.connectFailures, 2);
    assert.equal(net.sockets[2].received, expectedLines(5));
    assert.equal(stats.sent, 5);
  });

  it("an open that never completes times out, and that socket is closed", async () => {
    // The open never completes: only the timeout ends it, and CONNECT_TIMEOUT says it did.
    const net = fakeNetwork({ opening: () => "never" });
    await assert.rejects(
      settles(
        Client.connect("h", { transport: socketsTransport(net.connect), hostTag: false, timeoutMs: 100 }),
        "the host check",
      ),
      (e: ConnectError) => e.code === "CONNECT_TIMEOUT",
    );
    assert.equal(net.sockets[0].closeCalls, 1);
  });

  it("the server ending the connection: reconnect, later points arrive on the new socket", async () => {
    const net = fakeNetwork();
    const client = new Client("h", {
      transport: socketsTransport(net.connect),
      hostTag: "h1",
      reconnect: { initialMs: 5, maxMs: 20 },
    });
    let disconnects = 0;
    client.addEventListener("disconnect", () => disconnects++);
    client.send("edge.points", 0, { i: 0 }, TS);
    await client.flush({ timeoutMs: HANG_GUARD_MS });
    net.sockets[0].end();
    await waitFor(() => disconnects === 1, HANG_GUARD_MS, "the disconnect event");
    client.send("edge.points", 1, { i: 1 }, TS + 1);
    const stats = await client.close({ timeoutMs: HANG_GUARD_MS });
    assert.equal(net.sockets[0].received, expectedLines(1));
    assert.equal(net.sockets[1].received, `put edge.points ${TS + 1} 1 i=1 host=h1\n`);
    assert.equal(stats.reconnects, 1);
    assert.equal(stats.sent, 2);
  });

  it("a reset fails the write; the batch is written again on the next socket", async () => {
    const net = fakeNetwork();
    const client = new Client("h", {
      transport: socketsTransport(net.connect),
      hostTag: "h1",
      reconnect: { initialMs: 5, maxMs: 20 },
    });
    client.send("edge.points", 0, { i: 0 }, TS);
    await client.flush({ timeoutMs: HANG_GUARD_MS });
    net.sockets[0].reset(new Error("connection reset"));
    client.send("edge.points", 1, { i: 1 }, TS + 1);
    const stats = await client.close({ timeoutMs: HANG_GUARD_MS });
    const second = `put edge.points ${TS + 1} 1 i=1 host=h1\n`;
    assert.equal(net.sockets[0].received, expectedLines(1));
    assert.equal(net.sockets.at(-1)!.received, second);
    assert.equal(stats.sent, 2);
    assert.equal(stats.dropped.total, 0);
  });

  it("brackets an IPv6 address for connect()", async () => {
    const net = fakeNetwork();
    const client = new Client("[::1]:4243", { transport: socketsTransport(net.connect), hostTag: false });
    client.send("edge.points", 1, { a: "b" }, TS);
    await client.close({ timeoutMs: HANG_GUARD_MS });
    assert.deepEqual(net.sockets[0].address, { hostname: "[::1]", port: 4243 });
  });

  it("has no hostname: hostTag must be a string or false", () => {
    const transport = socketsTransport(fakeNetwork().connect);
    assert.throws(() => new Client("h", { transport }), OptionsError);
    assert.throws(() => socketsTransport("connect" as unknown as ConnectFunction), OptionsError);
  });
});

// ---------------------------------------------------------------------------
// Real workerd. miniflare and esbuild are dev dependencies; they run on Node,
// Deno and Bun alike here.

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "deno.json"))) dir = dirname(dir);
  return dir;
}

interface WorkerStats {
  accepted: number;
  sent: number;
  queued: number;
  dropped: { total: number };
  serverErrors: number;
  serverLines: string[];
}

interface MiniflareLike {
  dispatchFetch(url: string): Promise<Response>;
  dispose(): Promise<void>;
}

describe("on workerd, the Cloudflare Workers runtime (miniflare)", () => {
  let mf: MiniflareLike;
  let workerCode = "";

  before(async () => {
    const root = repoRoot();
    const esbuild = await import("esbuild");
    // What a Worker's bundler does (wrangler's conditions): one ES module with
    // the package inside, resolved by name through package.json's exports to
    // the npm build; only cloudflare:sockets stays an import, for workerd.
    const dist = join(root, "dist", "web.js");
    assert.ok(existsSync(dist), `${dist} is missing: npm test builds it (npm run build:dist)`);
    const bundle = await esbuild.build({
      entryPoints: [join(root, "tests", "fixtures", "sockets_worker.js")],
      bundle: true,
      write: false,
      format: "esm",
      platform: "neutral",
      conditions: ["workerd", "worker", "browser"],
      target: "es2022",
      external: ["cloudflare:sockets"],
      logLevel: "silent",
    });
    workerCode = bundle.outputFiles[0].text;
    const { Miniflare } = await import("miniflare");
    // miniflare types Response with its own (undici's) class: keep to the web one here.
    mf = new Miniflare({
      modules: [{ type: "ESModule", path: "worker.js", contents: workerCode }],
      compatibilityDate: "2026-07-01",
      // No compatibility flags: the bundle names no node: module.
    }) as unknown as MiniflareLike;
    await (await mf.dispatchFetch("http://worker/send?port=1&n=0")).arrayBuffer();
  });

  after(async () => {
    await mf?.dispose();
  });

  it("bundles @x/potsdb and @x/potsdb/sockets for workerd with no node: module", () => {
    assert.ok(workerCode.includes("socketsTransport"), "the bundle holds the package");
    // Only a feature check may name one (httpTransport's gzip asks process.getBuiltinModule for
    // node:zlib where a runtime has it); nothing imports one, so no compatibility flag is needed.
    const named = [...workerCode.matchAll(/(getBuiltinModule\?\.\()?["']node:[a-z_/]+["']/g)];
    assert.deepEqual(named.filter((m) => m[1] === undefined).map((m) => m[0]), []);
    const imports = [...workerCode.matchAll(/^\s*import\b[^;]*?from\s*["']([^"']+)["']/gm)].map((m) => m[1]);
    assert.deepEqual(imports, ["cloudflare:sockets"]);
  });

  it("sends N points inside one request; close() delivers the exact bytes", async () => {
    const server = await startServer();
    try {
      const n = 5000;
      const response = await mf.dispatchFetch(`http://worker/send?port=${server.port}&n=${n}`);
      const stats = await response.json() as WorkerStats;
      assert.equal(stats.accepted, n);
      assert.equal(stats.sent, n);
      assert.equal(stats.queued, 0);
      assert.equal(stats.dropped.total, 0);
      await waitFor(
        () => server.received().length >= expectedLines(n, "worker").length,
        HANG_GUARD_MS,
        "all bytes",
      );
      assert.equal(server.received(), expectedLines(n, "worker"));
      assert.equal(server.connections, 1);
    } finally {
      await server.close();
    }
  });

  it("ctx.waitUntil(client.close()) finishes the delivery after the response", async () => {
    const server = await startServer();
    try {
      const n = 2000;
      const response = await mf.dispatchFetch(`http://worker/send?port=${server.port}&n=${n}&wait=waitUntil`);
      assert.deepEqual(await response.json(), { accepted: n });
      await waitFor(
        () => server.received().length >= expectedLines(n, "worker").length,
        HANG_GUARD_MS,
        "all bytes",
      );
      assert.equal(server.received(), expectedLines(n, "worker"));
    } finally {
      await server.close();
    }
  });

  it("server error lines reach the Worker's server-error listener", async () => {
    const server = await startServer({
      onConnection(socket) {
        socket.once("data", () => socket.write("put: illegal argument: from the server\n"));
      },
    });
    try {
      const response = await mf.dispatchFetch(`http://worker/send?port=${server.port}&n=3&lines=1`);
      const stats = await response.json() as WorkerStats;
      assert.equal(stats.sent, 3);
      assert.equal(stats.serverErrors, 1);
      assert.deepEqual(stats.serverLines, ["put: illegal argument: from the server"]);
      await waitFor(() => server.lines().length === 3, HANG_GUARD_MS, "three lines");
      assert.equal(server.received(), expectedLines(3, "worker"));
    } finally {
      await server.close();
    }
  });

  for (const gzip of [true, false]) {
    it(`httpTransport works there too, through fetch (gzip ${gzip ? "on" : "off"})`, async () => {
      const bodies: { encoding: string | undefined; size: number; points: unknown[] }[] = [];
      const server = http.createServer((request, response) => {
        const chunks: Buffer[] = [];
        request.on("data", (c: Buffer) => chunks.push(c));
        request.on("end", () => {
          const raw = Buffer.concat(chunks);
          const encoding = request.headers["content-encoding"];
          const text = (encoding === "gzip" ? gunzipSync(raw) : raw).toString("utf8");
          bodies.push({ encoding, size: raw.length, points: JSON.parse(text) });
          response.writeHead(204).end();
        });
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
      try {
        const port = (server.address() as AddressInfo).port;
        const n = 1000;
        const response = await mf.dispatchFetch(
          `http://worker/http?port=${port}&n=${n}&gzip=${gzip ? 1 : 0}`,
        );
        const stats = await response.json() as WorkerStats;
        assert.equal(stats.sent, n);
        assert.equal(stats.dropped.total, 0);
        // Requests go out side by side (maxInFlight): points of different cells may arrive in any order.
        const byIndex = (p: unknown) => Number((p as { tags: { i: string } }).tags.i);
        assert.deepEqual(
          bodies.flatMap((b) => b.points).sort((a, b) => byIndex(a) - byIndex(b)),
          Array.from({ length: n }, (_, i) => ({
            metric: "edge.points",
            timestamp: TS + i,
            value: i,
            tags: { i: String(i), host: "worker" },
          })),
        );
        for (const b of bodies) {
          assert.equal(b.encoding, gzip ? "gzip" : undefined);
          assert.ok(b.size <= 8192);
        }
      } finally {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    });
  }
});
