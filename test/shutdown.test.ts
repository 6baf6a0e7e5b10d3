// SIGTERM to a busy server process: it drains and exits 0 promptly, every stream ends with
// UNAVAILABLE, health says NOT_SERVING first, and every log line reaches stdout.
import { once } from "node:events";
import { availableParallelism, loadavg } from "node:os";
import { credentials, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import t from "tap";
import { SignalingServiceClient, type RegisterResponse } from "../gen/icetest/signaling/v1/signaling.ts";
import { healthClient, type HealthStatus } from "./fixtures/grpc-tools.ts";
import { exitWithin, listeningPort, startServerProcess } from "./fixtures/server-process.ts";

const STREAMS = 1_000;
const CONNECTIONS = 10;
const CALL_LIMIT_MS = 20_000;

function register(client: SignalingServiceClient, room: string, peerId: string): Promise<RegisterResponse> {
  return new Promise((resolve, reject) =>
    client.register({ room, peerId, client: undefined }, new Metadata(), { deadline: Date.now() + CALL_LIMIT_MS }, (err, res) => (err ? reject(err) : resolve(res))),
  );
}

t.test("SIGTERM with 1,000 open Subscribe streams: exit 0 within 5 s, every stream UNAVAILABLE, every log line written", async (t) => {
  // The drain waits for clients to close their connections; on a loaded machine that can take
  // seconds, and a 4 s grace keeps the exit within 5 s whatever they do.
  const server = await startServerProcess(t, ["--insecure", "--host", "127.0.0.1", "--port", "0", "--no-stun", "--shutdown-grace", "4", "--max-registrations-per-address", "2000", "--max-streams-per-connection", "1000"]);
  const address = `127.0.0.1:${await listeningPort(server)}`;
  // Few HTTP/2 connections, as behind a proxy: a local subchannel pool gives each client its own.
  const clients = Array.from({ length: CONNECTIONS }, () => new SignalingServiceClient(address, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 }));
  t.teardown(() => clients.forEach((client) => client.close()));

  const ends: Array<Promise<ServiceError>> = [];
  for (let first = 0; first < STREAMS; first += 100) {
    const batch = Array.from({ length: 100 }, (_, i) => first + i);
    await Promise.all(
      batch.map(async (n) => {
        const client = clients[n % CONNECTIONS]!;
        const { sessionToken } = await register(client, `room-${n % 50}`, `peer-${n}`);
        const stream = client.subscribe({ sessionToken });
        ends.push(new Promise((resolve) => stream.on("error", resolve)));
        await once(stream, "data");
      }),
    );
  }
  const health = healthClient(address);
  t.teardown(() => health.close());
  const watched: HealthStatus[] = [];
  const watch = health.watch({ service: "" });
  const watchEnded = new Promise<ServiceError>((resolve) => watch.on("error", resolve));
  watch.on("data", (response: { status: HealthStatus }) => watched.push(response.status));
  await once(watch, "data");
  t.same(watched, ["SERVING"], "health says SERVING before the signal");

  server.signal("SIGTERM");
  const started = Date.now();
  const code = await exitWithin(server, 30_000);
  const elapsed = Date.now() - started;
  const times = Object.fromEntries(server.stdout.map((line) => JSON.parse(line) as { event: string; time: string }).map((entry) => [entry.event, Date.parse(entry.time)]));
  t.comment(`SIGTERM to exit: ${elapsed} ms; stopping to stopped in the server's log: ${times.stopped! - times.stopping!} ms`);
  t.equal(code, 0, "the server exits 0");
  // The 4 s grace bounds the drain by design; on a machine running several times more work than
  // it has cores, process start and exit alone take seconds, so the clock is only checked when not.
  const overloaded = loadavg()[0]! > 2 * availableParallelism();
  const skip = overloaded && `load average ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores`;
  t.ok(elapsed < 5_000, `within 5 s of SIGTERM (${elapsed} ms)`, { skip });

  const codes = await Promise.all(ends);
  t.equal(codes.filter((err) => err.code === status.UNAVAILABLE).length, STREAMS, "every one of the 1,000 streams ended UNAVAILABLE");
  t.equal(codes[0]?.details, "Server is shutting down", "saying why");
  t.same(watched, ["SERVING", "NOT_SERVING"], "a health watcher was told NOT_SERVING while the server drained");
  t.equal((await watchEnded).code, status.UNAVAILABLE, "and its Watch stream then ended UNAVAILABLE");

  const entries = server.stdout.map((line) => JSON.parse(line) as { event: string; level: string });
  const count = (event: string) => entries.filter((entry) => entry.event === event).length;
  t.equal(count("register"), STREAMS, "every Register is logged");
  t.equal(count("subscribe"), STREAMS, "every Subscribe is logged");
  t.equal(count("unsubscribe"), STREAMS, "every stream's end is logged, none lost at exit");
  t.equal(entries.at(-1)?.event, "stopped", "the last line is the stopped line");
  // shutdown-forced appears only if the clients were slower than the grace to hang up.
  t.equal(entries.length - count("shutdown-forced"), 3 * STREAMS + 4, "listening, 3 lines per peer, stopping, shutdown and stopped: nothing else, nothing lost");
  t.same(server.stderr, [], "nothing on stderr");
});
