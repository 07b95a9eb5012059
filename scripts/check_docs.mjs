#!/usr/bin/env node
// `npm run docs`: every ```ts, ```js and ```sh block of README.md and docs/*.md
// is checked, so that what a reader copies works.
//
// - TypeScript blocks are type-checked twice: with tsc (tsconfig.json's rules) and
//   with `deno check`. Imports of `@x/potsdb…` are mapped to this checkout's
//   sources, `cloudflare:sockets` to a small stand-in.
// - Then they run, against a local VictoriaMetrics started here (scripts/tsdb.ts),
//   on Node 20 (the tsc output), Node 22 and 24 (the block's types stripped by Node, the library
//   built by tsc, as npm ships it), Deno and Bun (the sources).
//   `tsd.example.com` (also `tsd1.…`, `tsd2.…`, with or without a port) stands for
//   that server: its telnet port, or its OpenTSDB HTTP port in a block that uses
//   `httpTransport`. A run passes when the block exits 0 within its time and
//   prints no "Assertion failed" (console.assert).
// - Shell blocks are parsed with `bash -n`; those marked `run` are run with
//   `potsdb` meaning this checkout's CLI (Node 20, tsc output).
//
// A block that cannot be checked everywhere says so in an HTML comment on the
// line right before its fence (reasons in parentheses are shown in the summary):
//
//   <!-- check: deno bun node24 (await using) -->    run on these runtimes only
//   <!-- check: typecheck-only (needs a Worker) -->  type-checked, never run
//   <!-- check: server-down -->                      also run once (Node 24) with the
//                                                   server's address refusing connections
//   <!-- check: run -->                              (sh) run it, not only parse it
//   <!-- check: pending (#23: meters) -->            kept out entirely: a feature not in
//                                                   the code yet; listed in the summary
//   <!-- check: skip (why) -->                       kept out entirely, for good
//
// Prints the counts and exits 1 on any failure.
// Usage: node scripts/check_docs.mjs [-v] [--pending]
//   -v         print each run's time and keep the work directory (.tmp/docs-check-<pid>)
//   --pending  check the blocks marked pending as well (has their feature landed?)
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { availableParallelism } from "node:os";
import { dirname, join, relative } from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const verbose = process.argv.includes("-v");
// --pending: check the blocks marked pending too, to see whether their feature has landed.
const withPending = process.argv.includes("--pending");
const work = join(root, ".tmp", `docs-check-${process.pid}`);
const blocksDir = join(work, "blocks");
const outDir = join(work, "build"); // tsc output: Node 20's runs and the server helper
const RUNTIMES = ["node20", "node22", "node24", "deno", "bun"];
const RUN_TIMEOUT_MS = 30_000;
// Runs wait on the network and on timers as much as they compute: more of them than cores keeps the CPU busy.
const PARALLEL = Number(process.env.DOCS_CHECK_JOBS) || Math.max(4, 3 * availableParallelism());
const bin = (name) => join(root, "node_modules", ".bin", name);
const machineNode = process.env.npm_node_execpath || process.execPath;
const commands = {
  node20: (file) => [machineNode, [file]],
  node22: (file) => [join(root, "node_modules", "node22", "bin", "node"), [file]],
  node24: (file) => [join(root, "node_modules", "node24", "bin", "node"), [file]],
  deno: (file) => [bin("deno"), ["run", "-A", "--quiet", file]],
  bun: (file) => [bin("bun"), ["run", file]],
};

// ---------------------------------------------------------------- extraction

const LANGS = { ts: "ts", typescript: "ts", js: "js", javascript: "js", sh: "sh", bash: "sh", shell: "sh" };
const MARKER = /^\s*<!--\s*check:\s*(.*?)\s*-->\s*$/;

