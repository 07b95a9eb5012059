/**
 * The default transport on runtimes with TCP sockets: `node:net`, on Node,
 * Deno and Bun alike. On Deno it writes bytes to the kernel synchronously,
 * where `Deno.connect`'s write is always asynchronous, so only `node:net`
 * delivers a long synchronous burst of `send()` calls; on Bun it is as fast
 * as `Bun.connect` and, unlike it, can cancel a connect.
 *
 * Importing this module makes it the clients' default. Workers and browsers
 * load `web.ts` instead (through the package's export conditions), which
 * never names a `node:` module.
 *
 * @module
 */

import { setDefaultTransport } from "./default.ts";
import { nodeTransport } from "./node.ts";
import type { Transport } from "./types.ts";

/**
 * The default transport: `node:net`.
 *
 * @example
 * ```ts
 * import { autoTransport } from "@x/potsdb";
 *
 * console.log(autoTransport.name); // "node:net"
 * ```
 */
export const autoTransport: Transport = nodeTransport;

setDefaultTransport(autoTransport);
