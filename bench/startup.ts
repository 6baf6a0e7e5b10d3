// startup: `ice-test --version` and `ice-test peer --version` (which loads werift and grpc-js)
// from each way of starting it, against the bare runtime started the same way, one at a time.
import { spawn } from "node:child_process";
import { ensureBuilt } from "../scripts/dist.ts";
import { ROOT } from "../scripts/peer-process.ts";
import { bare, LAUNCHERS, type Launcher } from "./launchers.ts";
import type { Benchmark, BenchResult, Measurement } from "./report.ts";
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
  async run({ runs, progress }): Promise<BenchResult> {
    const started = performance.now();
    await ensureBuilt();
    const times = Math.max(3, runs * 2);
    const measure = async (command: string, args: readonly string[]) => {
      await timeRun(command, args); // warm the page cache and tsx's and Deno's caches
      const samples: number[] = [];
      for (let i = 0; i < times; i++) samples.push(await timeRun(command, args));
      return samples;
    };
    progress("startup: bare runtimes");
    const bareNode = median(await measure(bare("node").command, bare("node").args));
    const bareDeno = median(await measure(bare("deno").command, bare("deno").args));
    const measurements: Measurement[] = [];
    for (const [name, command, args] of TOP_LEVEL) {
      progress(`startup: ${name}`);
      const samples = await measure(command, args);
      measurements.push({ metric: name, unit: "ms", ours: median(samples), baselines: [{ name: "bare node -e ''", value: bareNode }], detail: spread(samples) });
    }
    for (const launcher of PEERS) {
      progress(`startup: ${launcher.name} peer --version`);
      const samples = await measure(launcher.command, [...launcher.prefix, "--version"]);
      const base = launcher.runtime === "node" ? { name: "bare node -e ''", value: bareNode } : { name: "bare deno eval ''", value: bareDeno };
      measurements.push({ metric: `${launcher.name} peer --version`, unit: "ms", ours: median(samples), baselines: [base], detail: spread(samples) });
    }
    return {
      name: "startup",
      setup: `spawn → exit, one process at a time, median of ${times} after one unmeasured run`,
      measurements,
      notes: ["peer --version loads the whole peer (werift, grpc-js) before it answers; plain --version loads neither"],
      seconds: (performance.now() - started) / 1000,
    };
  },
};

function spread(samples: readonly number[]): string {
  return `${samples.length} runs, ${Math.round(Math.min(...samples))}–${Math.round(Math.max(...samples))} ms`;
}

function timeRun(command: string, args: readonly string[]): Promise<number> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] });
    child.once("error", reject);
    child.once("close", (code) => (code === 0 ? resolve(performance.now() - start) : reject(new Error(`${command} ${args.join(" ")} exited with ${code}`))));
  });
}