/** Every fenced block of a Markdown file, with the marker right before it. */
function extract(file) {
  const lines = readFileSync(file, "utf8").split("\n");
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)(.*)$/.exec(lines[i]);
    // CommonMark: a backtick fence's info string holds no backtick (else it is inline code).
    if (!open || (open[2][0] === "`" && open[4].includes("`"))) continue;
    const [, indent, fence, lang, flags] = open;
    const body = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      if (lines[j].trim().startsWith(fence) && lines[j].trim().replace(/[`~]/g, "") === "") break;
      body.push(lines[j].startsWith(indent) ? lines[j].slice(indent.length) : lines[j].trimStart());
    }
    if (j === lines.length) throw new Error(`${rel(file)}:${i + 1}: unclosed code fence`);
    let k = i - 1;
    while (k >= 0 && lines[k].trim() === "") k--;
    const marker = k >= 0 ? MARKER.exec(lines[k]) : null;
    blocks.push({
      file: rel(file),
      line: i + 1,
      lang: LANGS[lang.toLowerCase()] ?? (lang || "text"),
      flags: flags.trim(),
      code: body.join("\n") + "\n",
      marker: marker ? parseMarker(marker[1], `${rel(file)}:${k + 1}`) : undefined,
    });
    i = j;
  }
  // A marker must sit right before a block: one anywhere else is a mistake.
  lines.forEach((l, n) => {
    if (MARKER.test(l) && !blocks.some((b) => b.marker?.at === `${rel(file)}:${n + 1}`)) {
      throw new Error(`${rel(file)}:${n + 1}: a check marker must be followed by a code block`);
    }
  });
  return blocks;
}

function parseMarker(text, at) {
  const reason = /\((.*)\)\s*$/.exec(text)?.[1];
  const words = text.replace(/\(.*\)\s*$/, "").trim().split(/\s+/).filter(Boolean);
  const known = new Set([...RUNTIMES, "typecheck-only", "server-down", "run", "pending", "skip"]);
  for (const w of words) if (!known.has(w)) throw new Error(`${at}: unknown check word "${w}"`);
  const marker = {
    at,
    reason,
    pending: words.includes("pending"),
    skip: words.includes("skip"),
    typecheckOnly: words.includes("typecheck-only"),
    serverDown: words.includes("server-down"),
    run: words.includes("run"),
    runtimes: words.filter((w) => RUNTIMES.includes(w)),
  };
  if ((marker.pending || marker.skip || marker.typecheckOnly) && !reason) {
    throw new Error(`${at}: say why in parentheses, e.g. <!-- check: ${words[0]} (needs a Worker) -->`);
  }
  return marker;
}

const rel = (p) => relative(root, p);
const where = (b) => `${b.file}:${b.line}`;

// ---------------------------------------------------------------- preparing files

/** `@x/potsdb` and its subpaths, as deno.json maps them to files. */
const entries = JSON.parse(readFileSync(join(root, "deno.json"), "utf8")).exports;

/**
 * The block's imports of `@x/potsdb…` pointed at this checkout: at the TypeScript sources, or with
 * `compiled` at tsc's output, which is what Node users run (npm and JSR's npm layer ship JavaScript).
 */
function mapImports(code, fromDir, compiled = false) {
  const to = (file) => {
    const target = compiled ? join(outDir, file).replace(/\.ts$/, ".js") : join(root, file);
    const r = relative(fromDir, target).replaceAll("\\", "/");
    return r.startsWith(".") ? r : `./${r}`;
  };
  return code.replace(/(from\s+|import\s*\(\s*|import\s+)(["'])([^"']+)\2/g, (all, head, q, spec) => {
    if (spec === "@x/potsdb" || spec.startsWith("@x/potsdb/")) {
      const key = spec === "@x/potsdb" ? "." : `.${spec.slice("@x/potsdb".length)}`;
      if (!entries[key]) throw new Error(`no export ${spec} in deno.json`);
      return `${head}${q}${to(entries[key])}${q}`;
    }
    if (spec === "cloudflare:sockets") {
      return `${head}${q}${to(rel(join(work, "shims", "cloudflare_sockets.ts")))}${q}`;
    }
    return all;
  });
}

// What a Worker's code names beyond the web platform, just enough to type-check it.
const CLOUDFLARE_SHIM = `// A stand-in for workerd's module, for type-checking documentation only.
export interface SocketAddress { hostname: string; port: number }
export interface SocketOptions { secureTransport?: "off" | "on" | "starttls"; allowHalfOpen?: boolean }
export interface Socket {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
  opened: Promise<unknown>;
  closed: Promise<void>;
  close(): Promise<void>;
  startTls(): Socket;
}
export declare function connect(address: SocketAddress | string, options?: SocketOptions): Socket;
`;
const GLOBALS_SHIM = `// Globals of workerd that documentation blocks name.
declare global {
  interface ExecutionContext {
    waitUntil(promise: Promise<unknown>): void;
    passThroughOnException(): void;
  }
}
export {};
`;

function prepare(blocks) {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(blocksDir, { recursive: true });
  mkdirSync(join(work, "shims"), { recursive: true });
  writeFileSync(join(work, "shims", "cloudflare_sockets.ts"), CLOUDFLARE_SHIM);
  writeFileSync(join(work, "shims", "globals.d.ts"), GLOBALS_SHIM);
  for (const b of blocks) {
    const base = `${b.file.replace(/[^\w]+/g, "_")}_${b.line}`;
    if (b.lang === "ts" || b.lang === "js") {
      b.path = join(blocksDir, `${base}.${b.lang}`);
      const refs = b.code.includes("ExecutionContext")
        ? `/// <reference path="../shims/globals.d.ts" />\n`
        : "";
      // `export {}` makes every block a module of its own, even one without imports.
      writeFileSync(b.path, refs + mapImports(b.code, blocksDir) + "\nexport {};\n");
    } else if (b.lang === "sh") {
      b.path = join(blocksDir, `${base}.sh`);
      writeFileSync(b.path, b.code);
    }
  }
}

