// `await using` syntax: Node 22 cannot parse it (the runner skips this file
// there); Node 20 runs the tsc-compiled form, the other runtimes the syntax.
import { it } from "node:test";
import assert from "node:assert/strict";
import { Client, MemoryTransport } from "../mod.ts";

it("await using closes the client at the end of the scope", async () => {
  const t = new MemoryTransport();
  let client: Client;
  {
    await using metrics = new Client("h", { transport: t, hostTag: false });
    client = metrics;
    metrics.send("m", 1, { a: "b" }, 1700000000);
  }
  assert.equal(client.closed, true);
  assert.deepEqual(t.lines(), ["put m 1700000000 1 a=b"]);
});
