// The 1.0 surface: what the root entry exports (each name is an API promise), typed events,
// and errors that are PotsdbErrors with a code, recognised across copies of the package.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as root from "../mod.ts";
import * as web from "../web.ts";
import * as transport from "../src/transport/mod.ts";
import {
  Client,
  ConnectError,
  ConnectionLostError,
  type DropDetail,
  HttpError,
  MemoryTransport,
  OptionsError,
  PotsdbError,
  ServerError,
  ValidationError,
} from "../mod.ts";

describe("the root API", () => {
  it("exports the client, errors, point types, encoder, MemoryTransport and autoTransport only", () => {
    assert.deepEqual(Object.keys(root).sort(), [
      "Client",
      "ClientClosedError",
      "ConnectError",
      "ConnectionLostError",
      "DEFAULT_MAX_TAGS",
      "FlushTimeoutError",
      "HttpError",
      "MAX_LINE_BYTES",
      "MemoryTransport",
      "OptionsError",
      "PotsdbError",
      "PutEncoder",
      "ServerError",
      "SpoolError",
      "ValidationError",
      "autoTransport",
      "encodePut",
      "formatTimestamp",
      "formatValue",
      "isValidName",
      "sanitizeName",
    ]);
  });

  it("gives Workers the same API, with an autoTransport that names what to pass", async () => {
    assert.deepEqual(Object.keys(web).sort(), Object.keys(root).sort());
    assert.equal(web.Client, root.Client);
    assert.equal(root.autoTransport.name, "node:net");
    assert.equal(web.autoTransport.name, "none");
    const error = await web.autoTransport.connect({
      host: "h",
      port: 1,
      signal: new AbortController().signal,
      onLine() {},
    }).catch((e) => e);
    assert.ok(error instanceof OptionsError && /socketsTransport/.test(error.message));
  });

  it("keeps what transport authors need in ./transport", () => {
    assert.deepEqual(Object.keys(transport).sort(), ["lineSplitter", "readLines"]);
  });
});

describe("typed events", () => {
  it("types each event's detail, so listeners need no cast", async () => {
    const memory = new MemoryTransport();
    const client = new Client("memory", { transport: memory, hostTag: "h", qsize: 1 });
    const drops: DropDetail[] = [];
    const lines: string[] = [];
    const connects: string[] = [];
    // These compile only because the overloads type `e`: detail.count, detail.line, detail.host.
    client.addEventListener("drop", (e) => drops.push({ count: e.detail.count, reason: e.detail.reason }));
    client.addEventListener("server-error", (e) => lines.push(e.detail.line));
    client.addEventListener("connect", (e) => connects.push(e.detail.host));
    client.send("m", 1, { t: "a" }, 1700000000);
    client.send("m", 2, { t: "b" }, 1700000000); // qsize 1: the first is dropped
    await client.flush();
    memory.reply("put: unknown metric");
    const stats = await client.close();
    assert.deepEqual(drops, [{ count: 1, reason: "queueFull" }]);
    assert.deepEqual(lines, ["put: unknown metric"]);
    assert.deepEqual(connects, ["memory"]);
    assert.equal(stats.listenerErrors, 0);
  });

  it("removes a typed listener", async () => {
    const client = new Client("memory", { transport: new MemoryTransport(), hostTag: "h" });
    let connects = 0;
    const onConnect = (e: CustomEvent<{ host: string }>) => connects += e.detail.host === "memory" ? 1 : 0;
    client.addEventListener("connect", onConnect);
    client.removeEventListener("connect", onConnect);
    client.send("m", 1, { t: "a" }, 1700000000);
    await client.close();
    assert.equal(connects, 0);
  });
});

describe("errors", () => {
  it("are PotsdbErrors with a code, HttpError included", () => {
    const errors: PotsdbError[] = [
      new HttpError("http://h/api/put", 503, "busy"),
      new OptionsError("x"),
      new ConnectError("CONNECT_FAILED", "h:1", "x"),
      new ConnectionLostError("x"),
      new ServerError("put: x"),
      new ValidationError("INVALID_TAG", "tag", "x"),
    ];
    for (const e of errors) {
      assert.ok(e instanceof PotsdbError && e instanceof Error, e.name);
      assert.equal(typeof e.code, "string");
    }
    assert.equal(errors[0].code, "HTTP_ERROR");
    assert.ok(!(new OptionsError("x") instanceof ConnectError));
    assert.ok(!(new Error("x") instanceof PotsdbError));
    assert.ok(
      !((null as unknown) instanceof PotsdbError) && !({ code: "INVALID_TAG" } instanceof PotsdbError),
    );
  });

  it("are recognised by instanceof across two copies of the package", async () => {
    // The npm build (dist/, which npm test makes) is a second copy of every class.
    let dir = dirname(fileURLToPath(import.meta.url));
    while (!existsSync(join(dir, "deno.json"))) dir = dirname(dir);
    const file = join(dir, "dist", "src", "errors.js");
    assert.ok(existsSync(file), `${file} is missing: run npm run build:dist`);
    const other = await import(pathToFileURL(file).href) as typeof import("../src/errors.ts");
    assert.notEqual(other.ConnectError, ConnectError, "a separate copy");
    const foreign = new other.ConnectError("CONNECT_TIMEOUT", "h:1", "took too long");
    assert.ok(foreign instanceof ConnectError);
    assert.ok(foreign instanceof PotsdbError);
    assert.ok(!(foreign instanceof ValidationError));
    assert.ok(new ConnectError("CONNECT_FAILED", "h:1", "x") instanceof other.PotsdbError);
    assert.ok(!(new OptionsError("x") instanceof other.ConnectError));
  });
});
