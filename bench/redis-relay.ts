// redis-relay: a relayed ICE candidate between two server instances sharing one Redis (A sends to
// instance 1, B's stream is on instance 2), next to the in-memory single instance, the minimal
// relay (relay-latency's floor for one gRPC hop in and one out: it calibrates a run on a busy
// machine) and a raw Redis publish→receive (ioredis, what any cross-process relay through Redis
// pays at least); the servers' CPU per relayed message (both instances plus redis-server, against
// the single instance and the minimal relay); and the memory an idle peer costs an instance with
// Redis. Everything in interleaved rounds of one run.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { startDemoRedis } from "../scripts/demo-redis.ts";
import type { Benchmark, BenchResult, Measurement } from "./report.ts";
import { openPair } from "./relay-clients.ts";
import { startServerProcess, type ServerProcess } from "./server-process.ts";
import { spread, type Spread } from "./stats.ts";

const WARM_UP = 500;
const ROUNDS = 5;
const PER_ROUND = 1_000;
const CLOCK_TICKS_PER_SECOND = 100;

export const redisRelay: Benchmark = {
  name: "redis-relay",
  async run({ progress }): Promise<BenchResult> {
    const started = performance.now();
    const dir = mkdtempSync(join(tmpdir(), "ice-test-bench-redis-"));
    const closers: (() => unknown)[] = [];
    const servers: ServerProcess[] = [];
    try {
      const redis = await startDemoRedis(dir);
      closers.push(redis.stop);
      const redisPid = redis.pid;
      // One after the other: three processes compiling TypeScript at once may take long on a busy machine.
      const single = await startServerProcess("ours");
      servers.push(single);
      const minimal = await startServerProcess("minimal");
      servers.push(minimal);
      const one = await startServerProcess("redis", [redis.url]);
      servers.push(one);
      const two = await startServerProcess("redis", [redis.url]);
      servers.push(two);
      const singlePair = await openPair(single.address, "bench-single");
      closers.push(() => singlePair.close());
      const crossPair = await openPair(one.address, "bench-cross", two.address);
      closers.push(() => crossPair.close());
      const minimalPair = await openPair(minimal.address, "bench-minimal");
      closers.push(() => minimalPair.close());
      const raw = await rawPubSub(redis.url);
      closers.push(raw.close);

      const subjects: [string, () => Promise<number>][] = [
        ["across instances", () => crossPair.relay()],
        ["single instance (memory)", () => singlePair.relay()],
        ["minimal relay", () => minimalPair.relay()],
        ["raw Redis publish→receive", () => raw.once()],
      ];
      const samples = new Map<string, number[]>(subjects.map(([name]) => [name, []]));
      const measured = new Map<string, ServerProcess[]>([
        ["across instances", [one, two]],
        ["single instance (memory)", [single]],
        ["minimal relay", [minimal]],
      ]);
      const cpu = new Map<string, number>([...measured.keys()].map((name) => [name, 0]));
      progress(`redis-relay: warm-up, ${WARM_UP} each`);
      for (const [, once] of subjects) for (let i = 0; i < WARM_UP; i++) await once();
      for (let round = 1; round <= ROUNDS; round++) {
        progress(`redis-relay: round ${round}/${ROUNDS}, ${PER_ROUND} sequential messages each`);
        for (const [name, once] of subjects) {
          const processes = measured.get(name) ?? [];
          const before = await cpuOf(processes, name === "across instances" ? redisPid : undefined);
          const out = samples.get(name)!;
          for (let i = 0; i < PER_ROUND; i++) out.push(await once());
          const after = await cpuOf(processes, name === "across instances" ? redisPid : undefined);
          if (cpu.has(name)) cpu.set(name, cpu.get(name)! + after - before);
        }
      }
      const [cross, mem, least, rawSpread] = subjects.map(([name]) => spread(samples.get(name)!)) as [Spread, Spread, Spread, Spread];
      const row = (metric: string, pick: (s: Spread) => number): Measurement => ({
        metric,
        unit: "ms",
        ours: pick(cross),
        baselines: [
          { name: "single instance (memory)", value: pick(mem) },
          { name: "minimal relay", value: pick(least) },
          { name: "raw Redis publish→receive", value: pick(rawSpread) },
        ],
      });
      const perMessage = (name: string) => cpu.get(name)! / (ROUNDS * PER_ROUND);
      progress("redis-relay: memory per idle peer with Redis");
      const idle = await idlePeerMemory(one);
      return {
        name: "redis-relay",
        setup: `send→arrival of an ICE candidate from a peer on instance 1 to a peer on instance 2 through Redis, ${cross.count} sequential messages after ${WARM_UP} warm-up; servers and redis-server in their own processes, loopback`,
        measurements: [
          row("p50", (s) => s.p50),
          row("p90", (s) => s.p90),
          { ...row("p99", (s) => s.p99), detail: `max: across ${cross.max.toFixed(1)} ms, single ${mem.max.toFixed(1)} ms, minimal ${least.max.toFixed(1)} ms, raw ${rawSpread.max.toFixed(1)} ms` },
          {
            metric: "CPU per relayed message",
            unit: "µs",
            ours: perMessage("across instances"),
            baselines: [
              { name: "single instance (memory)", value: perMessage("single instance (memory)") },
              { name: "minimal relay", value: perMessage("minimal relay") },
            ],
            detail: redisPid ? "across: both instances plus redis-server (/proc, 10 ms ticks)" : "across: both instances (redis-server's CPU not readable here)",
          },
          { metric: "RSS per idle peer, instance with Redis", unit: "KB", ours: idle.rss / 1024, baselines: [], detail: `JS heap ${(idle.heap / 1024).toFixed(1)} KB per peer; ${IDLE_PEERS} peers, each on its own HTTP/2 connection (stream-memory measures the in-memory broker with shared connections)` },
        ],
        notes: [
          "minimal relay: SendMessage looks the recipient up in a map and writes to its stream, in one process (bench/minimal-servers.ts): the floor for one gRPC hop in and one out",
          "raw Redis publish→receive: one ioredis client PUBLISHes, another SUBSCRIBEd receives, sequentially: the floor for any relay through Redis",
        ],
        seconds: (performance.now() - started) / 1000,
      };
    } finally {
      for (const close of closers.reverse()) await close();
      await Promise.all(servers.map((s) => s.stop()));
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

async function rawPubSub(url: string): Promise<{ once: () => Promise<number>; close: () => void }> {
  const publisher = new Redis(url);
  const subscriber = new Redis(url);
  await subscriber.subscribe("bench");
  let waiter: (() => void) | undefined;
  subscriber.on("messageBuffer", () => waiter?.());
  const payload = Buffer.alloc(160, 1);
  return {
    once: () =>
      new Promise<number>((resolve) => {
        const start = performance.now();
        waiter = () => resolve(performance.now() - start);
        void publisher.publish("bench", payload);
      }),
    close: () => {
      publisher.disconnect();
      subscriber.disconnect();
    },
  };
}

/** CPU µs of the server processes, plus redis-server's when its pid is known. */
async function cpuOf(servers: readonly ServerProcess[], redisPid: number | undefined): Promise<number> {
  const micros = await Promise.all(servers.map((s) => s.cpuMicros()));
  let total = micros.reduce((a, b) => a + b, 0);
  if (redisPid) {
    const fields = readFileSync(`/proc/${redisPid}/stat`, "utf8").split(") ")[1]!.split(" ");
    total += ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / CLOCK_TICKS_PER_SECOND;
  }
  return total;
}

const IDLE_PEERS = 200;

/** Memory per registered peer with an open stream on `server` (rooms of 2, a connection each), after full GCs. */
async function idlePeerMemory(server: ServerProcess): Promise<{ rss: number; heap: number }> {
  const before = await server.memory();
  const pairs = [];
  for (let i = 0; i < IDLE_PEERS / 2; i++) pairs.push(await openPair(server.address, `bench-idle-${i}`));
  const after = await server.memory();
  pairs.forEach((pair) => pair.close());
  return { rss: (after.rss - before.rss) / IDLE_PEERS, heap: (after.heapUsed - before.heapUsed) / IDLE_PEERS };
}
