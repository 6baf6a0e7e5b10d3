// The parent's handle on a server running in bench/server-child.ts: its port, and its CPU time and
// memory on request. The child's own bookkeeping (two IPC messages per reading) is noise next to
// thousands of calls.
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { ROOT } from "../scripts/peer-process.ts";

export type ServerKind = "ours" | "minimal" | "redis";

export type ChildRequest = { id: number; cmd: "cpu" | "memory" | "stop" };
export type ChildReply = {
  id: number;
  port?: number;
  cpuMicros?: number;
  memory?: NodeJS.MemoryUsage;
  error?: string;
};

export interface ServerProcess {
  readonly kind: ServerKind;
  /** "127.0.0.1:PORT" */
  readonly address: string;
  /** user + system CPU time of the server process so far, in µs. */
  cpuMicros(): Promise<number>;
  /** Memory after full garbage collections. */
  memory(): Promise<NodeJS.MemoryUsage>;
  /** Shuts the server down and waits for the process to exit. */
  stop(): Promise<void>;
}

const START_LIMIT_MS = 30_000;
const CHILD = fileURLToPath(new URL("./server-child.ts", import.meta.url));

/** `args`: what the kind needs (the Redis URL for "redis"). */
export async function startServerProcess(kind: ServerKind, args: readonly string[] = []): Promise<ServerProcess> {
  const child = fork(CHILD, [kind, ...args], {
    cwd: ROOT,
    execArgv: ["--import", "tsx", "--expose-gc", ...profiling()],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const pending = new Map<number, { resolve: (reply: ChildReply) => void; reject: (err: Error) => void }>();
  let nextId = 1;
  const ready = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`The ${kind} server did not start within ${START_LIMIT_MS / 1000} s`)), START_LIMIT_MS);
    child.on("message", (reply: ChildReply) => {
      if (reply.id === 0 && reply.port !== undefined) {
        clearTimeout(timer);
        resolve(reply.port);
        return;
      }
      const waiter = pending.get(reply.id);
      pending.delete(reply.id);
      if (reply.error) waiter?.reject(new Error(`The ${kind} server failed: ${reply.error}`));
      else waiter?.resolve(reply);
    });
    void exited.then(() => {
      clearTimeout(timer);
      const gone = new Error(`The ${kind} server process exited`);
      reject(gone);
      for (const waiter of pending.values()) waiter.reject(gone);
      pending.clear();
    });
  });
  const ask = (cmd: ChildRequest["cmd"]) =>
    new Promise<ChildReply>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      child.send({ id, cmd } satisfies ChildRequest);
    });
  let port: number;
  try {
    port = await ready;
  } catch (err) {
    kill(child);
    throw err;
  }
  let stopping: Promise<void> | undefined;
  return {
    kind,
    address: `127.0.0.1:${port}`,
    cpuMicros: async () => (await ask("cpu")).cpuMicros!,
    memory: async () => (await ask("memory")).memory!,
    stop: () => {
      stopping ??= (async () => {
        const timer = setTimeout(() => kill(child), 5_000);
        await ask("stop").catch(() => kill(child));
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}

/** BENCH_CPU_PROF=DIR: each server writes a V8 CPU profile there when it exits (Node refuses --cpu-prof in NODE_OPTIONS). */
function profiling(): string[] {
  const dir = process.env.BENCH_CPU_PROF;
  return dir ? ["--cpu-prof", `--cpu-prof-dir=${dir}`] : [];
}

function kill(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}
