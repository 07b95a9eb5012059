/**
 * The signals that ask a process to stop — SIGINT (Ctrl-C), SIGTERM (what
 * `kill`, systemd, Docker and Kubernetes send first) and SIGHUP (the
 * terminal went away) — end a process that has no handler for them at once,
 * without its `exit` event, so the spool's exit hook would not run and the
 * points still in memory would be lost where `kill -9` keeps them in
 * `always` mode. While a spool is open, this module listens for them: at
 * such a signal it runs the spools' exit hooks (the writer puts what is
 * queued and in flight into the spool, which then closes), removes its
 * listeners and raises the same signal again, so that the process ends as
 * it would have, with the status its parent expects (128 + the signal's
 * number, or "killed by SIGTERM").
 *
 * As the `signal-exit` package does, it decides when the signal comes: if
 * the application listens for that signal too (`process.on("SIGTERM")`),
 * the signal is the application's to handle and nothing is done here — its
 * handler calls `close()`, or `process.exit()`, which runs the exit hooks.
 * Listeners of other copies of this module and of `signal-exit` (v3 and
 * v4) are not the application's: each of them acts only when no one else
 * listens, and counting them as others would leave the signal to nobody.
 * When one of them comes after this module's listener, it runs next for the
 * same signal, finds itself alone and ends the process; otherwise this
 * module raises the signal. Deno ends a process a moment after the signal
 * is raised, from another thread: the program waits for it, blocked, so
 * that it does not run on with its spools closed.
 *
 * The listeners exist only while a spool is open, and never keep a process
 * alive: Node, Deno and Bun do not wait for signal listeners.
 *
 * Only the spool's `node:fs` disk (`disk.ts`) imports this module.
 *
 * @module
 */

import { constants } from "node:os";
import process from "node:process";

/** The signals handled while a spool is open: those a process is asked to stop with. */
export const ENDING_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/** One of {@linkcode ENDING_SIGNALS}. */
export type EndingSignal = typeof ENDING_SIGNALS[number];

// Marks this module's listeners, in every copy of it loaded in the process (npm and JSR, two versions).
const MARK = Symbol.for("potsdb.spool.signalListener");

type Listener = (() => void) & { [MARK]?: true };

/**
 * How long, at most, the process waits blocked for the runtime to end it after the signal is
 * raised again (Deno ends it from another thread, within milliseconds).
 */
const DEATH_WAIT_MS = 1000;

const hooks = new Set<() => void>();
const listeners = new Map<EndingSignal, Listener>();

/**
 * Runs `hook` when SIGINT, SIGTERM or SIGHUP is about to end the process
 * (no listener of the application's for it), then lets the signal end it.
 * The listeners are installed with the first hook and removed with the
 * last.
 *
 * @param hook runs synchronously; what it throws does not stop the others or the exit
 * @returns removes the hook (and the listeners, when it was the last)
 *
 * @example
 * ```ts
 * import process from "node:process";
 * import { onEndingSignal } from "./signals.ts";
 *
 * const before = process.listenerCount("SIGTERM");
 * const remove = onEndingSignal(() => console.log("persisting before the signal ends the process"));
 * console.assert(process.listenerCount("SIGTERM") === before + 1);
 * remove();
 * console.assert(process.listenerCount("SIGTERM") === before);
 * ```
 */
export function onEndingSignal(hook: () => void): () => void {
  // Its own function each time, so that one hook added twice is two entries, removed one by one.
  const entry = () => hook();
  hooks.add(entry);
  if (listeners.size === 0) install();
  return () => {
    if (hooks.delete(entry) && hooks.size === 0) uninstall();
  };
}

function install(): void {
  for (const signal of ENDING_SIGNALS) {
    const listener: Listener = () => onSignal(signal);
    listener[MARK] = true;
    try {
      process.on(signal, listener);
      listeners.set(signal, listener);
    } catch {
      // A signal this platform does not have (SIGHUP on Windows): nothing to listen for.
    }
  }
}

function uninstall(): void {
  for (const [signal, listener] of listeners) process.off(signal, listener);
  listeners.clear();
}

function onSignal(signal: EndingSignal): void {
  if (othersListen(signal)) return; // the application's to handle: it calls close() or exits
  // Listeners after this one (signal-exit's, another copy's) run next for this same signal and,
  // finding themselves alone, end the process: raising it again would only race them (on Deno,
  // the raised signal can end the process before they run).
  const all: unknown[] = process.listeners(signal);
  const last = all.indexOf(listeners.get(signal)!) === all.length - 1;
  const run = [...hooks];
  hooks.clear();
  for (const hook of run) {
    try {
      hook();
    } catch {
      // The process ends all the same; the other spools still get theirs.
    }
  }
  // Listening until now: a second signal during the hooks waits instead of cutting a write short.
  uninstall();
  if (last) raise(signal);
}

/** Whether anyone but this module (in any copy) and `signal-exit` listens for `signal`. */
function othersListen(signal: EndingSignal): boolean {
  let others = 0;
  for (const listener of process.listeners(signal)) if (!(listener as Listener)[MARK]) others++;
  return others - signalExitListeners() > 0;
}

/** How many listeners per signal `signal-exit` has installed: each loaded copy (v4, v3) adds one. */
function signalExitListeners(): number {
  const count = (emitter: unknown): number => {
    const n = (emitter as { count?: unknown } | undefined)?.count;
    return typeof n === "number" && n > 0 ? n : 0;
  };
  const v4 = (globalThis as Record<symbol, unknown>)[Symbol.for("signal-exit emitter")];
  const v3 = (process as unknown as { __signal_exit_emitter__?: unknown }).__signal_exit_emitter__;
  return count(v4) + count(v3);
}

/**
 * Sends `signal` to this process again, now that nothing here listens: the runtime's default
 * ends it. Node and Bun end it before `process.kill` returns; Deno does from a thread of its
 * own, a moment later — while the program would run on with the spools closed, and lose what it
 * sends then. So the thread waits here, blocked, for at most {@linkcode DEATH_WAIT_MS}. A process
 * still alive after that has a handler this module cannot see (`Deno.addSignalListener`): the
 * signal is left to it, as to `signal-exit`, which handles it next when it listens.
 */
function raise(signal: EndingSignal): void {
  // Windows has no SIGHUP to send; SIGINT ends a process there the same way (as signal-exit does).
  const sent = process.platform === "win32" && signal === "SIGHUP" ? "SIGINT" : signal;
  try {
    process.kill(process.pid, sent);
  } catch {
    // Cannot signal itself: end with the status a shell gives a process that the signal ended.
    process.exit(128 + (constants.signals[signal] ?? 0));
  }
  if (process.listenerCount(signal) > 0) return;
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, DEATH_WAIT_MS);
  } catch {
    // A runtime that cannot block its main thread: the signal is left to the runtime.
  }
}
