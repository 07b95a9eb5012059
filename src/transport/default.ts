/**
 * The transport a client uses when none is passed. The root entry for
 * runtimes with TCP sockets (`mod.ts`) sets it to `node:net`; the entry for
 * Workers and browsers (`web.ts`) leaves it unset, so that no `node:` module
 * is ever named in their bundles, and a client there must be given one.
 *
 * @module
 */

import type { Transport } from "./types.ts";

let fallback: Transport | undefined;

/**
 * Sets the transport clients use when none is passed.
 *
 * @param transport the default
 *
 * @example
 * ```ts
 * import { defaultTransport, setDefaultTransport } from "./default.ts";
 * import { MemoryTransport } from "./memory.ts";
 *
 * const before = defaultTransport();
 * setDefaultTransport(new MemoryTransport());
 * console.assert(defaultTransport()?.name === "memory");
 * if (before) setDefaultTransport(before);
 * ```
 */
export function setDefaultTransport(transport: Transport): void {
  fallback = transport;
}

/**
 * The transport clients use when none is passed, if this runtime has one.
 *
 * @returns the default, or `undefined`
 *
 * @example
 * ```ts
 * import { defaultTransport } from "./default.ts";
 *
 * console.log(defaultTransport()?.name ?? "none: pass a transport");
 * ```
 */
export function defaultTransport(): Transport | undefined {
  return fallback;
}
