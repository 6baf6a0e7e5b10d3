// A server alone in its own process, so that its CPU time and memory are its own: the parent runs
// the clients and asks over IPC. Started by server-process.ts as
// `node --import tsx --expose-gc bench/server-child.ts ours|minimal|redis [REDIS_URL]`.
import { startServer } from "../server/server.ts";
import { startMinimalServer } from "./minimal-servers.ts";
import type { ChildReply, ChildRequest, ServerKind } from "./server-process.ts";

const kind = process.argv[2] as ServerKind;
/** One client address drives thousands of peers and messages here: the per-client limits would refuse it. */
const BENCH_LIMITS = { registrations: 1e6, registrationsPerAddress: 1e6, peersPerRoom: 1e6, sendRate: 1e6, sendBurst: 1e6, connectionsPerAddress: 1e6, maxConcurrentStreams: 1e6 };
const send = (message: ChildReply) => process.send!(message);

const server =
  kind === "ours"
    ? await startServer({ host: "127.0.0.1", port: 0, tls: null, stunPort: null, limits: BENCH_LIMITS })
    : kind === "redis"
      ? await startServer({ host: "127.0.0.1", port: 0, tls: null, stunPort: null, limits: BENCH_LIMITS, redis: process.argv[3] })
      : kind === "minimal"
        ? await startMinimalServer()
        : undefined;
if (!server) throw new Error(`Unknown server kind "${kind}": use ours, redis URL or minimal`);

let stopped = false;
// Either the parent asked us to stop, or it is gone (crashed or killed): nothing left to measure.
process.on("disconnect", () => process.exit(stopped ? 0 : 1));

process.on("message", (request: ChildRequest) => {
  void answer(request).then(send, (err: unknown) => send({ id: request.id, error: String(err) }));
});

async function answer(request: ChildRequest): Promise<ChildReply> {
  switch (request.cmd) {
    case "cpu": {
      const { user, system } = process.cpuUsage();
      return { id: request.id, cpuMicros: user + system };
    }
    case "memory":
      await settle();
      return { id: request.id, memory: process.memoryUsage() };
    case "stop":
      await server!.shutdown(1_000);
      stopped = true;
      // Exit once the reply is out, whatever timers the server left behind.
      setImmediate(() => process.disconnect());
      return { id: request.id };
  }
}

/** Full collections, twice, with a pause: what stays is what the live objects need. */
async function settle(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("Run with --expose-gc to measure memory");
  for (let i = 0; i < 2; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

send({ id: 0, port: server.port });
