// stream-memory: what an idle peer costs the server in memory: a registered session with its
// Subscribe stream open and nothing flowing. 2000 peers (rooms of two, as in real use) over four
// HTTP/2 connections, against a minimal server-streaming server that only parks each call in a
// map. Memory is read by the server process itself after full garbage collections.
import type * as grpc from "@grpc/grpc-js";
import type { SignalingServiceClient, SubscribeResponse } from "../gen/icetest/signaling/v1/signaling.ts";
import type { Benchmark, BenchResult } from "./report.ts";
import { opened, pipeline, signalingClient } from "./relay-clients.ts";
import { startServerProcess, type ServerKind } from "./server-process.ts";

const PEERS = 2_000;
const CONNECTIONS = 4;
/** Calls in flight while registering and subscribing: enough to be quick, few enough to be gentle. */
const WINDOW = 32;
const KB = 1024;

interface Footprint {
  /** Bytes per peer for Register alone. */
  readonly rssRegister: number;
  /** Bytes per peer for Register + Subscribe. */
  readonly rss: number;
  /** Heap bytes per peer for Register alone. */
  readonly heapRegister: number;
  readonly heap: number;
}

export const streamMemory: Benchmark = {
  name: "stream-memory",
  async run({ progress }): Promise<BenchResult> {
    const started = performance.now();
    progress(`stream-memory: ours, ${PEERS} peers over ${CONNECTIONS} connections`);
    const ours = await footprint("ours");
    progress(`stream-memory: minimal server-streaming server, ${PEERS} streams over ${CONNECTIONS} connections`);
    const minimal = await footprint("minimal");
    const baseline = (pick: (f: Footprint) => number) => [{ name: "minimal streaming", value: pick(minimal) / KB }];
    return {
      name: "stream-memory",
      setup: `server memory per idle peer (Register + open Subscribe stream), ${PEERS} peers in rooms of 2 over ${CONNECTIONS} connections, after full GCs`,
      measurements: [
        {
          metric: "RSS per idle peer",
          unit: "KB",
          ours: ours.rss / KB,
          baselines: baseline((f) => f.rss),
          detail: `ours: ${(ours.rssRegister / KB).toFixed(1)} KB of it before Subscribe`,
        },
        {
          metric: "JS heap per idle peer",
          unit: "KB",
          ours: ours.heap / KB,
          baselines: baseline((f) => f.heap),
          detail: `ours: ${(ours.heapRegister / KB).toFixed(1)} KB of it before Subscribe`,
        },
      ],
      notes: [
        "baseline: Register keeps nothing and returns the peer id as token; Subscribe parks the call in a map and writes one event",
        "RSS also keeps what setting up left behind (V8 and malloc hold on to freed pages), so it overstates live memory; the JS heap counts live objects only",
      ],
      seconds: (performance.now() - started) / 1000,
    };
  },
};

async function footprint(kind: ServerKind): Promise<Footprint> {
  const server = await startServerProcess(kind);
  const clients = Array.from({ length: CONNECTIONS }, () => signalingClient(server.address));
  const streams: grpc.ClientReadableStream<SubscribeResponse>[] = [];
  try {
    // One peer per connection first: the connections and the code paths exist before "before".
    for (const [i, client] of clients.entries()) await join(client, `warm-${i}`, "warm", streams);
    const before = await server.memory();
    const tokens = new Array<string>(PEERS);
    let next = 0;
    await pipeline(PEERS, WINDOW, async () => {
      const n = next++;
      tokens[n] = await register(clients[n % CONNECTIONS]!, `room-${Math.floor(n / 2)}`, `peer-${n}`);
    });
    const registered = await server.memory();
    next = 0;
    await pipeline(PEERS, WINDOW, async () => {
      const n = next++;
      await subscribe(clients[n % CONNECTIONS]!, tokens[n]!, streams);
    });
    const subscribed = await server.memory();
    return {
      rssRegister: (registered.rss - before.rss) / PEERS,
      rss: (subscribed.rss - before.rss) / PEERS,
      heapRegister: (registered.heapUsed - before.heapUsed) / PEERS,
      heap: (subscribed.heapUsed - before.heapUsed) / PEERS,
    };
  } finally {
    for (const stream of streams) {
      stream.on("error", () => {}); // CANCELLED, as asked
      stream.cancel();
    }
    clients.forEach((client) => client.close());
    await server.stop();
  }
}

async function join(client: SignalingServiceClient, room: string, peerId: string, streams: grpc.ClientReadableStream<SubscribeResponse>[]): Promise<void> {
  await subscribe(client, await register(client, room, peerId), streams);
}

function register(client: SignalingServiceClient, room: string, peerId: string): Promise<string> {
  return new Promise((resolve, reject) =>
    client.register({ room, peerId, client: undefined }, (err, response) => (err ? reject(err) : resolve(response.sessionToken))),
  );
}

async function subscribe(client: SignalingServiceClient, sessionToken: string, streams: grpc.ClientReadableStream<SubscribeResponse>[]): Promise<void> {
  const stream = client.subscribe({ sessionToken });
  streams.push(stream);
  await opened(stream);
}
