// server-cpu: CPU time the server process spends per relayed message (SendMessage in, one write on
// the recipient's stream out), next to a minimal relay and a raw unary echo. Each server runs in
// its own process and reports process.cpuUsage() (user + system), so the clients' CPU stays out.
// Measured one at a time (sequential: every message pays its own wake-ups) and with 16 in flight
// (grpc-js batches reads and writes), in interleaved rounds.
import type { Benchmark, BenchResult, Measurement } from "./report.ts";
import { echoClient, openPair, pipeline } from "./relay-clients.ts";
import { startServerProcess, type ServerProcess } from "./server-process.ts";

const WARM_UP = 1_000;
const ROUNDS = 3;
const PER_ROUND = 2_000;
const WINDOWS = [1, 16] as const;

interface Subject {
  readonly name: string;
  readonly server: ServerProcess;
  /** Runs `count` operations, `window` at a time, and resolves when every one is complete. */
  readonly drive: (count: number, window: number) => Promise<void>;
}

export const serverCpu: Benchmark = {
  name: "server-cpu",
  async run({ progress }): Promise<BenchResult> {
    const started = performance.now();
    const [ours, minimal] = await Promise.all([startServerProcess("ours"), startServerProcess("minimal")]);
    const closers: (() => void)[] = [];
    try {
      const subjects: Subject[] = [];
      for (const [name, server] of [
        ["ours", ours],
        ["minimal relay", minimal],
      ] as const) {
        const pair = await openPair(server.address, "bench-cpu");
        closers.push(() => pair.close());
        let sent = 0;
        subjects.push({
          name,
          server,
          drive: async (count, window) => {
            // Sequential: each message waits for its arrival. In flight: arrivals are awaited at the end.
            await pipeline(count, window, () => (window === 1 ? pair.relay() : pair.send()));
            sent += count;
            await pair.arrived(sent);
          },
        });
      }
      const echo = echoClient(minimal.address);
      closers.push(() => echo.close());
      subjects.push({ name: "raw unary echo", server: minimal, drive: (count, window) => pipeline(count, window, () => echo.echo()) });

      progress(`server-cpu: warm-up, ${WARM_UP} each`);
      for (const subject of subjects) await subject.drive(WARM_UP, 16);
      const micros = new Map<string, number>();
      for (let round = 1; round <= ROUNDS; round++) {
        for (const window of WINDOWS) {
          progress(`server-cpu: round ${round}/${ROUNDS}, ${PER_ROUND} operations each, ${window} in flight`);
          for (const subject of subjects) {
            const before = await subject.server.cpuMicros();
            await subject.drive(PER_ROUND, window);
            const after = await subject.server.cpuMicros();
            const key = `${subject.name}/${window}`;
            micros.set(key, (micros.get(key) ?? 0) + (after - before));
          }
        }
      }
      const perOp = (name: string, window: number) => micros.get(`${name}/${window}`)! / (ROUNDS * PER_ROUND);
      const measurements: Measurement[] = WINDOWS.map((window) => ({
        metric: window === 1 ? "CPU/op, sequential" : `CPU/op, ${window} in flight`,
        unit: "µs",
        ours: perOp("ours", window),
        baselines: [
          { name: "raw unary echo", value: perOp("raw unary echo", window) },
          { name: "minimal relay", value: perOp("minimal relay", window) },
        ],
      }));
      return {
        name: "server-cpu",
        setup: `server process CPU (user+system) per operation, ${ROUNDS * PER_ROUND} operations per case after ${WARM_UP} warm-up; op = one relayed ICE candidate (ours, minimal relay) or one unary echo`,
        measurements,
        notes: [
          "sequential: every message pays its own event-loop wake-ups, as on a quiet server; 16 in flight: grpc-js and the kernel batch work across messages",
        ],
        seconds: (performance.now() - started) / 1000,
      };
    } finally {
      closers.forEach((close) => close());
      await Promise.all([ours.stop(), minimal.stop()]);
    }
  },
};
