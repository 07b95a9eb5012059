/**
 * The public API, less the default transport: shared by the root entries
 * `mod.ts` (runtimes with TCP sockets) and `web.ts` (Workers, browsers),
 * which differ only in `autoTransport`.
 *
 * @module
 */

export {
  Client,
  type ClientEventMap,
  type ClientEventType,
  type ClientStats,
  type ConnectOptions,
  type DropDetail,
  type FlushOptions,
  type SendOptions,
  type SpoolStats,
} from "./client.ts";
export type { ClientOptions } from "./options.ts";
export type { SpoolFsync, SpoolMode, SpoolOptions } from "./spool/types.ts";
export type { Address, Clock } from "./writer.ts";
export type { BackoffOptions } from "./backoff.ts";
export type { Rejection, TlsOptions } from "./transport/types.ts";
export {
  ClientClosedError,
  ConnectError,
  ConnectionLostError,
  type ErrorCode,
  FlushTimeoutError,
  HttpError,
  OptionsError,
  PotsdbError,
  ServerError,
  SpoolError,
  ValidationError,
} from "./errors.ts";
export {
  DEFAULT_MAX_TAGS,
  encodePut,
  type EncoderOptions,
  formatTimestamp,
  formatValue,
  isValidName,
  MAX_LINE_BYTES,
  PutEncoder,
  sanitizeName,
  type Tags,
  type TagValue,
  type Timestamp,
  type Value,
} from "./put.ts";
export { MemoryTransport } from "./transport/memory.ts";
export type { Counter, Gauge } from "./meters.ts";
export type { Histogram, HistogramOptions } from "./histogram.ts";
export type { MeterOptions, MeterStats } from "./meter_registry.ts";
