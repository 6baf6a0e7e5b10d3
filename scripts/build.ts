// `npm run build`: dist/ice-test.mjs (one file with every dependency inside, for Node ≥ 20),
// dist/ice-test-deno.mjs (the Deno peer, with its own code cache: scripts/deno-bundle.ts) and
// dist/ice-test (a Linux executable: the Node running this build with the program injected as a
// single-executable application, so the target machine needs no Node). `--js` builds the two
// bundles only.
//
// The Node outputs carry the program as one CommonJS bundle in a string, run through node:vm with a
// V8 code cache made by running it once here (scripts/code-cache.ts): a peer then deserializes its
// code instead of compiling 2.6 MB of JavaScript at every start.
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { build, type BuildOptions } from "esbuild";
import { makeCodeCache, SCRIPT_NAME, wrapProgram } from "./code-cache.ts";
import { withoutCommentEnd } from "./comment-safe.ts";
import { buildDenoBundle } from "./deno-bundle.ts";
import { embedProtos } from "./embed-protos.ts";
import { ROOT } from "./peer-process.ts";
import { precompiledGenerators } from "./precompiled-generators.ts";

const DIST = join(ROOT, "dist");
/** Per build: tests that find dist/ stale may start builds at once. */
const WORK = join(DIST, `work-${process.pid}`);
/** The fuse Node's single-executable support looks for (from Node's docs; postject flips it). */
const SEA_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

const common: BuildOptions = {
  bundle: true,
  platform: "node",
  target: "node20",
  // Whitespace and syntax only: werift and grpc-js read some class and function names at run time.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "none",
  logLevel: "warning",
  absWorkingDir: ROOT,
};

/**
 * Both programs, as one CommonJS bundle wrapped in a function (scripts/code-cache.ts). The server
 * reads .proto files (health, reflection) at start: the bundle carries them inside.
 */
async function buildProgram(): Promise<string> {
  const result = await build({
    ...common,
    entryPoints: ["cli/ice-test.ts"],
    plugins: [embedProtos(ROOT), precompiledGenerators(ROOT)],
    format: "cjs",
    write: false,
    outfile: join(WORK, "program.cjs"),
    define: { "import.meta.url": "__iceTestUrl" },
  });
  return withoutCommentEnd(wrapProgram(result.outputFiles[0]!.text));
}

/**
 * dist/ice-test.mjs: an ES module that carries the program and its cache (base64) in block comments
 * and makes require() and its own path from import.meta.url. A function's source text is a slice of
 * the module's source, not a copy: carried as string literals, the program and the cache were held
 * twice (in the source and as literals, +4.8 MB of heap) and the parser had to scan them as strings
 * (~25 ms more than comments for `--version`).
 */
function esmLauncher(program: string, cache: Buffer): string {
  return [
    "#!/usr/bin/env node",
    "import{createRequire}from'node:module';import{Script}from'node:vm';import{dirname}from'node:path';import{fileURLToPath}from'node:url';import{Buffer}from'node:buffer';",
    "const text=(f)=>{const s=String(f);return s.slice(s.indexOf('/*')+2,s.lastIndexOf('*/'))};",
    "const filename=fileURLToPath(import.meta.url),require=createRequire(import.meta.url),mod={exports:{}};",
    // Not held in constants: the decoded cache is garbage once V8 has read it.
    `new Script(text(function(){/*${program}*/}),{filename:${JSON.stringify(SCRIPT_NAME)},cachedData:Buffer.from(text(function(){/*${cache.toString("base64")}*/}),'base64')})`,
    ".runInThisContext()(mod.exports,require,mod,filename,dirname(filename),import.meta.url);",
    "",
  ].join("\n");
}

/**
 * dist/ice-test's script: the program and its cache are assets of the executable, read once (a
 * script holding them as literals would keep a second copy of the program in memory); its
 * require() loads built-in modules, all the program needs.
 */
const SEA_LAUNCHER = [
  "const{getAsset}=require('node:sea');const{Script}=require('node:vm');const{dirname}=require('node:path');const{pathToFileURL}=require('node:url');",
  "const filename=process.execPath,mod={exports:{}};",
  `new Script(getAsset('program','utf8'),{filename:${JSON.stringify(SCRIPT_NAME)},cachedData:Buffer.from(getAsset('cache'))}).runInThisContext()(mod.exports,require,mod,filename,dirname(filename),pathToFileURL(filename).href);`,
  "",
].join("\n");

async function buildNodeOutputs(jsOnly: boolean): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  const program = await buildProgram();
  const programFile = join(WORK, "program.js");
  writeFileSync(programFile, program);
  const cacheFile = await makeCodeCache(programFile, WORK, (text) => process.stderr.write(`build: ${text}\n`));
  const bundle = join(DIST, "ice-test.mjs");
  writeFileSync(bundle, esmLauncher(program, readFileSync(cacheFile)));
  chmodSync(bundle, 0o755);
  if (!jsOnly) buildExecutable({ program: programFile, cache: cacheFile });
}

function buildDeno(): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  return buildDenoBundle(common, WORK, join(DIST, "ice-test-deno.mjs"), (text) => process.stderr.write(`build: ${text}\n`));
}

/**
 * A single-executable application runs one CommonJS script (the launcher) and carries assets: the
 * blob Node makes of them is injected into a copy of this Node binary. Node's own `useCodeCache`
 * is off: the launcher is three lines, and the program brings its own cache.
 */
function buildExecutable(assets: { readonly program: string; readonly cache: string }): void {
  const scriptFile = join(WORK, "ice-test.cjs");
  writeFileSync(scriptFile, SEA_LAUNCHER);
  const blob = join(WORK, "sea-prep.blob");
  const config = join(WORK, "sea-config.json");
  writeFileSync(config, JSON.stringify({ main: scriptFile, output: blob, disableExperimentalSEAWarning: true, useCodeCache: false, assets }));
  run(["--experimental-sea-config", config]);
  const injected = join(WORK, "ice-test");
  copyFileSync(process.execPath, injected);
  // postject's ELF library warns about note sections it does not know; they are harmless.
  run([join(ROOT, "node_modules/postject/dist/cli.js"), injected, "NODE_SEA_BLOB", blob, "--sentinel-fuse", SEA_FUSE]);
  // postject writes the 100 MB file in one write. Run from that file, a peer had 12 MB more of it
  // resident (55.6 MB of file pages instead of 43.1; same bytes, Linux 6.18, ext4), most likely
  // because the page cache then holds it in large folios and each page fault maps a whole one.
  // A copy made with copyFileSync does not do that.
  const executable = join(DIST, "ice-test");
  rmSync(executable, { force: true });
  copyFileSync(injected, executable);
  chmodSync(executable, 0o755);
}

/** Runs a script with this Node; its chatter is shown only when it fails. */
function run(args: string[]): void {
  try {
    execFileSync(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: Buffer; stderr?: Buffer };
    throw new Error(`node ${args.join(" ")} failed:\n${stdout ?? ""}${stderr ?? ""}`, { cause: err });
  }
}

async function main(): Promise<void> {
  const jsOnly = process.argv.includes("--js");
  mkdirSync(DIST, { recursive: true });
  // The bundles carry werift as node_modules has it: make sure that is the patched werift.
  run([join(ROOT, "node_modules/patch-package/index.js"), "--error-on-fail"]);
  try {
    await Promise.all([buildNodeOutputs(jsOnly), buildDeno()]);
  } finally {
    rmSync(WORK, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`build: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
