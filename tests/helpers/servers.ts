// In-process fake TSD servers for fault injection, on 127.0.0.1 only.
// Every server and socket a test opens is closed by `close()`: Node 20's
// test runner hangs on a leaked handle.

import * as net from "node:net";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export interface FakeServer {
  port: number;
  /** Everything received, across connections (the client's `version` probes left out). */
  received(): string;
  /** Complete lines received, without newlines. */
  lines(): string[];
  /** Connections accepted so far. */
  connections: number;
  /** Sockets currently open. */
  sockets: Set<net.Socket>;
  /** Sends `text` to every open connection. */
  broadcast(text: string): void;
  /** Resets every open connection. */
  dropAll(): void;
  /** Stops reading from every connection (and new ones): backpressure. */
  pause(): void;
  resume(): void;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

export interface FakeServerOptions {
  port?: number;
  /** Called for each new connection. */
  onConnection?(socket: net.Socket): void;
  /** Close each connection after this many bytes. */
  closeAfterBytes?: number;
}

export async function startServer(options: FakeServerOptions = {}): Promise<FakeServer> {
  let text = "";
  let paused = false;
  const sockets = new Set<net.Socket>();
  const state = {
    connections: 0,
  };
  const server = net.createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.setEncoding("latin1");
    let bytes = 0;
    // The client's `version` probes are no data: whole lines are kept, probes left out.
    let partial = "";
    socket.on("data", (d: string) => {
      const chunk = partial + d;
      const end = chunk.lastIndexOf("\n") + 1;
      partial = chunk.slice(end);
      const whole = chunk.slice(0, end);
      text += whole.includes("version\n") ? whole.replace(/^version\n/gm, "") : whole;
      bytes += d.length;
      if (options.closeAfterBytes !== undefined && bytes >= options.closeAfterBytes) socket.destroy();
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      text += partial; // a line cut off by the end of the connection, as it came
      partial = "";
      sockets.delete(socket);
    });
    if (paused) socket.pause();
    options.onConnection?.(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    received: () => text,
    lines: () => (text === "" ? [] : text.slice(0, text.lastIndexOf("\n")).split("\n")),
    get connections() {
      return state.connections;
    },
    sockets,
    broadcast(t) {
      for (const s of sockets) s.write(t);
    },
    dropAll() {
      for (const s of sockets) s.resetAndDestroy?.() ?? s.destroy();
    },
    pause() {
      paused = true;
      for (const s of sockets) s.pause();
    },
    resume() {
      paused = false;
      for (const s of sockets) s.resume();
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A loopback port with nothing listening on it (connections are refused). */
export async function closedPort(): Promise<number> {
  // Below the kernel's ephemeral range (32768 and up), where every `listen(0)` of the tests, of
  // the other runtimes' runs beside this one and of the servers they start takes its port: a port
  // from there could be taken by one of them between this check and the test's connect, and the
  // "refused" connect would reach someone's server.
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const server = net.createServer();
    const free = await new Promise<boolean>((resolve) => {
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => resolve(true));
    });
    if (!free) continue;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return port;
  }
  throw new Error("no free port in 20000..31999");
}

/**
 * How long a test waits for something that takes milliseconds when all is well: a guard
 * against a hang, never a measure of speed. Long enough that two busy cores do not trip it.
 */
export const HANG_GUARD_MS = 60_000;

/**
 * Polls `condition` every 5 ms until it holds; fails after `timeoutMs`, a hang guard
 * (see {@linkcode HANG_GUARD_MS}), not a bound on how fast the condition comes true.
 */
export async function waitFor(
  condition: () => boolean,
  timeoutMs = HANG_GUARD_MS,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * `promise`, or a failure naming `what` if it has not settled after `timeoutMs`: a hang guard
 * for a call that must return (close() against a dead server, say), not a bound on its speed.
 */
export async function settles<T>(promise: Promise<T>, what: string, timeoutMs = HANG_GUARD_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stuck = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not return within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, stuck]);
  } finally {
    clearTimeout(timer);
  }
}

export interface Sink {
  port: number;
  /**
   * Lines and bytes the sink has counted so far; after `checkSequence()`, also the
   * `seq.test` lines and how many of them did not carry the next value of 0, 1, 2, …
   */
  count(): Promise<{ lines: number; bytes: number; seqLines: number; seqBad: number }>;
  /** Makes the sink read the values of `seq.test` lines from now on. */
  checkSequence(): void;
  close(): Promise<void>;
}

/**
 * A line-counting sink in a separate Node process: it keeps reading while
 * this process is busy in a synchronous loop.
 */
export async function startSink(): Promise<Sink> {
  const script = fileURLToPath(new URL("./sink.mjs", sinkDir()));
  const child = spawn("node", [script], { stdio: ["pipe", "pipe", "inherit"] });
  child.stdout!.setEncoding("utf8");
  let buffered = "";
  const waiters: ((line: string) => void)[] = [];
  child.stdout!.on("data", (d: string) => {
    buffered += d;
    for (let i = buffered.indexOf("\n"); i !== -1; i = buffered.indexOf("\n")) {
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      waiters.shift()?.(line);
    }
  });
  const next = () => new Promise<string>((resolve) => waiters.push(resolve));
  const port = Number((await next()).split(" ")[1]);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    port,
    async count() {
      const reply = next();
      child.stdin!.write("count\n");
      const [, lines, bytes, seqLines, seqBad] = (await reply).split(" ");
      return {
        lines: Number(lines),
        bytes: Number(bytes),
        seqLines: Number(seqLines),
        seqBad: Number(seqBad),
      };
    },
    checkSequence() {
      child.stdin!.write("seq\n");
    },
    async close() {
      child.stdin!.end();
      await exited;
    },
  };
}

// sink.mjs sits in tests/helpers/; the compiled copy of this file does not.
function sinkDir(): URL {
  const here = new URL(".", import.meta.url);
  return here.pathname.includes("/build/") ? new URL(here.href.replace("/build/tests/", "/tests/")) : here;
}
