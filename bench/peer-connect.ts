// peer-connect: what a user waits for. Two peer CLIs are spawned at once against a signaling
// server on loopback; the time runs from spawn until BOTH have reported their data channel open.
// Each peer is started the ways users start it: from source (`npm run peer:*`), from the bundles
// and from the single executable of `npm run build`. Baseline: the same runtimes bare (`node -e ''`,
// `deno eval ''`), two spawned at once, until both exit. Also the connect phase on its own (peer
// found → channel open, from each peer's own timings) and each peer's peak RSS (VmHWM), read from
// /proc when it prints its summary, just before it exits.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { startServer, type RunningServer } from "../server/server.ts";
import { DIST, ensureBuilt } from "../scripts/dist.ts";
import { ROOT, loopbackFlags, watchProcess } from "../scripts/peer-process.ts";
import { bare, builtinsOnly, builtinsRequiredBy, LAUNCHERS, type Launcher, type Runtime } from "./launchers.ts";
import type { Benchmark, BenchResult, Measurement } from "./report.ts";
import { median } from "./stats.ts";

/** Offerer first. */
const CASES: readonly (readonly [Launcher, Launcher])[] = [
  [LAUNCHERS.nodeSource, LAUNCHERS.nodeSource],
  [LAUNCHERS.nodeBundle, LAUNCHERS.nodeBundle],
  [LAUNCHERS.executable, LAUNCHERS.executable],
  [LAUNCHERS.denoSource, LAUNCHERS.denoSource],
  [LAUNCHERS.denoBundle, LAUNCHERS.denoBundle],
  [LAUNCHERS.executable, LAUNCHERS.denoBundle],
];
const RUN_LIMIT_MS = 45_000;
const MB = 1024 * 1024;

/** The steps of the connect phase, as each peer times them (ms since it started). */
type Timings = Partial<Record<"peerFound" | "offer" | "answer" | "iceConnected" | "dtlsConnected" | "channelOpen", number>>;

interface ConnectRun {
  /** Spawn → both channels open. */
  readonly ms: number;
  /** Per peer, spawn → the peer's own clock started (its modules are loaded). */
  readonly startupMs: readonly number[];
  /** Per peer, its own timings from its summary. */
  readonly timings: readonly Timings[];
  /** Per peer, VmHWM in bytes when it printed its summary (undefined if the process was gone). */
  readonly hwm: readonly (number | undefined)[];
}

