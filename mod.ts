/**
 * potsdb: a fire-and-forget OpenTSDB metrics client for Deno, Bun and Node.
 *
 * `send()` validates a point, queues its `put` line and returns at once; a
 * background writer delivers the queue over TCP in large coalesced writes,
 * honours a metrics-per-second limit and reconnects forever. A full queue
 * drops its oldest points, and every point is accounted for in `stats()`.
 *
 * The root API: {@linkcode Client} with its options, stats and typed events;
 * the errors, each a {@linkcode PotsdbError} with a `code`; the point types
 * and the encoder ({@linkcode PutEncoder}, {@linkcode encodePut}) with its
 * validation helpers; {@linkcode MemoryTransport} for tests and
 * {@linkcode autoTransport}, the default (`node:net`). Other transports have
 * their own entries (`/node`, `/deno`, `/bun`, `/sockets`, `/http`), and what
 * a transport's author needs is in `/transport`. Workers and browsers get
 * `/web` (the same API with no TCP default) through the package's export
 * conditions.
 *
 * @example
 * ```ts
 * import { Client } from "@x/potsdb";
 *
 * await using metrics = new Client("localhost");
 * metrics.send("sys.cpu.user", 42.5, { cpu: "0" });
 * ```
 *
 * @module
 */

export * from "./src/api.ts";
export { autoTransport } from "./src/transport/auto.ts";
// The `spool` option's disk spool (node:fs); web.ts leaves it out, so Workers refuse the option.
import "./src/spool/file.ts";