// ---------------------------------------------------------------- running things

/** The blocks running now, each in a process group of its own, to end on Ctrl-C. */
const running = new Set();

function runProcess(cmd, args, { env = {}, timeoutMs = RUN_TIMEOUT_MS, cwd = root } = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(cmd, args, {
      cwd,
      // The compile cache spares Node 22 and 24 stripping the sources' types again for every block.
      env: { ...process.env, NODE_COMPILE_CACHE: join(work, "node-cache"), ...env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // its own group, so a timeout ends what it started too
    });
    running.add(child);
    let out = "";
    child.stdout.on("data", (d) => out += d);
    child.stderr.on("data", (d) => out += d);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch { /* gone */ }
    }, timeoutMs);
    child.on("error", (e) => out += String(e));
    child.on("close", (code, signal) => {
      running.delete(child);
      clearTimeout(timer);
      resolve({ code, signal, out, timedOut, ms: Date.now() - started });
    });
  });
}

async function pool(tasks, size) {
  const results = new Array(tasks.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(size, tasks.length) }, async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  }));
  return results;
}

/** A loopback port nothing listens on (probed free a moment ago). */
async function closedPort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function pointAt(code, telnetPort, httpPort) {
  const port = /httpTransport\s*\(/.test(code) ? httpPort : telnetPort;
  return code.replace(/\btsd\d*\.example\.com(:\d+)?/g, `127.0.0.1:${port}`);
}

// ---------------------------------------------------------------- main

const failures = [];
const fail = (what, detail) => {
  failures.push(what);
  console.error(`FAIL ${what}${detail ? `\n${indentText(detail)}` : ""}`);
};
const indentText = (t) => t.trimEnd().split("\n").slice(-40).map((l) => `    ${l}`).join("\n");

async function main() {
  const started = Date.now();
  const files = [join(root, "README.md")];
  const docsDir = join(root, "docs");
  if (existsSync(docsDir)) {
    for (const name of readdirSync(docsDir).sort()) if (name.endsWith(".md")) files.push(join(docsDir, name));
  }
  const all = files.flatMap(extract);
  const brokenLinks = checkLinks(files);
  // Prose about behaviour not in the code yet: `<!-- pending: … -->` (not inside backticks).
  const pendingProse = files.flatMap((f) =>
    readFileSync(f, "utf8").split("\n").flatMap((l, n) =>
      [...l.matchAll(/(?<!`)<!--\s*pending:\s*(.*?)\s*-->/g)].map((m) => `${rel(f)}:${n + 1} ${m[1]}`)
    )
  );
  const code = all.filter((b) => b.lang === "ts" || b.lang === "js" || b.lang === "sh");
  const keptOut = code.filter((b) => (b.marker?.pending && !withPending) || b.marker?.skip);
  const checked = code.filter((b) => !keptOut.includes(b));
  const typed = checked.filter((b) => b.lang === "ts");
  const scripts = checked.filter((b) => b.lang === "js");
  const shells = checked.filter((b) => b.lang === "sh");
  prepare(checked);

  // --- type checks (tsc also builds what Node 20 runs, and the server helper)
  const tsconfig = {
    extends: "../../tsconfig.json",
    compilerOptions: {
      rootDir: "../..",
      outDir: "build",
      declaration: false,
      noEmitOnError: false, // the runs go on, and the type errors fail the check at the end
      lib: ["ES2023", "DOM", "ESNext.Disposable"],
      allowJs: true,
      checkJs: true,
    },
    include: ["blocks/*.ts", "blocks/*.js", "../../scripts/tsdb.ts", "../../cli/potsdb.ts"],
  };
  writeFileSync(join(work, "tsconfig.json"), JSON.stringify(tsconfig, null, 2));
  // deno check takes longest: it goes on while tsc's output runs.
  const denoCheck = typed.length
    ? runProcess(bin("deno"), ["check", "--quiet", ...typed.map((b) => b.path)], { timeoutMs: 120_000 })
    : Promise.resolve({ code: 0, out: "", ms: 0 });
  const tsc = await runProcess(bin("tsc"), ["-p", join(work, "tsconfig.json")], { timeoutMs: 120_000 });
  const blamed = (out) =>
    [...typed, ...scripts].filter((b) => out.includes(relative(root, b.path)) || out.includes(b.path));
  if (tsc.code !== 0) fail(`tsc: ${blamed(tsc.out).map(where).join(", ") || "errors"}`, explain(tsc.out));
  console.log(`tsc: ${tsc.code === 0 ? "ok" : "FAILED"} (${(tsc.ms / 1000).toFixed(1)} s)`);

  // --- shell blocks: parsed, and run when marked
  // A script a block names must exist: `npm run demo` is only true while package.json has it.
  const npmScripts = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).scripts ?? {};
  const denoTasks = JSON.parse(readFileSync(join(root, "deno.json"), "utf8")).tasks ?? {};
  for (const b of shells) {
    const r = spawnSync("bash", ["-n", b.path], { encoding: "utf8" });
    if (r.status !== 0) fail(`bash -n ${where(b)}`, r.stderr);
    const named = [
      ...[...b.code.matchAll(/\bnpm run(?:-script)?\s+([\w:-]+)/g)].map((m) => m[1]),
      ...[...b.code.matchAll(/\bnpm (test)\b/g)].map((m) => m[1]),
    ];
    for (const name of named) {
      if (!npmScripts[name]) fail(`${where(b)}: package.json has no script "${name}"`);
    }
    for (const [, name] of b.code.matchAll(/\bdeno task\s+([\w:-]+)/g)) {
      if (!denoTasks[name]) fail(`${where(b)}: deno.json has no task "${name}"`);
    }
  }

  // --- runs against a local VictoriaMetrics
  const helper = join(outDir, "scripts", "tsdb.js");
  if (!existsSync(helper)) throw new Error(`tsc produced no ${rel(helper)}; see the errors above`);
  const { startTsdb } = await import(pathToFileURL(helper).href);
  process.env.POTSDB_TSDB_TMPDIR ||= join(root, ".tmp");
  // Its "missing `put ` prefix" line for every probe (a `version` it does not understand) is noise here.
  const tsdb = await startTsdb({ flags: ["-loggerLevel=FATAL"] });
  const stopServer = () => tsdb.dispose();
  onSignal = async (code) => {
    endRunning();
    await stopServer();
    rmSync(work, { recursive: true, force: true });
    process.exit(code);
  };
  const counts = Object.fromEntries(RUNTIMES.map((r) => [r, 0]));
  const skipped = []; // [block, why]
  let shellRuns = 0;
  let downRuns = 0;
  try {
    const tasks = [];
    const downPort = await closedPort();
    for (const b of [...typed, ...scripts]) {
      const m = b.marker;
      if (m?.typecheckOnly) {
        skipped.push([b, `typecheck-only (${m.reason})`]);
        continue;
      }
      const runtimes = m?.runtimes.length ? m.runtimes : RUNTIMES;
      const missing = RUNTIMES.filter((r) => !runtimes.includes(r));
      if (missing.length) {
        skipped.push([b, `not on ${missing.join(", ")}${m.reason ? ` (${m.reason})` : ""}`]);
      }
      const source = readFileSync(b.path, "utf8");
      const live = b.path.replace(/\.(ts|js)$/, ".live.$1");
      writeFileSync(live, pointAt(source, tsdb.telnetPort, tsdb.opentsdbHttpPort));
      // Node 22 and 24 strip the block's types themselves and load the library as npm ships it: built.
      const nodeLive = b.path.replace(/\.(ts|js)$/, ".node.live.$1");
      const forNode = mapImports(b.code, blocksDir, true) + "\nexport {};\n";
      writeFileSync(nodeLive, pointAt(forNode, tsdb.telnetPort, tsdb.opentsdbHttpPort));
      const compiled = join(outDir, relative(root, b.path)).replace(/\.ts$/, ".js");
      const compiledLive = compiled.replace(/\.js$/, ".live.js");
      if (runtimes.includes("node20")) {
        if (!existsSync(compiled)) fail(`node20 ${where(b)}: tsc emitted nothing`);
        else {writeFileSync(
            compiledLive,
            pointAt(readFileSync(compiled, "utf8"), tsdb.telnetPort, tsdb.opentsdbHttpPort),
          );}
      }
      for (const r of runtimes) {
        const file = r === "node20" ? compiledLive : r === "node22" || r === "node24" ? nodeLive : live;
        tasks.push(async () => {
          const [cmd, args] = commands[r](file);
          const res = await runProcess(cmd, args);
          judge(`${r} ${where(b)}`, res) && counts[r]++;
          if (verbose) console.log(`  ${r} ${where(b)} ${res.ms} ms`);
        });
      }
      if (m?.serverDown) {
        const down = b.path.replace(/\.(ts|js)$/, ".down.$1");
        writeFileSync(down, pointAt(forNode, downPort, downPort));
        tasks.unshift(async () => { // first: it waits out its deadlines while the others run
          const [cmd, args] = commands.node24(down);
          const res = await runProcess(cmd, args, { timeoutMs: 60_000 });
          if (judge(`server-down node24 ${where(b)}`, res)) downRuns++;
          if (verbose) console.log(`  server-down ${where(b)} ${res.ms} ms`);
        });
      }
    }
    const shimDir = join(work, "bin");
    mkdirSync(shimDir, { recursive: true });
    writeFileSync(
      join(shimDir, "potsdb"),
      `#!/bin/sh\nexec "${machineNode}" "${join(outDir, "cli", "potsdb.js")}" "$@"\n`,
      { mode: 0o755 },
    );
    for (const b of shells) {
      if (!b.marker?.run) {
        skipped.push([b, "sh: parsed only (bash -n); not marked run"]);
        continue;
      }
      const live = b.path.replace(/\.sh$/, ".live.sh");
      writeFileSync(live, "set -e\n" + pointAt(b.code, tsdb.telnetPort, tsdb.opentsdbHttpPort));
      tasks.push(async () => {
        const res = await runProcess("bash", [live], { env: { PATH: `${shimDir}:${process.env.PATH}` } });
        if (judge(`sh ${where(b)}`, res)) shellRuns++;
      });
    }
    await pool(tasks, PARALLEL);
  } finally {
    await stopServer();
  }
  const deno = await denoCheck;
  if (deno.code !== 0) {
    fail(`deno check: ${blamed(deno.out).map(where).join(", ") || "errors"}`, explain(deno.out));
  }
  console.log(`deno check: ${deno.code === 0 ? "ok" : "FAILED"} (${(deno.ms / 1000).toFixed(1)} s)`);

  // --- summary
  const byLang = (l) => code.filter((b) => b.lang === l).length;
  console.log(
    `\ndocs: ${files.length} files, ${all.length} fenced blocks: ${byLang("ts")} ts, ${byLang("js")} js, ` +
      `${byLang("sh")} sh, ${all.length - code.length} other (not checked)`,
  );
  console.log(`type-checked (tsc and deno check): ${typed.length + scripts.length}`);
  console.log(
    `run: ${RUNTIMES.map((r) => `${r} ${counts[r]}`).join(", ")}; server down (node24) ${downRuns}`,
  );
  console.log(`sh: ${shells.length} parsed (bash -n), ${shellRuns} run`);
  if (skipped.length) {
    console.log(`not run everywhere (${skipped.length}):`);
    for (const [b, why] of skipped) console.log(`  ${where(b)} ${why}`);
  }
  if (keptOut.length) {
    console.log(`kept out of the check (${keptOut.length}):`);
    for (const b of keptOut) {
      console.log(`  ${where(b)} ${b.marker.pending ? "pending" : "skip"}: ${b.marker.reason}`);
    }
  }
  for (const link of brokenLinks.filter((l) => !l.pending)) fail(`link ${link.at}: ${link.why}`);
  const waiting = brokenLinks.filter((l) => l.pending);
  if (waiting.length) {
    console.log(`links to pages not written yet (${waiting.length}, each named in a pending note):`);
    for (const l of waiting) console.log(`  ${l.at} ${l.why}`);
  }
  if (pendingProse.length) {
    console.log(`prose marked pending (${pendingProse.length}):`);
    for (const p of pendingProse) console.log(`  ${p}`);
  }
  console.log(`${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (failures.length) {
    console.error(
      `\ndocs check FAILED: ${failures.length} failure(s):\n${failures.map((f) => `  ${f}`).join("\n")}`,
    );
    return 1;
  }
  console.log("docs check ok");
  return 0;
}

/** GitHub's anchor for a heading. */
function slug(heading) {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
}

/** Relative links and their anchors that lead nowhere. A page named in a pending note is awaited, not broken. */
function checkLinks(files) {
  const anchors = new Map();
  const texts = new Map(files.map((f) => [f, readFileSync(f, "utf8")]));
  const anchorsOf = (file) => {
    if (!anchors.has(file)) {
      const text = texts.get(file) ?? readFileSync(file, "utf8");
      const seen = new Map();
      const set = new Set();
      let fence = false;
      for (const line of text.split("\n")) {
        if (/^\s*(```|~~~)/.test(line)) fence = !fence;
        const h = !fence && /^#{1,6}\s+(.*)$/.exec(line);
        if (!h) continue;
        const base = slug(h[1]);
        const n = seen.get(base) ?? 0;
        seen.set(base, n + 1);
        set.add(n ? `${base}-${n}` : base);
      }
      anchors.set(file, set);
    }
    return anchors.get(file);
  };
  const pendingText = [...texts.values()].flatMap((t) =>
    [...t.matchAll(/<!--\s*pending:(.*?)-->/gs)].map((m) => m[1])
  );
  const broken = [];
  for (const [file, text] of texts) {
    text.split("\n").forEach((line, n) => {
      for (const m of line.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1];
        if (/^[a-z]+:/i.test(target)) continue; // http:, mailto:
        const [path, anchor] = target.split("#");
        const at = `${rel(file)}:${n + 1}`;
        const dest = path ? join(dirname(file), path) : file;
        if (!existsSync(dest)) {
          const pending = pendingText.some((p) => p.includes(rel(dest)));
          broken.push({ at, why: `${target}: no such file`, pending });
        } else if (anchor && dest.endsWith(".md") && !anchorsOf(dest).has(anchor)) {
          broken.push({ at, why: `${target}: no heading with that anchor`, pending: false });
        }
      }
    });
  }
  return broken;
}

