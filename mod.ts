/**
 * potsdb: a fire-and-forget OpenTSDB metrics client for Deno, Bun and Node.
 *
 * `send()` validates a point, queues its `put` line and returns at once; a
 * background writer delivers the queue over TCP in large coalesced writes,
 * honours a metrics-per-second limit and reconnects forever. A full queue
 * drops its oldest points, and every point is accounted for in `stats()`.
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

export {
  Client,
  type ClientEventType,
  type ClientOptions,
  type ClientStats,
  type ConnectOptions,
  type DropDetail,
  type FlushOptions,
  type SendOptions,
} from "./src/client.ts";
export {
  ClientClosedError,
  ConnectError,
  ConnectionLostError,
  type ErrorCode,
  FlushTimeoutError,
  OptionsError,
  PotsdbError,
  ServerError,
  ValidationError,
} from "./src/errors.ts";
export {
  DEFAULT_MAX_TAGS,
  encodePut,
  type EncoderOptions,
  formatTimestamp,
  formatValue,
  isValidName,
  MAX_LINE_BYTES,
  MAX_MILLISECONDS,
  MAX_SECONDS,
  PutEncoder,
  sanitizeName,
  type Tags,
  type TagValue,
  type Timestamp,
  type Value,
} from "./src/put.ts";
export { type Batch, DropOldestQueue, type LineSink } from "./src/queue.ts";
export { TokenBucket } from "./src/rate_limit.ts";
export { Backoff, type BackoffOptions, sleep } from "./src/backoff.ts";
export { type Address, type Clock, Writer, type WriterEvents, type WriterOptions } from "./src/writer.ts";
export type {
  Connection,
  ConnectOptions as TransportConnectOptions,
  Rejection,
  Transport,
} from "./src/transport/types.ts";
export { autoTransport } from "./src/transport/auto.ts";
export { MemoryTransport } from "./src/transport/memory.ts";
export { lineSplitter } from "./src/transport/lines.ts";
