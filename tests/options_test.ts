// resolveOptions: the defaults, and the options refused at construction.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { MemoryTransport, OptionsError } from "../mod.ts";
import { resolveOptions } from "../src/options.ts";

const transport = new MemoryTransport();

describe("resolveOptions", () => {
  it("fills in the defaults and parses every host form", () => {
    const o = resolveOptions(["a", "b:4243", "[::1]:4244", "[::1]"], { transport, hostTag: "web1" });
    assert.deepEqual(o.addresses, [
      { host: "a", port: 4242 },
      { host: "b", port: 4243 },
      { host: "::1", port: 4244 },
      { host: "::1", port: 4242 },
    ]);
    assert.equal(o.qsize, 100_000);
    assert.equal(o.closeTimeoutMs, 10_000);
    assert.equal(o.encoder.host, "web1");
    assert.equal(resolveOptions("a", { transport }).encoder.host, "memory-host");
  });

  it("refuses delays a timer cannot hold: runtimes fire those at once", () => {
    for (const name of ["connectTimeoutMs", "closeTimeoutMs", "lingerMs"]) {
      assert.throws(() => resolveOptions("a", { transport, [name]: 2 ** 31 }), OptionsError, name);
      resolveOptions("a", { transport, [name]: 2 ** 31 - 1 });
    }
  });

  it("refuses what cannot work, with the option's name", () => {
    const bad: [string | string[], object, RegExp][] = [
      [[], {}, /at least one host/],
      ["a:0", {}, /bad port/],
      ["a", { port: 70000 }, /port/],
      ["a", { qsize: -1 }, /qsize/],
      ["a", { mps: Infinity }, /mps/],
      ["a", { maxTags: 0 }, /maxTags/],
      ["a", { batchBytes: 10 }, /batchBytes/],
      ["a", { hostTag: 1 }, /hostTag/],
    ];
    for (const [host, options, message] of bad) {
      assert.throws(() => resolveOptions(host, { transport, ...options }), (e) => {
        return e instanceof OptionsError && message.test(e.message);
      }, JSON.stringify(options));
    }
  });
});
