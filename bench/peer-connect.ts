// peer-connect: what a user waits for. Both peer CLIs are spawned at once against a signaling
// server on loopback; the time runs from spawn until BOTH have reported their data channel open.
// Baseline: the same runtimes, spawned the same way (two at once, same flags), with nothing to do.
// Also each peer's peak RSS (VmHWM), read from /proc when its channel opens and again when it
// prints its summary, just before it exits.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { startServer, type RunningServer } from "../server/server.ts";
import { DENO_PERMISSIONS, ROOT, loopbackFlags, spawnPeer, type PeerRuntime } from "../scripts/peer-process.ts";
import type { Benchmark, BenchResult, Measurement } from "./report.ts";
import { median } from "./stats.ts";

/** Offerer first. Node↔Deno has the Node peer offer, as in `npm run demo`. */
const CASES: readonly (readonly [PeerRuntime, PeerRuntime])[] = [
  ["node", "node"],
  ["deno", "deno"],
  ["node", "deno"],
];
const RUN_LIMIT_MS = 45_000;
const MB = 1024 * 1024;

interface ConnectRun {
  /** Spawn → both channels open. */
  readonly ms: number;
  /** Per peer, spawn → the peer's own clock started (its modules are loaded): the `t` of its first line subtracted from when we read it. */
  readonly startupMs: readonly number[];
  /** Per peer, VmHWM in bytes at channel open and at summary (undefined if the process was gone). */
  readonly hwmOpen: readonly (number | undefined)[];
  readonly hwmExit: readonly (number | undefined)[];
}

export const peerConnect: Benchmark = {
  name: "peer-connect",
  async run({ runs, progress }): Promise<BenchResult> {
    const started = performance.now();
    const server = await startServer({ host: "127.0.0.1", port: 0, tls: null, stunPort: 0 });
    try {
      const connects = new Map<string, ConnectRun[]>(CASES.map((c) => [label(c), []]));
      const baselines = new Map<string, number[]>(CASES.map((c) => [label(c), []]));
      progress("peer-connect: one unmeasured run per case (fills tsx's and Deno's compile caches)");
      for (const pair of CASES) {
        await connectOnce(server, pair, `warm-${label(pair)}`);
        await spawnIdle(pair);
      }
      for (let run = 1; run <= runs; run++) {
        for (const pair of CASES) {
          progress(`peer-connect: run ${run}/${runs}, ${label(pair)}`);
          baselines.get(label(pair))!.push(await spawnIdle(pair));
          connects.get(label(pair))!.push(await connectOnce(server, pair, `run-${run}-${label(pair)}`));
        }
      }
      const idleHwm = { node: await idlePeakRss("node"), deno: await idlePeakRss("deno") };

      const measurements: Measurement[] = [];
      for (const pair of CASES) {
        const ours = connects.get(label(pair))!.map((r) => r.ms);
        const base = baselines.get(label(pair))!;
        const startup = connects.get(label(pair))!.flatMap((r) => r.startupMs);
        measurements.push({
          metric: `${label(pair)} spawn→both open`,
          unit: "ms",
          ours: median(ours),
          baselines: [{ name: `${idleLabel(pair)}`, value: median(base) }],
          detail: `${ours.length} runs: ours ${range(ours)} ms, baseline ${range(base)} ms; each peer spent a median ${Math.round(median(startup))} ms starting up before its first event`,
        });
      }
      for (const runtime of ["node", "deno"] as const) {
        const peers = [...connects.entries()].flatMap(([name, list]) =>
          list.flatMap((r) => sides(name).flatMap((side, i) => (side === runtime ? [{ open: r.hwmOpen[i], exit: r.hwmExit[i] }] : []))),
        );
        const exit = peers.map((p) => p.exit ?? p.open).filter((v): v is number => v !== undefined);
        const open = peers.map((p) => p.open).filter((v): v is number => v !== undefined);
        if (exit.length === 0) continue;
        measurements.push({
          metric: `${runtime} peer peak RSS`,
          unit: "MB",
          ours: median(exit) / MB,
          baselines: [{ name: `${runtime} doing nothing`, value: idleHwm[runtime] / MB }],
          detail: `median VmHWM of ${exit.length} ${runtime} peers before exit (max ${(Math.max(...exit) / MB).toFixed(0)} MB); at channel open ${(median(open) / MB).toFixed(0)} MB`,
        });
      }
      return {
        name: "peer-connect",
        setup: `two peer CLIs spawned at once with loopback flags and --messages 1, server on 127.0.0.1; median of ${runs} runs per case after one unmeasured run`,
        measurements,
        notes: [
          `baseline: the same two runtimes spawned at once with the same flags and nothing to do (node --import tsx -e '' / deno eval --quiet ${DENO_PERMISSIONS.join(" ")} ''), until both exit`,
          `RSS baseline: VmHWM of that runtime with nothing to do (it reads /proc/self/status and exits)`,
        ],
        seconds: (performance.now() - started) / 1000,
      };
    } finally {
      await server.shutdown(1_000);
    }
  },
};

