// The transports every TCP test runs through on this runtime: the default (node:net), and
// the runtime's own sockets where it has them (Deno.connect, Bun.connect).

import { autoTransport } from "../../mod.ts";
import type { Transport } from "../../src/transport/types.ts";
import { bunTransport } from "../../src/transport/bun.ts";
import { denoTransport } from "../../src/transport/deno.ts";

export const transports: Transport[] = "Deno" in globalThis
  ? [autoTransport, denoTransport]
  : "Bun" in globalThis
  ? [autoTransport, bunTransport]
  : [autoTransport];

/**
 * Whether a transport writes while the caller's synchronous loop runs: all but Deno.connect,
 * whose writes are asynchronous.
 */
export function writesDuringSyncLoop(transport: Transport): boolean {
  return transport !== denoTransport;
}
