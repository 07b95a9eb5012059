/**
 * `@x/potsdb/otel`: an OpenTelemetry metrics exporter to OpenTSDB (see
 * {@linkcode OpenTsdbMetricExporter}). This entry also loads what the root
 * entry sets up on runtimes with TCP sockets — the default `node:net`
 * transport and the disk spool — so that an exporter that makes its own
 * client needs no other import. Workers and browsers get the exporter alone
 * (through the `workerd`, `worker` and `browser` conditions) and pass it a
 * client made with their own transport.
 *
 * @example
 * ```ts
 * import { OpenTsdbMetricExporter } from "@x/potsdb/otel";
 *
 * const exporter = new OpenTsdbMetricExporter({ host: "localhost", prefix: "app" });
 * await exporter.shutdown();
 * ```
 *
 * @module
 */

import "./mod.ts";

export * from "./src/otel.ts";