function label([a, b]: readonly [PeerRuntime, PeerRuntime]): string {
  return `${a}↔${b}`;
}

function sides(name: string): PeerRuntime[] {
  return name.split("↔") as PeerRuntime[];
}

function idleLabel([a, b]: readonly [PeerRuntime, PeerRuntime]): string {
  return a === b ? `2× ${a} idle` : `${a} + ${b} idle`;
}

function range(values: readonly number[]): string {
  return `${Math.round(Math.min(...values))}–${Math.round(Math.max(...values))}`;
}

async function connectOnce(server: RunningServer, pair: readonly [PeerRuntime, PeerRuntime], room: string): Promise<ConnectRun> {
  const address = `http://127.0.0.1:${server.port}`;
  const flags = loopbackFlags(address, `bench-${process.pid}-${room.replace(/[^\w.-]/g, "-")}`, ["--messages", "1"]);
  const start = performance.now();
  const openAt: (number | undefined)[] = [undefined, undefined];
  const startupMs: number[] = [];
  const hwmOpen: (number | undefined)[] = [undefined, undefined];
  const hwmExit: (number | undefined)[] = [undefined, undefined];
  const peers = pair.map((runtime, i) => {
    const role = i === 0 ? "offerer" : "answerer";
    const peer = spawnPeer(runtime, ["--role", role, ...flags], (line) => {
      const now = performance.now();
      const event = parseEvent(line);
      if (!event) return;
      if (startupMs[i] === undefined && typeof event.t === "number") startupMs[i] = now - start - event.t;
      if (event.event === "data-channel-state" && event.state === "open" && openAt[i] === undefined) {
        openAt[i] = now - start;
        hwmOpen[i] = peakRss(peer.child.pid);
      }
      if (event.event === "summary") hwmExit[i] = peakRss(peer.child.pid);
    });
    return peer;
  });
  const timer = setTimeout(() => peers.forEach((p) => p.child.kill("SIGKILL")), RUN_LIMIT_MS);
  const codes = await Promise.all(peers.map((p) => p.exited));
  clearTimeout(timer);
  const [a, b] = openAt;
  if (a === undefined || b === undefined || codes.some((code) => code !== 0)) {
    const why = peers.map((p, i) => `${pair[i]} exit ${codes[i]}: ${p.stderr.slice(-3).join(" | ") || p.lines.slice(-1).join("")}`).join("; ");
    throw new Error(`peer-connect ${label(pair)}: the channels did not both open (${why})`);
  }
  return { ms: Math.max(a, b), startupMs, hwmOpen, hwmExit };
}

function parseEvent(line: string): { t?: unknown; event?: unknown; state?: unknown } | undefined {
  try {
    return JSON.parse(line) as { t?: unknown; event?: unknown; state?: unknown };
  } catch {
    return undefined;
  }
}

/** VmHWM of a live process in bytes; undefined once it has exited. */
function peakRss(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** How the peer CLI starts each runtime, minus the program: what starting costs before any work. */
function idleCommand(runtime: PeerRuntime, code: string): { command: string; args: string[] } {
  return runtime === "node"
    ? { command: process.execPath, args: ["--import", "tsx", "-e", code] }
    : { command: `${ROOT}node_modules/deno/deno`, args: ["eval", "--quiet", ...DENO_PERMISSIONS, code] };
}

/** Spawns both runtimes with nothing to do; ms until both have exited. */
async function spawnIdle(pair: readonly [PeerRuntime, PeerRuntime]): Promise<number> {
  const start = performance.now();
  await Promise.all(pair.map((runtime) => runIdle(runtime, "")));
  return performance.now() - start;
}

/** VmHWM of the runtime with nothing to do, as it reports it itself just before exiting. */
async function idlePeakRss(runtime: PeerRuntime): Promise<number> {
  const code =
    runtime === "node"
      ? `process.stdout.write(require("node:fs").readFileSync("/proc/self/status", "utf8"))`
      : `console.log(Deno.readTextFileSync("/proc/self/status"))`;
  const match = /^VmHWM:\s+(\d+) kB/m.exec(await runIdle(runtime, code));
  if (!match) throw new Error(`peer-connect: no VmHWM in the idle ${runtime}'s /proc/self/status`);
  return Number(match[1]) * 1024;
}

function runIdle(runtime: PeerRuntime, code: string): Promise<string> {
  const { command, args } = idleCommand(runtime, code);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    const out: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
    child.once("error", reject);
    child.once("close", (exitCode) =>
      exitCode === 0 ? resolve(Buffer.concat(out).toString("utf8")) : reject(new Error(`${command} ${args.join(" ")} exited with ${exitCode}`)),
    );
  });
}
