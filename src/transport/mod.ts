/**
 * For authors of transports: the {@linkcode Transport} and
 * {@linkcode Connection} interfaces a client drives, and the helpers every
 * transport here uses to read a server's lines.
 *
 * @example A transport that wraps another and counts connections
 * ```ts
 * import { autoTransport, Client } from "@x/potsdb";
 * import type { Transport } from "@x/potsdb/transport";
 *
 * let connects = 0;
 * const counting: Transport = {
 *   name: "counting",
 *   connect(options) {
 *     connects++;
 *     return autoTransport.connect(options);
 *   },
 * };
 * const client = new Client("localhost", { transport: counting, hostTag: false });
 * await client.close();
 * ```
 *
 * @module
 */

export type { Connection, ConnectOptions, Rejection, TlsOptions, Transport } from "./types.ts";
export { lineSplitter, readLines } from "../runtime.ts";
