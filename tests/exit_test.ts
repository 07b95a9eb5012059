// Exit behaviour, in a child process of the runtime running this test: a
// script that sends and returns without close() gets its points delivered and
// exits on its own; with the server down it exits once lingerMs has passed
// without progress; an idle client never holds a process.
//
// A test here fails when the process does not exit on its own before a hang
// guard kills it, never because it exited some milliseconds later than hoped
// on a busy machine. Where a prompt exit is the point, lingerMs is set far
// past the guard, so that only the mechanism under test (letting go once
// everything is written) can end the process in time. The figures are printed.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { closedPort, HANG_GUARD_MS, settles, startServer } from "./helpers/servers.ts";
import { startBlackhole } from "./helpers/fault_servers.ts";

const LINGER_MS = 2000; // the client's default lingerMs
/** A lingerMs no run can reach before the hang guard kills it. */
const FOREVER_MS = 10 * HANG_GUARD_MS;

interface Run {
  code: number | null;
  /** When the script's last send() returned (its clock). */
  done: number;
  /** When the process exited. */
  exited: number;
  stderr: string;
}

function runtimeArgs(script: string): string[] {
  const g = globalThis as { Deno?: unknown; Bun?: unknown };
  if (g.Deno) return ["run", "-A", "--no-check", script];
  return [script]; // Bun runs the .ts, Node the compiled .js
}

/** Runs the exit script in the runtime that runs this test. */
function runScript(args: (string | number)[], limitMs = HANG_GUARD_MS): Promise<Run> {
  const script = fileURLToPath(
    new URL(`./helpers/exit_script.${import.meta.url.endsWith(".js") ? "js" : "ts"}`, import.meta.url),
  );
  const child = spawn(process.execPath, [...runtimeArgs(script), ...args.map(String)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => stdout += d);
  child.stderr!.setEncoding("utf8").on("data", (d: string) => stderr += d);
  const killer = setTimeout(() => child.kill("SIGKILL"), limitMs);
  return new Promise((resolve) => {
    child.once("exit", (code) => {
      const exited = Date.now();
      clearTimeout(killer);
      const m = /DONE (\d+)/.exec(stdout);
      resolve({ code, done: m ? Number(m[1]) : NaN, exited, stderr });
    });
  });
}

describe(`exit behaviour (${process.execPath.split("/").pop()})`, () => {
  it("sends 10,000 points without close(): all arrive, then the process exits on its own", async () => {
    let lastData = 0;
    let ended!: () => void;
    const connectionEnded = new Promise<void>((resolve) => ended = resolve);
    const server = await startServer({
      onConnection(socket) {
        socket.on("data", () => lastData = Date.now());
        socket.on("close", () => ended());
      },
    });
    try {
      // With lingerMs past the hang guard, only letting go once all is written ends it in time.
      const run = await runScript([server.port, 10_000, 0, "default", FOREVER_MS]);
      assert.equal(run.code, 0, run.code === null ? "held the process until killed" : run.stderr);
      // The child's exit can be seen here before this process has read the last of its bytes:
      // count once the server has read the connection to its end.
      await settles(connectionEnded, "the client's connection to end");
      assert.equal(server.lines().length, 10_000, "every point arrived");
      assert.equal(server.lines()[9999], "put exit.test 1700000000 9999 k=v");
      const after = run.exited - lastData;
      console.log(
        `# exit after the last write: ${after} ms (script end → exit: ${run.exited - run.done} ms)`,
      );
    } finally {
      await server.close();
    }
  });

  it("with the server refusing: exits on its own once lingerMs passes", async () => {
    // Reconnecting for ever, the client would hold the process until killed but for lingerMs.
    const port = await closedPort();
    const run = await runScript([port, 10_000]);
    assert.equal(run.code, 0, run.code === null ? "held the process until killed" : run.stderr);
    const after = run.exited - run.done;
    console.log(
      `# exit with the server down (refused): ${after} ms after the last send (lingerMs ${LINGER_MS})`,
    );
  });

  // Bun.connect has no way to cancel a connect under way: the attempt the
  // connect timeout gave up on holds the process until the kernel gives up on
  // the SYN (about two minutes on Linux). The default, node:net, cancels it.
  const isBun = "Bun" in globalThis;
  const others = isBun ? ["bun"] : "Deno" in globalThis ? ["deno"] : [];
  for (const transport of ["default", ...others]) {
    const todo = transport === "bun"
      ? "Bun.connect cannot be cancelled; the default transport (node:net) can"
      : undefined;
    it(
      `with connects that never complete (${transport} transport): exits on its own after lingerMs`,
      {
        todo,
      },
      async () => {
        const hole = await startBlackhole();
        try {
          const connectTimeoutMs = 1000;
          const run = await runScript(
            [hole.port, 10_000, connectTimeoutMs, transport],
            todo ? 8000 : HANG_GUARD_MS,
          );
          assert.equal(run.code, 0, run.code === null ? "held the process until killed" : run.stderr);
          const after = run.exited - run.done;
          console.log(
            `# exit with connects unanswered (${transport} transport): ${after} ms after the last send ` +
              `(lingerMs ${LINGER_MS}, connectTimeoutMs ${connectTimeoutMs})`,
          );
        } finally {
          await hole.close();
        }
      },
    );
  }

  it("an idle client (nothing sent) never holds the process", async () => {
    const port = await closedPort();
    const run = await runScript([port, 0, 0, "default", FOREVER_MS]);
    assert.equal(run.code, 0, run.code === null ? "held the process until killed" : run.stderr);
    const after = run.exited - run.done;
    console.log(`# exit of an idle client: ${after} ms after the script ended`);
  });
});
