// Starts a peer CLI as its own process, the way a user would, for the demo and the tests.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

export type PeerRuntime = "node" | "deno";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The narrowest Deno permissions that work (see client-deno/main.ts). */
export const DENO_PERMISSIONS = ["--allow-net", "--allow-env", "--allow-read", "--allow-sys=networkInterfaces"];

/**
 * V8 in lite mode for the Deno peer (`npm run peer:deno`, the README's command for the Deno bundle):
 * peak RSS ~12 MB lower (no optimizing compilers, smaller heap), no slower to connect (a peer's
 * code runs a few times, never long enough for optimized code to pay off). The Deno bundle's code
 * cache is made under these flags; V8 ignores it under others.
 */
export const DENO_V8_FLAGS = ["--v8-flags=--lite-mode"];

/** How a peer starts, when not the way `npm run peer:node` starts it. */
export interface PeerLaunch {
  /** The command line of a Node peer before its flags (the tests' bundle) instead of client-node/main.ts under tsx. */
  readonly node?: readonly string[];
}

export function peerCommand(runtime: PeerRuntime, args: readonly string[], launch: PeerLaunch = {}): { command: string; args: string[] } {
  if (runtime === "node" && launch.node) return { command: launch.node[0]!, args: [...launch.node.slice(1), ...args] };
  return sourceCommand(runtime, runtime === "node" ? "client-node/main.ts" : "client-deno/main.ts", args);
}

/**
 * A TypeScript module of this repository (path from ROOT) run from source the way the peer is: tsx
 * on Node, Deno with the peer's flags. `preload` runs before it (node --import, deno --preload).
 */
export function sourceCommand(runtime: PeerRuntime, module: string, args: readonly string[] = [], preload?: string): { command: string; args: string[] } {
  if (runtime === "node") return { command: process.execPath, args: ["--import", "tsx", ...(preload ? ["--import", `./${preload}`] : []), module, ...args] };
  const preloading = preload ? ["--preload", preload] : [];
  return { command: `${ROOT}node_modules/deno/deno`, args: ["run", "--quiet", ...DENO_V8_FLAGS, ...DENO_PERMISSIONS, ...preloading, module, ...args] };
}

/** Flags every peer of a test, the demo or a benchmark needs: loopback only, quick, bounded (a later flag in `extra` wins). */
export function loopbackFlags(signalingAddr: string, room: string, extra: readonly string[] = []): string[] {
  return ["--signaling-addr", signalingAddr, "--room", room, "--bind", "127.0.0.1", "--messages", "3", "--timeout", "30s", "--wait", "20s", "--json", ...extra];
}

export interface PeerProcess {
  readonly child: ChildProcess;
  /** Every stdout line so far. */
  readonly lines: string[];
  readonly stderr: string[];
  /** Resolves with the exit code (signals count as 128 + n). */
  readonly exited: Promise<number>;
}

export function spawnPeer(runtime: PeerRuntime, args: readonly string[], onLine?: (line: string) => void, launch: PeerLaunch = {}): PeerProcess {
  const { command, args: argv } = peerCommand(runtime, args, launch);
  const child = spawn(command, argv, { cwd: ROOT, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
  return watchProcess(child, onLine);
}

/** Collects a child's output lines (both streams go to `onLine` too) and its exit code. */
export function watchProcess(child: ChildProcess, onLine?: (line: string) => void): PeerProcess {
  const lines: string[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stdout! }).on("line", (line) => {
    lines.push(line);
    onLine?.(line);
  });
  createInterface({ input: child.stderr! }).on("line", (line) => {
    stderr.push(line);
    onLine?.(line);
  });
  const exited = new Promise<number>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => resolve(code ?? 128 + (signal ? signalNumber(signal) : 0)));
  });
  return { child, lines, stderr, exited };
}

function signalNumber(signal: NodeJS.Signals): number {
  return signal === "SIGINT" ? 2 : signal === "SIGTERM" ? 15 : signal === "SIGKILL" ? 9 : 0;
}