export const peerConnect: Benchmark = {
  name: "peer-connect",
  async run({ runs, progress }): Promise<BenchResult> {
    const started = performance.now();
    progress("peer-connect: building dist/ if a source is newer");
    await ensureBuilt();
    const server = await startServer({ host: "127.0.0.1", port: 0, tls: null, stunPort: 0 });
    try {
      const connects = new Map<string, ConnectRun[]>(CASES.map((c) => [label(c), []]));
      const baselines = new Map<string, number[]>(CASES.map((c) => [label(c), []]));
      const floors = new Map<string, number[]>(CASES.map((c) => [label(c), []]));
      const builtins = builtinsRequiredBy(DIST.denoBundle);
      progress("peer-connect: one unmeasured run per case (fills tsx's and Deno's caches)");
      for (const pair of CASES) {
        await connectOnce(server, pair, `warm-${label(pair)}`);
        await spawnBaseline(pair);
        await spawnBaseline(pair, builtins);
      }
      for (let run = 1; run <= runs; run++) {
        for (const pair of CASES) {
          progress(`peer-connect: run ${run}/${runs}, ${label(pair)}`);
          baselines.get(label(pair))!.push(await spawnBaseline(pair));
          floors.get(label(pair))!.push(await spawnBaseline(pair, builtins));
          connects.get(label(pair))!.push(await connectOnce(server, pair, `run-${run}-${label(pair)}`));
        }
      }
      const measurements: Measurement[] = [];
      for (const pair of CASES) {
        const list = connects.get(label(pair))!;
        const ours = list.map((r) => r.ms);
        const base = baselines.get(label(pair))!;
        const startup = list.flatMap((r) => r.startupMs);
        measurements.push({
          metric: `${label(pair)} spawn→both open`,
          unit: "ms",
          ours: median(ours),
          baselines: [
            { name: bareLabel(pair), value: median(base) },
            { name: `${bareLabel(pair)} + built-ins`, value: median(floors.get(label(pair))!) },
          ],
          detail: `${ours.length} runs: ours ${range(ours)} ms, baseline ${range(base)} ms; each peer spent a median ${Math.round(median(startup))} ms starting up before its first event`,
        });
        const phase = list.flatMap((r) => r.timings.map((t) => t.channelOpen! - t.peerFound!));
        const steps = `${describeSteps("offerer", OFFERER_STEPS, list.map((r) => r.timings[0]!))}; ${describeSteps("answerer", ANSWERER_STEPS, list.map((r) => r.timings[1]!))}`;
        measurements.push({ metric: `${label(pair)} peer found→open`, unit: "ms", ours: median(phase), baselines: [], detail: steps });
      }
      for (const launcher of new Set(CASES.flat())) {
        const peaks = [...connects.entries()].flatMap(([name, list]) =>
          list.flatMap((r) => r.hwm.filter((_, i) => sideNames(name)[i] === launcher.name)).filter((v): v is number => v !== undefined),
        );
        if (peaks.length === 0) continue;
        measurements.push({
          metric: `${launcher.name} peer peak RSS`,
          unit: "MB",
          ours: median(peaks) / MB,
          baselines: [{ name: `${launcher.runtime} doing nothing`, value: (await barePeakRss(launcher.runtime)) / MB }],
          detail: `median VmHWM of ${peaks.length} peers before exit (max ${(Math.max(...peaks) / MB).toFixed(0)} MB)`,
        });
      }
      return {
        name: "peer-connect",
        setup: `two peer CLIs spawned at once with loopback flags and --messages 1, server on 127.0.0.1; median of ${runs} runs per case after one unmeasured run`,
        measurements,
        notes: [
          `baseline: the same two runtimes bare, spawned at once, until both exit (node -e '' / deno eval --quiet ''): no tsx, no program`,
          `+ built-ins: the same, each loading only the ${builtins.length} built-in modules the peer's program requires (${builtins.join(", ")}); Deno also imports node:module and node:vm as the Deno bundle does, under the peer's V8 flags. No peer on grpc-js and werift starts faster`,
          "peer found→open: per peer, from the other peer found (offerer) or its offer received (answerer) to the channel open; steps per side, each from its own clock",
          "RSS baseline: VmHWM of the bare runtime (it reads /proc/self/status and exits)",
        ],
        seconds: (performance.now() - started) / 1000,
      };
    } finally {
      await server.shutdown(1_000);
    }
  },
};

function label([a, b]: readonly [Launcher, Launcher]): string {
  return `${a.name}↔${b.name}`;
}

function sideNames(name: string): string[] {
  return name.split("↔");
}

function bareLabel([a, b]: readonly [Launcher, Launcher]): string {
  return a.runtime === b.runtime ? `2× bare ${a.runtime}` : `bare ${a.runtime} + ${b.runtime}`;
}

function range(values: readonly number[]): string {
  return `${Math.round(Math.min(...values))}–${Math.round(Math.max(...values))}`;
}

type Step = readonly [keyof Timings, keyof Timings, string];

/** The offerer's connect phase: peer found → offer delivered → answer in → ICE → DTLS → open. */
const OFFERER_STEPS: readonly Step[] = [
  ["peerFound", "offer", "offer sent"],
  ["offer", "answer", "answer back"],
  ["answer", "iceConnected", "ICE"],
  ["iceConnected", "dtlsConnected", "DTLS"],
  ["dtlsConnected", "channelOpen", "SCTP+channel"],
];

/** The answerer's: offer in (its peer found) → answer delivered → ICE → DTLS → open. */
const ANSWERER_STEPS: readonly Step[] = [
  ["peerFound", "answer", "answer sent"],
  ["answer", "iceConnected", "ICE"],
  ["iceConnected", "dtlsConnected", "DTLS"],
  ["dtlsConnected", "channelOpen", "SCTP+channel"],
];

