// The ways a peer is started, for the benchmarks: from source as `npm run peer:*` does, from the
// bundles and from the single executable that `npm run build` makes; and each runtime bare, or
// loading only the built-in modules the peer's program requires.
import { readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { DENO_PERMISSIONS, DENO_V8_FLAGS, ROOT } from "../scripts/peer-process.ts";
import { DIST } from "../scripts/dist.ts";

export type Runtime = "node" | "deno";

export interface Launcher {
  readonly name: string;
  readonly runtime: Runtime;
  readonly command: string;
  /** Arguments before the peer's own flags. */
  readonly prefix: readonly string[];
}

const DENO = `${ROOT}node_modules/deno/deno`;

export const LAUNCHERS = {
  nodeSource: { name: "node+tsx", runtime: "node", command: process.execPath, prefix: ["--import", "tsx", "client-node/main.ts"] },
  nodeBundle: { name: "node bundle", runtime: "node", command: process.execPath, prefix: [DIST.bundle, "peer"] },
  executable: { name: "executable", runtime: "node", command: DIST.executable, prefix: ["peer"] },
  denoSource: { name: "deno", runtime: "deno", command: DENO, prefix: ["run", "--quiet", ...DENO_V8_FLAGS, ...DENO_PERMISSIONS, "client-deno/main.ts"] },
  denoBundle: { name: "deno bundle", runtime: "deno", command: DENO, prefix: ["run", "--quiet", ...DENO_V8_FLAGS, ...DENO_PERMISSIONS, DIST.denoBundle] },
} as const satisfies Record<string, Launcher>;

/** The runtime with nothing to do: `node -e ''`, `deno eval ''`, no loader, no program. */
export function bare(runtime: Runtime, code = ""): { command: string; args: string[] } {
  return runtime === "node" ? { command: process.execPath, args: ["-e", code] } : { command: DENO, args: ["eval", "--quiet", ...DENO_PERMISSIONS, code] };
}

/** The built-in modules (`crypto`, `http2`, …) that a bundled program require()s, read from its text. */
export function builtinsRequiredBy(bundleFile: string): string[] {
  const names = new Set<string>();
  for (const match of readFileSync(bundleFile, "utf8").matchAll(/require\("(?:node:)?([a-z0-9_/]+)"\)/g)) names.add(match[1]!);
  return [...names].filter((name) => builtinModules.includes(name)).sort();
}

/**
 * The runtime loading those modules and nothing else: the least that any peer built on grpc-js and
 * werift pays before its first line runs. Deno implements them in JavaScript, loaded on first
 * use (and the Deno bundle's launcher imports node:module and node:vm); under the peer's V8 flags.
 */
export function builtinsOnly(runtime: Runtime, modules: readonly string[]): { command: string; args: string[] } {
  const list = JSON.stringify(modules.map((name) => `node:${name}`));
  if (runtime === "node") return bare("node", `for (const name of ${list}) require(name)`);
  const code = `import { createRequire } from "node:module"; import "node:vm"; const require = createRequire(import.meta.url); for (const name of ${list}) require(name);`;
  return { command: DENO, args: ["eval", "--quiet", ...DENO_V8_FLAGS, ...DENO_PERMISSIONS, code] };
}
