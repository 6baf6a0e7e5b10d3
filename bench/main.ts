// `npm run bench [-- NAME… --json --runs N]`: runs every benchmark, or the ones named, in order.
// The table goes to stdout; with --json stdout gets exactly one JSON object and the table goes to
// stderr with the progress lines, so `npm run bench -- --json > out.json` keeps both.
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { peerConnect } from "./peer-connect.ts";
import { redisRelay } from "./redis-relay.ts";
import { relayLatency } from "./relay-latency.ts";
import { renderTable, toJson, type Benchmark, type BenchResult } from "./report.ts";
import { serverCpu } from "./server-cpu.ts";
import { startup } from "./startup.ts";
import { setAsideStartupTaxes } from "./startup-tax.ts";
import { streamMemory } from "./stream-memory.ts";

const BENCHMARKS: readonly Benchmark[] = [relayLatency, serverCpu, streamMemory, startup, peerConnect, redisRelay];
const DEFAULT_RUNS = 5;

const USAGE = `Usage: npm run bench -- [NAME…] [--json] [--runs N] [--keep-env]
  NAME        one of ${BENCHMARKS.map((b) => b.name).join(", ")} (default: all)
  --json      print one JSON object on stdout (the table goes to stderr)
  --runs N    repetitions of each peer-connect case (startup: twice as many) [default: ${DEFAULT_RUNS}]
  --keep-env  keep NODE_EXTRA_CA_CERTS for every process (by default only startup's own row has it)`;

function parse(argv: string[]): { selected: Benchmark[]; json: boolean; runs: number; keepEnv: boolean } | string {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { json: { type: "boolean" }, runs: { type: "string" }, "keep-env": { type: "boolean" }, help: { type: "boolean", short: "h" } },
    });
  } catch (err) {
    return `${(err as Error).message}\n${USAGE}`;
  }
  const { values, positionals } = parsed;
  if (values.help) return USAGE;
  const runs = values.runs === undefined ? DEFAULT_RUNS : Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) return `--runs must be a whole number of at least 1, not "${values.runs}"\n${USAGE}`;
  const unknown = positionals.filter((name) => !BENCHMARKS.some((b) => b.name === name));
  if (unknown.length > 0) return `Unknown benchmark "${unknown[0]}"\n${USAGE}`;
  const selected = positionals.length === 0 ? [...BENCHMARKS] : BENCHMARKS.filter((b) => positionals.includes(b.name));
  return { selected, json: values.json === true, runs, keepEnv: values["keep-env"] === true };
}

async function main(): Promise<number> {
  const options = parse(process.argv.slice(2));
  if (typeof options === "string") {
    process.stderr.write(`${options}\n`);
    return options === USAGE ? 0 : 2;
  }
  const startedAt = new Date().toISOString();
  const progress = (line: string) => void process.stderr.write(`… ${line}\n`);
  const machine = { node: process.versions.node, platform: `${process.platform} ${process.arch}`, cpus: cpus().length, cpu: cpus()[0]?.model };
  const loadBefore = loadavg()[0]!;
  progress(`node ${machine.node}, ${machine.cpus} × ${machine.cpu ?? "unknown CPU"}, load average ${loadBefore.toFixed(1)}`);
  const setAside = options.keepEnv ? [] : setAsideStartupTaxes(process.env);
  for (const { name, value } of setAside) progress(`${name}=${value} set aside: it slows every Node start-up (startup measures by how much; --keep-env keeps it)`);
  const results: BenchResult[] = [];
  const failed: string[] = [];
  for (const benchmark of options.selected) {
    try {
      results.push(await benchmark.run({ runs: options.runs, progress, setAside }));
    } catch (err) {
      // One broken benchmark should not hide the others' results.
      failed.push(benchmark.name);
      process.stderr.write(`${benchmark.name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    }
  }
  const load = { before: Number(loadBefore.toFixed(2)), after: Number(loadavg()[0]!.toFixed(2)) };
  // Other work on the machine inflates absolute numbers and makes ratios noisier: say so. The
  // benchmarks keep about two processes busy themselves, hence the laxer limit afterwards.
  const busy = load.before > machine.cpus || load.after > 2 * machine.cpus;
  const warning = busy ? `Machine busy: 1-min load average ${load.before} before, ${load.after} after, on ${machine.cpus} CPUs; absolute numbers are inflated and ratios noisier than usual.\n` : "";
  const table = renderTable(results) + warning;
  if (options.json) {
    process.stderr.write(`${table}\n`);
    process.stdout.write(`${toJson(results, { machine: { ...machine, loadAverage: load }, startedAt, failed, setAside: setAside.map(({ name }) => name) })}\n`);
  } else {
    process.stdout.write(`\n${table}\n`);
  }
  if (failed.length > 0) process.stderr.write(`Failed: ${failed.join(", ")}\n`);
  return failed.length > 0 ? 1 : 0;
}

process.exitCode = await main();