/** Where one side's connect phase goes, step by step (medians). */
function describeSteps(side: string, steps: readonly Step[], timings: readonly Timings[]): string {
  const parts = steps.map(([from, to, name]) => {
    const values = timings.flatMap((t) => (t[from] !== undefined && t[to] !== undefined ? [t[to]! - t[from]!] : []));
    return values.length === 0 ? `${name} ?` : `${name} ${Math.round(median(values))}`;
  });
  return `${side}, ms: ${parts.join(", ")}`;
}

async function connectOnce(server: RunningServer, pair: readonly [Launcher, Launcher], room: string): Promise<ConnectRun> {
  const address = `http://127.0.0.1:${server.port}`;
  const flags = loopbackFlags(address, `bench-${process.pid}-${room.replace(/[^\w.-]/g, "-")}`, ["--messages", "1"]);
  const start = performance.now();
  const openAt: (number | undefined)[] = [undefined, undefined];
  const startupMs: number[] = [];
  const timings: Timings[] = [{}, {}];
  const hwm: (number | undefined)[] = [undefined, undefined];
  const peers = pair.map((launcher, i) => {
    const role = i === 0 ? "offerer" : "answerer";
    const child = spawn(launcher.command, [...launcher.prefix, "--role", role, ...flags], { cwd: ROOT, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
    return watchProcess(child, (line) => {
      const now = performance.now();
      const event = parseEvent(line);
      if (!event) return;
      if (startupMs[i] === undefined && typeof event.t === "number") startupMs[i] = now - start - event.t;
      if (event.event === "data-channel-state" && event.state === "open" && openAt[i] === undefined) openAt[i] = now - start;
      if (event.event === "summary") {
        hwm[i] = peakRss(child.pid);
        timings[i] = (event.timingsMs ?? {}) as Timings;
      }
    });
  });
  const timer = setTimeout(() => peers.forEach((p) => p.child.kill("SIGKILL")), RUN_LIMIT_MS);
  const codes = await Promise.all(peers.map((p) => p.exited));
  clearTimeout(timer);
  const [a, b] = openAt;
  if (a === undefined || b === undefined || codes.some((code) => code !== 0)) {
    const why = peers.map((p, i) => `${pair[i]!.name} exit ${codes[i]}: ${p.stderr.slice(-3).join(" | ") || p.lines.slice(-1).join("")}`).join("; ");
    throw new Error(`peer-connect ${label(pair)}: the channels did not both open (${why})`);
  }
  return { ms: Math.max(a, b), startupMs, timings, hwm };
}

function parseEvent(line: string): { t?: unknown; event?: unknown; state?: unknown; timingsMs?: unknown } | undefined {
  try {
    return JSON.parse(line) as { t?: unknown; event?: unknown; state?: unknown; timingsMs?: unknown };
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

/** Spawns both runtimes bare, or each loading `builtins` (the floor); ms until both have exited. */
async function spawnBaseline(pair: readonly [Launcher, Launcher], builtins?: readonly string[]): Promise<number> {
  const start = performance.now();
  await Promise.all(pair.map((launcher) => runCommand(builtins ? builtinsOnly(launcher.runtime, builtins) : bare(launcher.runtime, ""))));
  return performance.now() - start;
}

/** VmHWM of the bare runtime, as it reports it itself just before exiting. */
async function barePeakRss(runtime: Runtime): Promise<number> {
  const code =
    runtime === "node"
      ? `process.stdout.write(require("node:fs").readFileSync("/proc/self/status", "utf8"))`
      : `console.log(Deno.readTextFileSync("/proc/self/status"))`;
  const match = /^VmHWM:\s+(\d+) kB/m.exec(await runBare(runtime, code));
  if (!match) throw new Error(`peer-connect: no VmHWM in the bare ${runtime}'s /proc/self/status`);
  return Number(match[1]) * 1024;
}

export function runBare(runtime: Runtime, code: string): Promise<string> {
  return runCommand(bare(runtime, code));
}

/** Its stdout, once it has exited 0. */
function runCommand({ command, args }: { command: string; args: string[] }): Promise<string> {
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
