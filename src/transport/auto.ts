/**
 * Picks the transport of the runtime we run on: `Bun.connect` on Bun,
 * `node:net` on Node and on Deno. Only the chosen adapter is
 * loaded (with `import()`), so no runtime's module is touched elsewhere.
 *
 * @module
 */

import type { Transport } from "./types.ts";

interface Globals {
  Deno?: { connect?: unknown };
  Bun?: { connect?: unknown };
  process?: { versions?: { node?: string } };
}

async function detect(): Promise<Transport | undefined> {
  const g = globalThis as Globals;
  try {
    if (typeof g.Bun?.connect === "function") return (await import("./bun.ts")).bunTransport;
    // Deno too: its node:net writes bytes synchronously, where Deno.connect's write is always
    // asynchronous — so only node:net delivers a long synchronous burst of send() calls there.
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
 * The default transport: the detected runtime's own. On a runtime without
 * TCP sockets its `connect` rejects with a message saying which transport
 * to pass instead.
 *
 * @example
 * ```ts
 * import { autoTransport } from "@x/potsdb";
 *
 * console.log(autoTransport.name); // "Bun.connect" or "node:net"
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
