/**
 * Picks the default transport: `node:net`, on Node, Deno and Bun alike (see
 * `detect` for why not `Deno.connect` or `Bun.connect`). It is loaded with
 * `import()`, so a runtime without it (an edge worker) never touches it.
 *
 * @module
 */

import type { Transport } from "./types.ts";

interface Globals {
  Deno?: { connect?: unknown };
  process?: { versions?: { node?: string } };
}

async function detect(): Promise<Transport | undefined> {
  const g = globalThis as Globals;
  try {
    // node:net on all three. On Deno it writes bytes synchronously, where Deno.connect's write
    // is always asynchronous, so only node:net delivers a long synchronous burst of send()
    // calls; on Bun it is as fast as Bun.connect and, unlike it, can cancel a connect.
    if (typeof g.Deno?.connect === "function" || g.process?.versions?.node) {
      return (await import("./node.ts")).nodeTransport;
    }
  } catch {
    // a runtime without TCP sockets (a browser, an edge worker): the user passes a transport
  }
  return undefined;
}

const detected = await detect();

/**
 * The default transport: `node:net` where the runtime has it (Node, Deno,
 * Bun). On a runtime without TCP sockets its `connect` rejects with a
 * message saying which transport to pass instead.
 *
 * @example
 * ```ts
 * import { autoTransport } from "@x/potsdb";
 *
 * console.log(autoTransport.name); // "node:net"
 * ```
 */
export const autoTransport: Transport = {
  name: detected?.name ?? "none",
  connect(options) {
    if (detected === undefined) {
      return Promise.reject(
        new Error(
          "no TCP sockets found in this runtime: pass a transport, e.g. " +
            'socketsTransport(connect) with connect from "cloudflare:sockets"',
        ),
      );
    }
    return detected.connect(options);
  },
  hostname: () => detected?.hostname?.(),
  unrefTimer(timer) {
    if (detected?.unrefTimer) detected.unrefTimer(timer);
    else (timer as { unref?: () => void }).unref?.();
  },
};
