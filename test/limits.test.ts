// Every limit of the server, hit on purpose through real gRPC: its status, a message naming what was
// exceeded and the limit, and the server still serving everyone else. Stalled subscribers fed large
// messages stay within the byte budget.
import { credentials, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { connect as http2Connect, constants } from "node:http2";
import t, { type Test } from "tap";
import { SignalingServiceClient, type SubscribeResponse } from "../gen/icetest/signaling/v1/signaling.ts";
import { MemoryBroker } from "../server/memory-broker.ts";
import { uniqueRoom } from "./fixtures/peers.ts";
import { connect, startTestServer, type TestServer } from "./fixtures/server.ts";

const CLIENT = { name: "limits-test", version: "0", runtime: "tap" };

function register(client: SignalingServiceClient, room: string, peerId = ""): Promise<string> {
  return new Promise((resolve, reject) =>
    client.register({ room, peerId, client: CLIENT }, (err, res) => (err ? reject(err) : resolve(res!.sessionToken))),
  );
}

function send(client: SignalingServiceClient, token: string, to: string, text: string): Promise<bigint> {
  return new Promise((resolve, reject) =>
    client.sendMessage({ sessionToken: token, toPeerId: to, signal: { kind: { $case: "text", value: text } } }, (err, res) =>
      err ? reject(err) : resolve(res!.sequence),
    ),
  );
}

async function refusal(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error("the call was not refused");
}

/** Someone else can still register, subscribe and exchange a message. */
async function stillServes(t: Test, server: TestServer): Promise<void> {
  const client = connect(t, server);
  const room = uniqueRoom("other");
  const carol = await register(client, room, "carol");
  const dave = await register(client, room, "dave");
  const stream = client.subscribe({ sessionToken: dave });
  t.teardown(() => stream.cancel());
  stream.on("error", () => undefined);
  const got = new Promise<string>((resolve) =>
    stream.on("data", (event: SubscribeResponse) => {
      const kind = event.event?.$case === "message" ? event.event.value.signal?.kind : undefined;
      if (kind?.$case === "text") resolve(kind.value);
    }),
  );
  await send(client, carol, "dave", "still here");
  t.equal(await got, "still here", "the server still serves other clients");
}

t.test("peers per room, registrations per address and in total are RESOURCE_EXHAUSTED naming the flag", async (t) => {
  const server = await startTestServer(t, { limits: { peersPerRoom: 2, registrationsPerAddress: 4, registrations: 6 } });
  const client = connect(t, server);
  const room = uniqueRoom();
  await register(client, room, "a");
  await register(client, room, "b");
  const full = await refusal(register(client, room, "c"));
  t.equal(full.code, status.RESOURCE_EXHAUSTED, "a full room is RESOURCE_EXHAUSTED");
  t.match(full.details, /is full: limit 2 \(--max-room-peers\) peers/, "naming --max-room-peers and its value");
  await register(client, uniqueRoom());
  await register(client, uniqueRoom());
  const perAddress = await refusal(register(client, uniqueRoom()));
  t.equal(perAddress.code, status.RESOURCE_EXHAUSTED, "a fifth registration from 127.0.0.1 is RESOURCE_EXHAUSTED");
  t.match(perAddress.details, /Too many registrations from 127\.0\.0\.1: limit 4 \(--max-registrations-per-address\)/, "naming the address and the limit");
});

t.test("the send rate, the queue in events and in bytes are RESOURCE_EXHAUSTED naming the flag; others are served", async (t) => {
  const server = await startTestServer(t, { limits: { sendRate: 1, sendBurst: 3, peerEvents: 1000, peerBytes: 20_000 } });
  const client = connect(t, server);
  const room = uniqueRoom();
  const alice = await register(client, room, "alice");
  await register(client, room, "bob");
  await register(client, room, "eve");
  const eve = await register(client, uniqueRoom(), "eve");
  void eve;
  await send(client, alice, "bob", "x".repeat(15_000));
  const bytes = await refusal(send(client, alice, "bob", "y".repeat(15_000)));
  t.equal(bytes.code, status.RESOURCE_EXHAUSTED, "a message past the recipient's byte budget is RESOURCE_EXHAUSTED");
  t.match(bytes.details, /Cannot send to peer "bob": .*limit 20000 bytes \(--max-queue-bytes\)/, "naming --max-queue-bytes");
  await send(client, alice, "eve", "1");
  const rate = await refusal(send(client, alice, "eve", "2"));
  t.equal(rate.code, status.RESOURCE_EXHAUSTED, "the burst is spent: RESOURCE_EXHAUSTED");
  t.match(rate.details, /Peer "alice" sends too fast: limit 1 messages\/s \(--send-rate\), bursts of limit 3 \(--send-burst\)/, "naming --send-rate and --send-burst");
  await stillServes(t, server);
});

t.test("connections per address beyond the limit are closed before TLS or HTTP/2", async (t) => {
  const server = await startTestServer(t, { limits: { connectionsPerAddress: 2 } });
  const clients = [0, 1, 2].map((i) => {
    // A channel option of its own keeps grpc-js from sharing one connection between clients.
    const client = new SignalingServiceClient(server.address, credentials.createInsecure(), { "grpc.primary_user_agent": `limits-${i}`, "grpc.use_local_subchannel_pool": 1 });
    t.teardown(() => client.close());
    return client;
  });
  await register(clients[0]!, uniqueRoom());
  await register(clients[1]!, uniqueRoom());
  const third = await new Promise<ServiceError | null>((resolve) =>
    clients[2]!.register({ room: uniqueRoom(), peerId: "", client: CLIENT }, new Metadata(), { deadline: Date.now() + 3_000 }, (err) => resolve(err)),
  );
  t.ok(third && (third.code === status.UNAVAILABLE || third.code === status.DEADLINE_EXCEEDED), `a third connection from 127.0.0.1 is refused (${third && status[third.code]})`);
  t.ok(server.lines.some((line) => /refused what=connection from=127\.0\.0\.1 limit=2/.test(line)), "the refusal is logged with the limit");
  await register(clients[0]!, uniqueRoom());
  t.pass("the first connections keep working");
});

t.test("the server announces --max-streams-per-connection, and a half-sent request is refused after --request-timeout", async (t) => {
  const server = await startTestServer(t, { limits: { maxConcurrentStreams: 7, requestTimeoutMs: 300 } });
  const session = http2Connect(`http://${server.address}`);
  t.teardown(() => session.destroy());
  const settings = await new Promise<{ maxConcurrentStreams?: number }>((resolve) => session.once("remoteSettings", resolve));
  t.equal(settings.maxConcurrentStreams, 7, "SETTINGS_MAX_CONCURRENT_STREAMS is the limit");
  const stream = session.request({
    [constants.HTTP2_HEADER_METHOD]: "POST",
    [constants.HTTP2_HEADER_PATH]: "/icetest.signaling.v1.SignalingService/Register",
    "content-type": "application/grpc",
    te: "trailers",
  });
  // A gRPC frame header announcing 100 bytes, then only 3 of them; the stream stays open.
  stream.write(Buffer.from([0, 0, 0, 0, 100, 0x0a, 0x01, 0x61]));
  const trailers = await new Promise<Record<string, unknown>>((resolve) => {
    stream.on("trailers", resolve);
    stream.on("response", (headers) => headers["grpc-status"] !== undefined && resolve(headers));
  });
  stream.on("error", () => undefined);
  t.equal(Number(trailers["grpc-status"]), status.RESOURCE_EXHAUSTED, "the half-sent call ends with RESOURCE_EXHAUSTED");
  t.match(decodeURIComponent(String(trailers["grpc-message"])), /did not arrive completely within 0\.3 s \(--request-timeout\)/, "naming --request-timeout");
  await stillServes(t, server);
});

t.test("stalled subscribers fed 60 KiB messages keep the server within its byte budget and serving", async (t) => {
  const STALLED = 24;
  const totalBytes = 8 * 1024 * 1024;
  // The sender never subscribes: a long grace keeps it registered.
  const broker = new MemoryBroker({ limits: { sessionGraceMs: 120_000, totalBytes, peerBytes: 1024 * 1024, peerEvents: 1000, sendRate: 100_000, sendBurst: 100_000, registrationsPerAddress: 1000 } });
  // Long heartbeats: the stalled streams stay open for the whole test instead of being ended.
  const server = await startTestServer(t, { broker, limits: { heartbeatMs: 120_000 } });
  const client = connect(t, server);
  const room = uniqueRoom("stall");
  const sender = await register(client, room, "sender");
  const rssBefore = process.memoryUsage().rss;
  for (let i = 0; i < STALLED; i++) {
    const token = await register(client, room, `stalled${i}`);
    const stream = client.subscribe({ sessionToken: token });
    stream.on("error", () => undefined);
    // Read the first event, then never again.
    await new Promise((resolve) => stream.once("data", resolve));
    stream.pause();
    t.teardown(() => stream.cancel());
  }
  const chunk = "z".repeat(60 * 1024);
  const refusals = new Map<string, number>();
  let accepted = 0;
  for (let round = 0; round < 30; round++) {
    for (let i = 0; i < STALLED; i++) {
      try {
        await send(client, sender, `stalled${i}`, chunk);
        accepted++;
      } catch (err) {
        const limit = /\((--[a-z-]+)\)/.exec((err as ServiceError).details)?.[1] ?? (err as ServiceError).details;
        t.equal((err as ServiceError).code, status.RESOURCE_EXHAUSTED, `every refusal is RESOURCE_EXHAUSTED (${(err as ServiceError).details})`);
        refusals.set(limit, (refusals.get(limit) ?? 0) + 1);
      }
    }
  }
  const stats = await broker.stats();
  const rssAfter = process.memoryUsage().rss;
  t.ok(stats.heldBytes <= totalBytes, `the broker holds ${stats.heldBytes} bytes, within --max-total-bytes ${totalBytes}`);
  t.ok((refusals.get("--max-total-bytes") ?? 0) > 0, `senders were refused by the total budget (${[...refusals].map(([k, v]) => `${k}: ${v}`).join(", ")})`);
  t.comment(`stalled: ${STALLED} subscribers, ${accepted} messages of 60 KiB accepted, held ${(stats.heldBytes / 1048576).toFixed(1)} MiB, test process RSS ${(rssBefore / 1048576).toFixed(0)} → ${(rssAfter / 1048576).toFixed(0)} MiB`);
  await stillServes(t, server);
});
