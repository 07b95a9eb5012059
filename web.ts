/**
 * potsdb for runtimes without TCP sockets (Cloudflare Workers, browsers):
 * the same API as the root entry, with no default transport, so that no
 * `node:` module is named and a Worker needs no `nodejs_compat`. Pass a
 * transport: `socketsTransport(connect)` from `@x/potsdb/sockets`, or
 * `httpTransport()` from `@x/potsdb/http`. Bundlers pick this entry for
 * `@x/potsdb` by the `workerd`, `worker` and `browser` conditions.
 *
 * @example
 * ```ts ignore
 * import { connect } from "cloudflare:sockets";
 * import { Client } from "@x/potsdb/web";
 * import { socketsTransport } from "@x/potsdb/sockets";
 *
 * const metrics = new Client("tsd.example.com", { transport: socketsTransport(connect), hostTag: false });
 * metrics.send("edge.hits", 1, { colo: "AMS" });
 * await metrics.close();
 * ```
 *
 * @module
 */

export * from "./src/api.ts";
export { autoTransport } from "./src/transport/auto_web.ts";
