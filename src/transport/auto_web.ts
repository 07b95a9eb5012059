/**
 * `autoTransport` for runtimes without TCP sockets (Workers, browsers): it
 * names no `node:` module. Its `connect` rejects, saying which transport to
 * pass; clients made without a transport throw an `OptionsError` at once.
 *
 * @module
 */

import { OptionsError } from "../errors.ts";
import type { Transport } from "./types.ts";

/**
 * Where there are no TCP sockets, a transport that only says which one to
 * pass instead.
 *
 * @example
 * ```ts
 * import { autoTransport } from "./auto_web.ts";
 *
 * console.assert(autoTransport.name === "none");
 * ```
 */
export const autoTransport: Transport = {
  name: "none",
  connect: () =>
    Promise.reject(
      new OptionsError(
        "this runtime has no TCP sockets: pass a transport, e.g. socketsTransport(connect) from " +
          '"@x/potsdb/sockets" or httpTransport() from "@x/potsdb/http"',
      ),
    ),
};
