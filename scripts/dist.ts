// The build outputs, for the tests and the benchmarks: where they are, and a build when a source
// file is newer than they are (or they are missing), so nobody measures or tests a stale binary.
import { execFile } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { withBuildLock } from "./build-lock.ts";
import { ROOT } from "./peer-process.ts";

export const DIST = {
  bundle: join(ROOT, "dist/ice-test.mjs"),
  denoBundle: join(ROOT, "dist/ice-test-deno.mjs"),
  executable: join(ROOT, "dist/ice-test"),
};

const SOURCES = ["cli", "core", "server", "client-node", "client-deno", "gen", "scripts/build.ts", "scripts/embed-protos.ts", "scripts/code-cache.ts", "scripts/comment-safe.ts", "scripts/deno-bundle.ts", "scripts/precompiled-generators.ts", "proto", "node_modules/werift/lib", "package-lock.json"];

/** Why an executable cannot be built here, or false. */
export function executableUnbuildable(): string | false {
  if (process.platform !== "linux") return `single executables are built for Linux only, not ${process.platform}`;
  // Distribution packages of Node (e.g. Debian's) may lack the fuse that makes a binary a SEA.
  if (!readFileSync(process.execPath).includes("NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2")) {
    return `${process.execPath} has no single-executable support (a Node build without the SEA fuse)`;
  }
  return false;
}

/** Builds dist/ unless every output is newer than every source; one build at a time, since tests run in parallel. */
export async function ensureBuilt(): Promise<void> {
  if (fresh()) return;
  await withBuildLock(join(ROOT, "dist/.building"), 10 * 60_000, async () => {
    if (fresh()) return;
    await promisify(execFile)(process.execPath, ["--import", "tsx", "scripts/build.ts"], { cwd: ROOT });
  });
}

function fresh(): boolean {
  const built = Math.min(...Object.values(DIST).map(mtime));
  return SOURCES.every((source) => newest(join(ROOT, source)) < built);
}

function mtime(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

function newest(path: string): number {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((name) => newest(join(path, name))));
}
