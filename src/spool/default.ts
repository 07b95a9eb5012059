/**
 * The spool a client opens for the `spool` option. The root entry for
 * runtimes with a file system (`mod.ts`) sets it to the `node:fs` spool of
 * `file.ts`; the entry for Workers and browsers (`web.ts`) leaves it unset,
 * so that no `node:` module is named in their bundles and the option is
 * refused there with an `OptionsError`.
 *
 * @module
 */

import type { SpoolFactory } from "./types.ts";

let factory: SpoolFactory | undefined;

/**
 * Sets how clients open their spool.
 *
 * @param open the factory
 *
 * @example
 * ```ts
 * import { setSpoolFactory, spoolFactory } from "./default.ts";
 *
 * const before = spoolFactory();
 * if (before) setSpoolFactory(before);
 * ```
 */
export function setSpoolFactory(open: SpoolFactory): void {
  factory = open;
}

/**
 * How clients open their spool, if this runtime has one.
 *
 * @returns the factory, or `undefined`
 *
 * @example
 * ```ts
 * import { spoolFactory } from "./default.ts";
 *
 * console.log(spoolFactory() ? "a disk spool is available" : "no disk here");
 * ```
 */
export function spoolFactory(): SpoolFactory | undefined {
  return factory;
}
