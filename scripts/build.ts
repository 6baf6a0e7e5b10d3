// `npm run build`: dist/ice-test.mjs (one ES module with every dependency inside, for Node ≥ 20),
// dist/ice-test-deno.mjs (the Deno peer, bundled the same way) and dist/ice-test (a Linux
// executable: the Node running this build with the program injected as a single-executable
// application, so the target machine needs no Node). `--js` builds the two bundles only.
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { build, type BuildOptions } from "esbuild";
import { embedProtos } from "./embed-protos.ts";
import { leanWerift } from "./lean-werift.ts";
import { ROOT } from "./peer-process.ts";

const DIST = join(ROOT, "dist");
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

/** The server reads .proto files (health, reflection) at start: its bundles carry them inside. */
const serverPlugins = [embedProtos(ROOT), leanWerift(ROOT)];

/** Bundled CommonJS packages call require(); an ES module has none, so make one. */
const ESM_REQUIRE = "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);";

async function buildNodeBundle(): Promise<void> {
  await build({ ...common, entryPoints: ["cli/ice-test.ts"], plugins: serverPlugins, format: "esm", outfile: join(DIST, "ice-test.mjs"), banner: { js: `#!/usr/bin/env node\n${ESM_REQUIRE}` } });
  chmodSync(join(DIST, "ice-test.mjs"), 0o755);
}

async function buildDenoBundle(): Promise<void> {
  await build({ ...common, entryPoints: ["client-deno/main.ts"], plugins: [leanWerift(ROOT)], format: "esm", outfile: join(DIST, "ice-test-deno.mjs"), banner: { js: ESM_REQUIRE } });
}

/**
 * A single-executable application runs one CommonJS script, so the program is bundled again as
 * CommonJS (import.meta.url becomes the executable's own path), turned into a blob by Node, and
 * injected into a copy of this Node binary.
 */
async function buildExecutable(): Promise<void> {
  const work = join(DIST, "sea");
  mkdirSync(work, { recursive: true });
  const script = join(work, "ice-test.cjs");
  await build({
    ...common,
    entryPoints: ["cli/ice-test.ts"],
    plugins: serverPlugins,
    format: "cjs",
    outfile: script,
    define: { "import.meta.url": "__iceTestUrl" },
    banner: { js: "const __iceTestUrl=require('node:url').pathToFileURL(process.execPath).href;" },
  });
  const blob = join(work, "sea-prep.blob");
  const config = join(work, "sea-config.json");
  writeFileSync(config, JSON.stringify({ main: script, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }));
  run(["--experimental-sea-config", config]);
  const executable = join(DIST, "ice-test");
  rmSync(executable, { force: true });
  copyFileSync(process.execPath, executable);
  chmodSync(executable, 0o755);
  // postject's ELF library warns about note sections it does not know; they are harmless.
  run([join(ROOT, "node_modules/postject/dist/cli.js"), executable, "NODE_SEA_BLOB", blob, "--sentinel-fuse", SEA_FUSE]);
  rmSync(work, { recursive: true, force: true });
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
  await Promise.all([buildNodeBundle(), buildDenoBundle()]);
  if (!jsOnly) await buildExecutable();
}

main().catch((err: unknown) => {
  process.stderr.write(`build: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
