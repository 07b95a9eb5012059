// The transports every TCP test runs through on this runtime: the default (node:net), and
// the runtime's own sockets where it has them (Deno.connect, Bun.connect).

import { autoTransport } from "../../mod.ts";
import type { Connection, Transport } from "../../src/transport/types.ts";
import { bunTransport } from "../../src/transport/bun.ts";
import { denoTransport } from "../../src/transport/deno.ts";
import { PROBE } from "../../src/liveness.ts";

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

/** One `write()` a recorded connection was handed. */
export interface RecordedWrite {
  /** Which connection (0 = the first the transport opened). */
  connection: number;
  bytes: number;
  /** Newlines in it: the lines it carries. */
  lines: number;
  /** Whether its `done` has been called (without an error). */
  confirmed: boolean;
  /** The time of the write, on the clock given to `recording()`. */
  at: number;
}

/** What happened to one connection a recorded transport opened. */
export interface RecordedConnection {
  /** `end()` was called (a graceful close). */
  ended: boolean;
  /** `destroy()` was called (a forced close). */
  destroyed: boolean;
  /** `write()` returned false and `ready()` has not resolved since: the writer must wait. */
  mustWait: boolean;
  /** `write()` calls made while `mustWait` held: backpressure ignored. */
  writesWhileMustWait: number;
  /** `ready()` calls made. */
  readyCalls: number;
}

/** A transport wrapped to record what the client does with it. */
export interface Recording {
  transport: Transport;
  /** Every write, in order, across connections. */
  writes: RecordedWrite[];
  connections: RecordedConnection[];
  /** The `signal` of each `connect()` call, in order (attempts that failed included). */
  connectSignals: AbortSignal[];
}

/**
 * Wraps `inner` to record every connect, write, confirmation, wait and close; `now` stamps
 * each write (a test's virtual clock, say).
 */
export function recording(inner: Transport, now: () => number = () => 0): Recording {
  const rec: Recording = { transport: undefined!, writes: [], connections: [], connectSignals: [] };
  rec.transport = {
    name: inner.name,
    hostname: inner.hostname,
    async connect(options) {
      rec.connectSignals.push(options.signal);
      const conn = await inner.connect(options);
      const index = rec.connections.length;
      const state: RecordedConnection = {
        ended: false,
        destroyed: false,
        mustWait: false,
        writesWhileMustWait: 0,
        readyCalls: 0,
      };
      rec.connections.push(state);
      const wrapped: Connection = {
        write(data, done) {
          // The client's `version` probe is no batch: passed on, not recorded.
          if (data.length === PROBE.length && PROBE.every((b, i) => data[i] === b)) {
            return conn.write(data, done);
          }
          if (state.mustWait) state.writesWhileMustWait++;
          let lines = 0;
          for (let i = data.indexOf(10); i !== -1; i = data.indexOf(10, i + 1)) lines++;
          const write: RecordedWrite = {
            connection: index,
            bytes: data.length,
            lines,
            confirmed: false,
            at: now(),
          };
          rec.writes.push(write);
          const ok = conn.write(data, (error, rejected) => {
            if (error === undefined) write.confirmed = true;
            done(error, rejected);
          });
          if (!ok) state.mustWait = true;
          return ok;
        },
        ready() {
          state.readyCalls++;
          return conn.ready().then(() => void (state.mustWait = false));
        },
        closed: conn.closed,
        end() {
          state.ended = true;
          conn.end();
        },
        destroy() {
          state.destroyed = true;
          conn.destroy();
        },
        ref: () => conn.ref(),
        unref: () => conn.unref(),
      };
      return wrapped;
    },
  };
  return rec;
}
