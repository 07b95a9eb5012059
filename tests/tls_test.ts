// The `tls` option: checked at construction, honoured by every TCP transport
// of this runtime against an in-process `node:tls` server, certificate
// errors reported as counted, retried `ConnectError`s with their cause, the
// handshake inside the connect timeout; `tls: true` on socketsTransport asks
// connect() for `secureTransport: "on"`.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import * as tls from "node:tls";
import process from "node:process";
import { Client, ConnectError, MemoryTransport, OptionsError } from "../mod.ts";
import { denoTransport } from "../src/transport/deno.ts";
import type { Transport } from "../src/transport/types.ts";
import { httpTransport } from "../src/transport/http.ts";
import { type ConnectFunction, type SocketOptions, socketsTransport } from "../src/transport/sockets.ts";
import { hasOpenssl, makeCerts, type TestCerts } from "./helpers/certs.ts";
import { transports } from "./helpers/transports.ts";

const TS = 1700000000;

describe("tls option checks", () => {
  const memory = new MemoryTransport();
  const make = (option: unknown, transport: Transport = memory) =>
    new Client("h", { transport, hostTag: false, tls: option as boolean });
  const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  const key = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n";
  const withTls: Transport = { name: "memory", connect: (o) => memory.connect(o), checkTls() {} };

  it("refuses bad settings with an OptionsError saying which", () => {
    const cases: [unknown, RegExp][] = [
      ["yes", /tls must be true, false or an object/],
      [[], /tls must be true, false or an object/],
      [{ ca: "/etc/ssl/ca.pem" }, /tls\.ca must be PEM text/],
      [{ ca: [] }, /tls\.ca must be a PEM string or a non-empty array/],
      [{ ca: [pem, 3] }, /tls\.ca must be PEM text/],
      [{ cert: pem }, /tls\.cert and tls\.key go together/],
      [{ cert: pem, key: pem }, /tls\.key must be PEM text/],
      [{ servername: "" }, /tls\.servername must be a host name/],
      [{ servername: "a b" }, /tls\.servername must be a host name/],
      [{ rejectUnauthorized: "no" }, /tls\.rejectUnauthorized must be a boolean/],
    ];
    for (const [option, message] of cases) {
      assert.throws(() => make(option, withTls), (e) => e instanceof OptionsError && message.test(e.message));
    }
    // Good ones pass.
    make(
      { ca: [pem, pem], cert: pem, key, servername: "tsd.example.com", rejectUnauthorized: false },
      withTls,
    )
      .close();
    make(false).close();
  });

  it("refuses a transport that cannot do TLS, and says what to use", () => {
    assert.throws(
      () => make(true),
      (e) => e instanceof OptionsError && /memory transport does not do TLS/.test(e.message),
    );
    assert.throws(
      () => make(true, httpTransport()),
      (e) => e instanceof OptionsError && /scheme: "https"/.test(e.message),
    );
  });

  it("passes the transport's own refusal on as an OptionsError", () => {
    assert.throws(
      () => make({ rejectUnauthorized: false }, denoTransport),
      (e) => e instanceof OptionsError && /rejectUnauthorized: false/.test(e.message),
    );
    const sockets = socketsTransport(() => {
      throw new Error("not called");
    });
    assert.throws(
      () => make({ ca: pem }, sockets),
      (e) => e instanceof OptionsError && /connect\(\) takes no ca/.test(e.message),
    );
  });
});

