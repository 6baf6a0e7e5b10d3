// relay-latency: how long a trickled ICE candidate takes through our server, from A's SendMessage
// call until B's Subscribe stream yields it, next to the same trip through a minimal relay and a
// raw unary echo. Servers run in their own processes; the three are measured in interleaved
// rounds, so a slow patch of the machine hits all of them alike.
import type { Benchmark, BenchResult, Measurement } from "./report.ts";
import { echoClient, openPair } from "./relay-clients.ts";
import { startServerProcess } from "./server-process.ts";
import { spread, type Spread } from "./stats.ts";

const WARM_UP = 500;
const ROUNDS = 5;
const PER_ROUND = 1_000;

export const relayLatency: Benchmark = {
  name: "relay-latency",
  async run({ progress }): Promise<BenchResult> {
    const started = performance.now();
    const [ours, minimal] = await Promise.all([startServerProcess("ours"), startServerProcess("minimal")]);
    const closers: (() => void)[] = [];
    try {
      const oursPair = await openPair(ours.address, "bench-latency");
      closers.push(() => oursPair.close());
      const minimalPair = await openPair(minimal.address, "bench-latency");
      closers.push(() => minimalPair.close());
      const echo = echoClient(minimal.address);
      closers.push(() => echo.close());

      const subjects: [string, () => Promise<number>][] = [
        ["ours", () => oursPair.relay()],
        ["minimal relay", () => minimalPair.relay()],
        ["raw unary echo", () => echo.echo()],
      ];
      const samples = new Map<string, number[]>(subjects.map(([name]) => [name, []]));
      progress(`relay-latency: warm-up, ${WARM_UP} each`);
      for (const [, once] of subjects) await repeat(WARM_UP, once);
      for (let round = 1; round <= ROUNDS; round++) {
        progress(`relay-latency: round ${round}/${ROUNDS}, ${PER_ROUND} sequential messages each`);
        for (const [name, once] of subjects) samples.get(name)!.push(...(await repeat(PER_ROUND, once)));
      }
      const [o, m, e] = subjects.map(([name]) => spread(samples.get(name)!)) as [Spread, Spread, Spread];
      const row = (metric: string, pick: (s: Spread) => number): Measurement => ({
        metric,
        unit: "ms",
        ours: pick(o),
        baselines: [
          { name: "raw unary echo", value: pick(e) },
          { name: "minimal relay", value: pick(m) },
        ],
      });
      return {
        name: "relay-latency",
        setup: `send→arrival of an ICE candidate A→B through the server, ${o.count} sequential messages after ${WARM_UP} warm-up; servers in child processes, loopback`,
        measurements: [
          row("p50", (s) => s.p50),
          row("p90", (s) => s.p90),
          { ...row("p99", (s) => s.p99), detail: `max (single outliers, no ratio): ours ${ms(o.max)}, echo ${ms(e.max)}, minimal relay ${ms(m.max)}` },
        ],
        notes: [
          `baselines: raw unary echo = grpc-js unary returning the request bytes (same payload size); minimal relay = SendMessage does a map lookup and writes to the recipient's Subscribe stream (same protocol and codecs as ours)`,
        ],
        seconds: (performance.now() - started) / 1000,
      };
    } finally {
      closers.forEach((close) => close());
      await Promise.all([ours.stop(), minimal.stop()]);
    }
  },
};

function ms(value: number): string {
  return `${value.toFixed(1)} ms`;
}

async function repeat(count: number, once: () => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(await once());
  return out;
}
