// Test hosts in network namespaces (../shared/tools/netns-host.sh, Linux, root), each running
// the fake OpenTSDB of fake_tsd.mjs on port 4242. A partition takes the host's link down:
// packets are dropped and no RST is sent, as when a host loses power or a network splits.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import process from "node:process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { helperDir } from "./fault_servers.ts";

function checkout(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "deno.json"))) dir = dirname(dir);
  return dir;
}

const script = join(checkout(), "..", "shared", "tools", "netns-host.sh");

/** Why namespaces cannot be made here, or `undefined` when they can. */
export function netnsUnavailable(): string | undefined {
  if (!existsSync(script)) return `no ${script}`;
  const probe = spawnSync("bash", [script, "available"]);
  return probe.status === 0 ? undefined : "network namespaces need root and iproute2 (CI runs as root)";
}

/** A test host with a fake TSD on it. */
export interface TestHost {
  /** The host's address, as the script printed it. */
  address: string;
  /** The TSD's port there. */
  port: number;
  /** The put lines the TSD received so far. */
  puts(): string[];
  /** Takes the host's link down (no RST). */
  partition(): void;
  /** Brings it back. */
  heal(): void;
  /** Stops the TSD and removes the host. */
  destroy(): Promise<void>;
}

function run(...args: string[]): string {
  const r = spawnSync("bash", [script, ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`netns-host.sh ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.trim();
}

/** A host number (1..250) whose 10.254.N.0/30 no interface here uses yet (suites may run side by side). */
function freeHostNumber(): number {
  const used = spawnSync("ip", ["-o", "-4", "addr", "show"], { encoding: "utf8" }).stdout ?? "";
  const start = process.pid % 250;
  for (let i = 0; i < 250; i++) {
    const n = ((start + i) % 250) + 1;
    if (!used.includes(` 10.254.${n}.1/`)) return n;
  }
  throw new Error("no free 10.254.N.0/30 for a test host");
}

/**
 * Makes host `name` (unique per test) with a fake TSD that answers `version` when `answer`
 * is set.
 */
export async function startTestHost(name: string, answer: boolean): Promise<TestHost> {
  run("destroy", name); // a leftover of a killed run
  const address = run("create", name, String(freeHostNumber()));
  const dir = mkdtempSync(join(tmpdir(), "potsdb-netns-"));
  const out = join(dir, "puts.txt");
  const tsd = fileURLToPath(new URL("./fake_tsd.mjs", helperDir()));
  let child: ChildProcess | undefined;
  const destroy = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child!.once("exit", r));
      child.kill("SIGKILL");
      await exited;
    }
    run("destroy", name);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    child = spawn(
      "bash",
      [script, "exec", name, "node", tsd, "--host", "0.0.0.0", "--port", "4242", "--out", out].concat(
        answer ? ["--answer"] : [],
      ),
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    await new Promise<void>((resolve, reject) => {
      child!.stdout!.once("data", () => resolve());
      child!.once("exit", (code) => reject(new Error(`the fake TSD on ${name} exited with ${code}`)));
    });
  } catch (e) {
    await destroy();
    throw e;
  }
  return {
    address,
    port: 4242,
    puts: () => existsSync(out) ? readFileSync(out, "latin1").split("\n").filter((l) => l !== "") : [],
    partition: () => run("partition", name),
    heal: () => run("heal", name),
    destroy,
  };
}
