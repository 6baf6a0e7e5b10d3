// dist/ice-test-deno.mjs: the Deno peer as one ES module that carries the program and a V8 code
// cache for it. Deno caches code for the modules it loads, but only what V8 compiled when the module
// was instantiated (its top level): every werift and grpc-js function a peer runs was still
// compiled lazily, on the path from start to channel open. So, as scripts/code-cache.ts does for
// Node, the program is a classic script run through node:vm, and the build runs it once in a
// loopback session under the Deno of node_modules, with the V8 flags users run it with
// (DENO_V8_FLAGS), and keeps what the offerer compiled. The cache fits that Deno and those flags
// only; any other Deno, or other flags, and V8 compiles the program as before.
import { execFileSync, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { build, type BuildOptions } from "esbuild";
import { warmUpPeers } from "./code-cache.ts";
import { DENO_PERMISSIONS, DENO_V8_FLAGS, ROOT, watchProcess } from "./peer-process.ts";

const DENO = join(ROOT, "node_modules/deno/deno");

/** Builds the bundle; `warn` says why it carries no cache when the warm-up cannot run here. */
export async function buildDenoBundle(common: BuildOptions, workDir: string, out: string, warn: (text: string) => void): Promise<void> {
  const result = await build({ ...common, entryPoints: ["client-deno/main.ts"], format: "cjs", write: false, outfile: join(workDir, "deno-program.cjs") });
  // What a CommonJS module gets, handed in by the launcher: werift and grpc-js require() Node's built-ins.
  const program = `function ${PROGRAM}(exports, require, module, __filename, __dirname) {${result.outputFiles[0]!.text}\n}`;
  const programFile = join(workDir, "deno-program.js");
  writeFileSync(programFile, program);
  const cacheFile = join(workDir, "deno-program.cache");
  let cache: Buffer | undefined;
  try {
    await warmUp(programFile, cacheFile, workDir);
    cache = readFileSync(cacheFile);
  } catch (err) {
    warn(`the Deno bundle carries no code cache: the warm-up session failed (${err instanceof Error ? err.message : String(err)})`);
  }
  writeFileSync(out, launcher(program, cache, denoVersion()));
}

/** The program's name in the bundle, and in the warm-up's Script. */
const PROGRAM = "iceTestDenoProgram";

/**
 * The module users run. The program is a function declaration in it that the module never calls:
 * its source text (Function.prototype.toString, a view of the module's own source, not a copy) is
 * the Script node:vm compiles with the cache, the same text the warm-up compiled. The cache is in
 * a comment, read the same way. As string literals, each would be a second copy of megabytes in
 * memory (measured: +2.3 MB peak RSS). `Uint8Array.fromBase64` exists in the Deno that made the
 * cache, the only one that reads it.
 */
function launcher(program: string, cache: Buffer | undefined, version: string): string {
  const cacheOpen = "function iceTestDenoCache(){/*";
  return [
    "import{createRequire}from'node:module';import{Script}from'node:vm';",
    `const cache=Deno.version.deno===${JSON.stringify(version)}?iceTestDenoCache.toString().slice(${cacheOpen.length},-3):"";`,
    `new Script(${PROGRAM}.toString(),{filename:import.meta.filename,cachedData:cache?Uint8Array.fromBase64(cache):undefined}).runInThisContext();`,
    `const mod={exports:{}};globalThis.${PROGRAM}(mod.exports,createRequire(import.meta.url),mod,import.meta.filename,import.meta.dirname);`,
    `${cacheOpen}${cache?.toString("base64") ?? ""}*/}`,
    program,
    "",
  ].join("\n");
}

/** What the launcher runs, for the warm-up: the same Script source, so the cache fits it. */
const RUNNER = `import { createRequire } from "node:module";
import { Script } from "node:vm";
const programFile = Deno.env.get("ICE_TEST_WARM_UP_PROGRAM");
const cacheOut = Deno.env.get("ICE_TEST_WARM_UP_CACHE");
const script = new Script(Deno.readTextFileSync(programFile), { filename: programFile });
// The peer ends with Deno.exit, which dispatches "unload".
if (cacheOut) globalThis.addEventListener("unload", () => Deno.writeFileSync(cacheOut, script.createCachedData()));
script.runInThisContext();
const mod = { exports: {} };
globalThis.${PROGRAM}(mod.exports, createRequire(import.meta.url), mod, programFile, ${JSON.stringify(ROOT)});
`;

/** A server in this process and two Deno peers on loopback; the offerer writes its cache to `cacheFile`. */
async function warmUp(programFile: string, cacheFile: string, workDir: string): Promise<void> {
  const runner = join(workDir, "deno-warm-up.mjs");
  writeFileSync(runner, RUNNER);
  const { startServer } = await import("../server/server.ts");
  const server = await startServer({ host: "127.0.0.1", port: 0, tls: null, stunPort: 0 });
  try {
    const address = `http://127.0.0.1:${server.port}`;
    await warmUpPeers(address, `deno-warm-up-${process.pid}`, (role, flags) => {
      const cacheOut = role === "offerer" ? [`--allow-write=${cacheFile}`] : [];
      const env = { ...process.env, NO_COLOR: "1", ICE_TEST_WARM_UP_PROGRAM: programFile, ...(role === "offerer" ? { ICE_TEST_WARM_UP_CACHE: cacheFile } : {}) };
      return watchProcess(spawn(DENO, ["run", "--quiet", ...DENO_V8_FLAGS, ...DENO_PERMISSIONS, ...cacheOut, runner, "--role", role, ...flags], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] }));
    });
  } finally {
    await server.shutdown(1_000);
  }
}

/** "2.9.6": the version the cache is made for. */
function denoVersion(): string {
  const output = execFileSync(DENO, ["--version"], { encoding: "utf8" });
  const version = /^deno (\S+)/m.exec(output)?.[1];
  if (!version) throw new Error(`cannot tell the version of ${DENO}: ${output}`);
  return version;
}
