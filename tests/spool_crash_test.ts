// The spool across real processes of the runtime running this test: a
// process killed with SIGKILL mid-burst ("always" mode) or one that ends
// without close() ("overflow" mode) leaves its points on disk, and the next
// client on the directory delivers every one of them exactly once, in order.
// Also: the lock stops a second process, a killed owner's lock is taken
// over, and the Workers entry refuses the option.
//
// "Accepted" for the kill test: the child prints "ACCEPTED <n> <spooled> …"
// after a yield that follows its n-th send(); in "always" mode the points of
// a finished task are on disk (written to the OS with writeSync) by then, so
// they survive the process's death. That holds with fsync "never" too: a
// SIGKILL does not lose the page cache; only power loss needs fsync.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { spawn } from "node:child_process";
import { Client, OptionsError } from "../mod.ts";
import { closedPort, startServer } from "./helpers/servers.ts";
import { type ScriptChild, startScript } from "./helpers/child_script.ts";

const runtimeName = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";

function start(args: (string | number)[]): ScriptChild {
  return startScript("spool_script", args, 60_000);
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["--version"], { stdio: "ignore" });
  await new Promise((resolve) => child.once("exit", resolve));
  return child.pid!;
}

/** Delivers what the spool in `dir` holds to a fake server; returns the values received. */
async function deliver(dir: string, mode: "always" | "overflow") {
  const server = await startServer();
  try {
    const client = new Client("127.0.0.1", {
      dedup: false,
      port: server.port,
      hostTag: false,
      spool: { dir, mode },
    });
    const at = client.stats();
    const s = await client.close({ timeoutMs: 60_000 });
    assert.equal(s.accepted, s.sent + s.queued + s.dropped.total);
    assert.equal(s.sent, at.spool!.recovered, "every recovered point was written");
    assert.equal(s.spooled, 0);
    const values = server.lines().filter((l) => l.startsWith("put spool.seq ")).map((l) =>
      Number(l.split(" ")[3])
    );
    return { values, recovered: at.spool!.recovered, corruptTails: at.spool!.corruptTails };
  } finally {
    await server.close();
  }
}

function assertSequence(values: number[], n: number): void {
  assert.equal(values.length, n, `${values.length} delivered, expected ${n}`);
  for (let i = 0; i < n; i++) {
    if (values[i] !== i) assert.fail(`delivery #${i} is point ${values[i]}: not each point once, in order`);
  }
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(join(tmpdir(), "potsdb-spool-crash-"));
  try {
    await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe(`spool across processes (${runtimeName})`, () => {
  for (const killAt of [1_000, 50_000, 150_000]) {
    it(`always mode, server down, SIGKILL after ${killAt.toLocaleString("en")} of 200,000 points: the next process delivers each accepted point once, in order`, () =>
      withDir(async (dir) => {
        const down = await closedPort();
        const child = start(["send", dir, down, "always", 200_000, "wait"]);
        let accepted = 0;
        try {
          for await (const line of child.lines) {
            const m = /^ACCEPTED (\d+) (\d+)/.exec(line);
            if (!m) continue;
            accepted = Number(m[1]);
            assert.equal(Number(m[2]), accepted, "after a yield, every accepted point is on disk");
            if (accepted >= killAt) {
              child.kill("SIGKILL");
              break;
            }
          }
        } finally {
          child.kill("SIGKILL");
        }
        const { signal } = await child.ended;
        assert.equal(signal, "SIGKILL");
        assert.ok(accepted >= killAt, `the child reported ${accepted}`);
        const { values, recovered, corruptTails } = await deliver(dir, "always");
        console.log(
          `# kill -9 (${runtimeName}) after ${accepted} accepted: ${recovered} recovered and delivered, ` +
            `${corruptTails} torn tail(s) cut`,
        );
        assert.ok(recovered >= accepted, `${recovered} recovered < ${accepted} accepted`);
        assert.ok(recovered <= 200_000);
        assertSequence(values, recovered);
      }));
  }

  it("overflow mode, server down, the script ends without close(): the next process delivers every point", () =>
    withDir(async (dir) => {
      const down = await closedPort();
      const n = 20_000;
      const child = start(["send", dir, down, "overflow", n, "exit", 1000]);
      let done = false;
      for await (const line of child.lines) if (line === "DONE") done = true;
      const { code } = await child.ended;
      assert.equal(code, 0);
      assert.ok(done);
      const { values, recovered } = await deliver(dir, "overflow");
      assert.equal(recovered, n, "the queue was written to disk at exit");
      assertSequence(values, n);
    }));

  it("the lock stops a second process; a killed owner's lock is taken over", () =>
    withDir(async (dir) => {
      const child = start(["hold", dir]);
      let pid = 0;
      try {
        for await (const line of child.lines) {
          const m = /^READY (\d+)/.exec(line);
          if (m) {
            pid = Number(m[1]);
            break;
          }
        }
        assert.ok(pid > 0);
        assert.throws(
          () => new Client("127.0.0.1", { dedup: false, port: 1, hostTag: false, spool: { dir } }),
          (e: Error) => e instanceof OptionsError && e.message.includes(`process ${pid}`),
        );
      } finally {
        child.kill("SIGKILL");
      }
      await child.ended;
      assert.ok(fs.existsSync(join(dir, "lock")), "a killed process leaves its lock");
      const client = new Client("127.0.0.1", { dedup: false, port: 1, hostTag: false, spool: { dir } });
      await client.close({ timeoutMs: 0 });
    }));

  for (const stale of ["a dead pid", "an empty file", "no lock at all"]) {
    it(`four processes race for the lock (${stale}): exactly one holds it (#20.3)`, () =>
      withDir(async (dir) => {
        const lock = join(dir, "lock");
        if (stale === "a dead pid") fs.writeFileSync(lock, `${await deadPid()}\n`);
        if (stale === "an empty file") fs.writeFileSync(lock, "");
        const racers = Array.from({ length: 4 }, () => startScript("lock_script", [dir], 60_000));
        try {
          // All loaded and waiting; then the same word to each, as close together as can be.
          // (next(), not for-await: a break there would end the line iterator.)
          for (const r of racers) assert.equal((await r.lines.next()).value, "READY");
          for (const r of racers) r.stdin!.write("GO\n");
          const answers: string[] = [];
          for (const r of racers) answers.push(String((await r.lines.next()).value));
          const held = answers.filter((a) => a.startsWith("HELD "));
          assert.equal(held.length, 1, `one holder, got: ${answers.join(" | ")}`);
          const holder = held[0].split(" ")[1];
          for (const a of answers.filter((a) => !a.startsWith("HELD "))) {
            assert.match(a, /^REFUSED OptionsError: /, a);
          }
          assert.equal(fs.readFileSync(lock, "utf8").trim(), holder, "the lock names the holder");
          assert.deepEqual(
            fs.readdirSync(dir).filter((n) => n !== "lock"),
            [],
            "no claim or private lock file is left behind",
          );
        } finally {
          for (const r of racers) r.stdin!.end();
          await Promise.all(racers.map((r) => r.ended));
        }
        assert.equal(fs.existsSync(lock), false, "released by its holder");
      }));
  }

  it("the Workers entry (web.ts) refuses the spool option with an OptionsError", () =>
    withDir(async (dir) => {
      const child = start(["web", dir]);
      let out = "";
      for await (const line of child.lines) out += line;
      await child.ended;
      assert.match(out, /^OptionsError spool: this runtime has no file system/);
      assert.deepEqual(fs.readdirSync(dir), [], "nothing was made");
    }));
});
