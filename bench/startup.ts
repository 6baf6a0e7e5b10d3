// startup: `ice-test --version` and `ice-test peer --version` from each way of starting it, against
// the bare runtime started the same way, one at a time. Neither evaluates werift or grpc-js (the
// peer imports its session once it has one to run): what a peer's modules cost shows in
// peer-connect's "starting up before its first event".
import { spawn } from "node:child_process";
import { ensureBuilt } from "../scripts/dist.ts";
import { ROOT } from "../scripts/peer-process.ts";
import { bare, LAUNCHERS, type Launcher } from "./launchers.ts";
import type { Benchmark, BenchResult, Measurement } from "./report.ts";
import type { StartupTax } from "./startup-tax.ts";
import { median } from "./stats.ts";

/** The dispatcher itself: `--version` loads neither program. */
const TOP_LEVEL: readonly [string, string, readonly string[]][] = [
  ["executable --version", LAUNCHERS.executable.command, ["--version"]],
  ["node bundle --version", process.execPath, [LAUNCHERS.nodeBundle.prefix[0], "--version"]],
  ["node+tsx --version", process.execPath, ["--import", "tsx", "cli/ice-test.ts", "--version"]],
];
const PEERS: readonly Launcher[] = [LAUNCHERS.executable, LAUNCHERS.nodeBundle, LAUNCHERS.nodeSource, LAUNCHERS.denoBundle, LAUNCHERS.denoSource];

export const startup: Benchmark = {
  name: "startup",
  async run({ runs, progress, setAside }): Promise<BenchResult> {
    const started = performance.now();
    await ensureBuilt();
    const times = Math.max(3, runs * 2);
    const cases: Case[] = [
      ["bare node", bare("node").command, bare("node").args],
      ...setAside.map((tax): Case => [taxLabel(tax), bare("node").command, bare("node").args, { [tax.name]: tax.value }]),
      ["bare deno", bare("deno").command, bare("deno").args],
      ...TOP_LEVEL,
      ...PEERS.map((l): Case => [`${l.name} peer --version`, l.command, [...l.prefix, "--version"]]),
    ];
    // Round-robin, so a change in the machine's load hits every case alike.
    const samples = new Map<string, number[]>(cases.map(([name]) => [name, []]));
    for (let i = 0; i <= times; i++) {
      progress(`startup: round ${i}/${times}${i === 0 ? " (unmeasured: fills page, tsx and Deno caches)" : ""}`);
      for (const [name, command, args, env] of cases) {
        const ms = await timeRun(command, args, env);
        if (i > 0) samples.get(name)!.push(ms);
      }
    }
    const of = (name: string) => samples.get(name)!;
    const bareNode = { name: "bare node -e ''", value: median(of("bare node")) };
    const bareDeno = { name: "bare deno eval ''", value: median(of("bare deno")) };
    const runtimeOf = (name: string) => (name.startsWith("deno") ? bareDeno : bareNode);
    const measurements: Measurement[] = cases
      .filter(([name]) => !name.startsWith("bare"))
      .map(([name]) => ({ metric: name, unit: "ms", ours: median(of(name)), baselines: [runtimeOf(name)], detail: spread(of(name)) }));
    return {
      name: "startup",
      setup: `spawn → exit, one process at a time, round-robin over the cases, median of ${times} rounds after one unmeasured round`,
      measurements,
      notes: [
        "neither --version evaluates werift or grpc-js; the bundle and the executable deserialize their whole code cache either way (scripts/code-cache.ts)",
        "ratio: the time over the bare runtime's, both measured in this run",
        ...setAside.map((tax) => `every other row runs without ${tax.name}: Node 20 parses that file as each process starts (--keep-env keeps it everywhere)`),
      ],
      seconds: (performance.now() - started) / 1000,
    };
  },
};

/** A name, the command, its arguments, and variables added to the bench's environment. */
type Case = [string, string, readonly string[], Record<string, string>?];

function taxLabel(tax: StartupTax): string {
  return `node -e '' with ${tax.name}=${tax.value}`;
}

function spread(samples: readonly number[]): string {
  return `${samples.length} runs, ${Math.round(Math.min(...samples))}–${Math.round(Math.max(...samples))} ms`;
}

function timeRun(command: string, args: readonly string[], env: Record<string, string> = {}): Promise<number> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "inherit"] });
    child.once("error", reject);
    child.once("close", (code) => (code === 0 ? resolve(performance.now() - start) : reject(new Error(`${command} ${args.join(" ")} exited with ${code}`))));
  });
}