function judge(what, res) {
  if (res.timedOut) fail(`${what}: no exit within ${RUN_TIMEOUT_MS / 1000} s`, res.out);
  else if (res.code !== 0) fail(`${what}: exit ${res.code ?? res.signal}`, res.out);
  else if (/Assertion failed/.test(res.out)) fail(`${what}: an assertion failed`, res.out);
  else return true;
  return false;
}

/** Compiler output with the temporary paths shown as the Markdown places they came from. */
function explain(out) {
  return out.replace(/[^\s:()]*blocks\/([\w]+)_(\d+)\.(?:live\.)?(ts|js)/g, (_, name, line) => {
    const file = name.replace(/_md$/, ".md").replace(/^docs_/, "docs/");
    return `${file}:${line}(block)`;
  });
}

// Ctrl-C or a CI timeout: the server and the work directory go too.
function endRunning() {
  for (const child of running) {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch { /* gone */ }
  }
}
let onSignal = (code) => {
  endRunning();
  rmSync(work, { recursive: true, force: true });
  process.exit(code);
};
process.on("SIGINT", () => onSignal(130));
process.on("SIGTERM", () => onSignal(143));

let code = 1;
try {
  code = await main();
} catch (e) {
  console.error(`docs check FAILED: ${e.stack ?? e}`);
} finally {
  if (!verbose) rmSync(work, { recursive: true, force: true });
}
process.exit(code);