describe("socketsTransport with tls: true", () => {
  it('asks connect() for secureTransport "on"', async () => {
    const seen: (SocketOptions | undefined)[] = [];
    let received = "";
    const connect: ConnectFunction = (_address, options) => {
      seen.push(options);
      let close!: () => void;
      const closed = new Promise<void>((resolve) => close = resolve);
      return {
        readable: new ReadableStream({ start: (c) => void closed.then(() => c.close()) }),
        writable: new WritableStream({
          write: (chunk) => void (received += new TextDecoder().decode(chunk).replace(/^version\n/gm, "")),
        }),
        opened: Promise.resolve({}),
        closed,
        close: () => Promise.resolve(close()),
      };
    };
    for (const option of [true, {}, { rejectUnauthorized: true }]) {
      const client = new Client("h", { transport: socketsTransport(connect), hostTag: false, tls: option });
      client.send("a.b", 1, { x: "y" }, TS);
      const stats = await client.close();
      assert.equal(stats.sent, 1);
    }
    assert.deepEqual(seen.map((o) => o?.secureTransport), ["on", "on", "on"]);
    assert.equal(received, `put a.b ${TS} 1 x=y\n`.repeat(3));
    // Without tls it stays as made.
    const plain = new Client("h", { transport: socketsTransport(connect), hostTag: false });
    plain.send("a.b", 1, { x: "y" }, TS);
    await plain.close();
    assert.equal(seen[3]?.secureTransport, "off");
  });
});

interface TlsServer {
  port: number;
  received(): string;
  /** Connections that completed the handshake. */
  secured: number;
  close(): Promise<void>;
}

