// The transports every TCP test runs through on this runtime: its default (node:net on Node
// and Deno, Bun.connect on Bun), plus Deno.connect on Deno and node:net on Bun.

import { autoTransport, type Transport } from "../../mod.ts";
import { denoTransport } from "../../src/transport/deno.ts";
import { nodeTransport } from "../../src/transport/node.ts";

export const transports: Transport[] = "Deno" in globalThis
  ? [autoTransport, denoTransport]
  : autoTransport.name === nodeTransport.name
  ? [autoTransport]
  : [autoTransport, nodeTransport];

/**
 * Whether a transport writes while the caller's synchronous loop runs: all but Deno.connect,
 * whose writes are asynchronous.
 */
export function writesDuringSyncLoop(transport: Transport): boolean {
  return transport !== denoTransport;
}
