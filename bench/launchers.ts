// The ways a peer is started, for the benchmarks: from source as `npm run peer:*` does, from the
// bundles and from the single executable that `npm run build` makes; and each runtime bare.
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