async function startTlsServer(options: tls.TlsOptions): Promise<TlsServer> {
  let text = "";
  let secured = 0;
  const sockets = new Set<net.Socket>();
  const server = tls.createServer(options, (socket) => {
    secured++;
    sockets.add(socket);
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => text += d);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  server.on("tlsClientError", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    received: () => text.replace(/^version\n/gm, ""), // the client's probes are no data
    get secured() {
      return secured;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const canRun = hasOpenssl();

describe("TLS against a node:tls server", { skip: canRun ? false : "openssl is not installed" }, () => {
  let certs: TestCerts;
  let server: TlsServer;
  before(async () => {
    certs = makeCerts();
    server = await startTlsServer({ cert: certs.serverCert, key: certs.serverKey });
  });
  after(async () => {
    await server?.close();
    certs?.dispose();
  });

  for (const transport of transports) {
    describe(transport.name, () => {
      it("delivers every point, in order, with the CA given", async () => {
        const before = server.received().length;
        const client = new Client("127.0.0.1", {
          port: server.port,
          transport,
          hostTag: "h1",
          tls: { ca: certs.ca },
        });
        let expected = "";
        for (let i = 0; i < 2000; i++) {
          client.send("tls.points", i, { i }, TS + i);
          expected += `put tls.points ${TS + i} ${i} i=${i} host=h1\n`;
        }
        const stats = await client.close({ timeoutMs: 30_000 });
        assert.equal(stats.sent, 2000, JSON.stringify(stats));
        assert.equal(stats.connectFailures, 0, String(stats.lastError));
        const deadline = Date.now() + 30_000;
        while (server.received().length - before < expected.length && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        assert.equal(server.received().slice(before), expected);
      });

      it("checks the name against the certificate: localhost and servername", async () => {
        const secured = server.secured;
        const byName = await Client.connect("localhost", {
          port: server.port,
          transport,
          hostTag: false,
          tls: { ca: [certs.otherCa, certs.ca] },
        });
        await byName.close();
        const named = await Client.connect("127.0.0.1", {
          port: server.port,
          transport,
          hostTag: false,
          tls: { ca: certs.ca, servername: "localhost" },
        });
        await named.close();
        assert.ok(server.secured > secured);
      });

      for (
        const [what, option, pattern] of [
          ["an unknown CA", () => ({ ca: certs.otherCa }), /certif|issuer|UnknownIssuer/i],
          ["the runtime's CAs only", () => true as const, /certif|issuer|UnknownIssuer/i],
          [
            "a name the certificate lacks",
            () => ({ ca: certs.ca, servername: "wrong.example" }),
            /altname|not valid for name/i,
          ],
        ] as const
      ) {
        it(`refuses ${what}: a counted, retried ConnectError with the cause; nothing sent`, async () => {
          const client = new Client("127.0.0.1", {
            port: server.port,
            transport,
            hostTag: false,
            tls: option(),
            reconnect: { initialMs: 1, maxMs: 5 },
          });
          const errors: ConnectError[] = [];
          client.addEventListener("error", (e) => errors.push((e as CustomEvent<ConnectError>).detail));
          client.send("tls.refused", 1, { a: "b" }, TS);
          const deadline = Date.now() + 30_000;
          while (client.stats().connectFailures < 2 && Date.now() < deadline) {
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
          const stats = await client.close({ timeoutMs: 0 });
          assert.ok(stats.connectFailures >= 2, "retried");
          assert.equal(stats.sent, 0);
          assert.equal(stats.dropped.closed, 1);
          const error = stats.lastError;
          assert.ok(error instanceof ConnectError, String(error));
          assert.equal(error.code, "CONNECT_FAILED");
          assert.ok(error.cause instanceof Error, "the runtime's error is the cause");
          assert.match(String((error.cause as Error).message), pattern);
          assert.ok(errors.length >= 2 && errors.every((e) => e instanceof ConnectError));

          await assert.rejects(
            Client.connect("127.0.0.1", { port: server.port, transport, hostTag: false, tls: option() }),
            (e) => e instanceof ConnectError && e.code === "CONNECT_FAILED" && e.cause instanceof Error,
          );
        });
      }

      it("a server that never answers the handshake: CONNECT_TIMEOUT, and close() does not wait for it", async () => {
        const silent = net.createServer((s) => s.on("error", () => {}));
        const held = new Set<net.Socket>();
        silent.on("connection", (s) => held.add(s));
        await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", () => resolve()));
        const port = (silent.address() as net.AddressInfo).port;
        try {
          await assert.rejects(
            Client.connect("127.0.0.1", {
              port,
              transport,
              hostTag: false,
              tls: { ca: certs.ca },
              timeoutMs: 300,
            }),
            (e) => e instanceof ConnectError && e.code === "CONNECT_TIMEOUT",
          );
          // A close while the handshake is under way aborts it.
          const client = new Client("127.0.0.1", { port, transport, hostTag: false, tls: { ca: certs.ca } });
          client.send("tls.never", 1, { a: "b" }, TS);
          const deadline = Date.now() + 30_000;
          while (held.size < 2 && Date.now() < deadline) {
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
          const stats = await client.close({ timeoutMs: 0 });
          assert.equal(stats.sent, 0);
          assert.equal(stats.dropped.closed, 1);
        } finally {
          for (const s of held) s.destroy();
          await new Promise<void>((resolve) => silent.close(() => resolve()));
        }
      });
    });
  }

  describe("mutual TLS", () => {
    let mutual: TlsServer;
    before(async () => {
      mutual = await startTlsServer({
        cert: certs.serverCert,
        key: certs.serverKey,
        ca: certs.ca,
        requestCert: true,
        rejectUnauthorized: true,
      });
    });
    after(async () => {
      await mutual?.close();
    });

    for (const transport of transports) {
      it(`${transport.name}: a client certificate is presented`, async () => {
        const client = new Client("127.0.0.1", {
          port: mutual.port,
          transport,
          hostTag: false,
          tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey },
        });
        const t = String(transports.indexOf(transport));
        client.send("tls.mutual", 7, { t }, TS);
        const stats = await client.close({ timeoutMs: 30_000 });
        assert.equal(stats.sent, 1, String(stats.lastError));
        const line = `put tls.mutual ${TS} 7 t=${t}\n`;
        const deadline = Date.now() + 30_000;
        while (!mutual.received().includes(line) && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        assert.ok(mutual.received().includes(line));
      });
    }
  });
});

if (!canRun && process.getuid?.() === 0) throw new Error("openssl is missing: .ci/run installs it");
