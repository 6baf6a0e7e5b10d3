// Resume without loss, end to end: a subscriber that drops in the middle of a 10,000-message flow
// and resumes from its last sequence gets every message exactly once, in order; and peer CLIs whose
// streams the server cuts mid-session resume and still connect.
import { Metadata, status, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import t from "tap";
import type { SignalingServiceClient, SubscribeResponse } from "../gen/icetest/signaling/v1/signaling.ts";
import type { Broker, Subscription } from "../server/broker.ts";
import { unavailable } from "../server/errors.ts";
import { MemoryBroker } from "../server/memory-broker.ts";
import { meetCli, loopbackFlags, uniqueRoom } from "./fixtures/peers.ts";
import { connect, startTestServer } from "./fixtures/server.ts";

// Thousands of calls: seconds on an idle machine, minutes on a crowded one; the waits inside have
// their own deadlines, this only keeps tap's per-file limit from cutting a slow run short.
t.setTimeout(300_000);

const CLIENT = { name: "resume-test", version: "0", runtime: "tap" };
const SENDERS = 8;
const PER_SENDER = 1_250;
const TOTAL = SENDERS * PER_SENDER;
/** The subscriber breaks its stream after these many messages. */
const DROPS = [3_000, 7_000];

function register(client: SignalingServiceClient, room: string, peerId: string): Promise<string> {
  return new Promise((resolve, reject) =>
    client.register({ room, peerId, client: CLIENT }, (err, res) => (err ? reject(err) : resolve(res!.sessionToken))),
  );
}

function send(client: SignalingServiceClient, token: string, to: string, text: string): Promise<void> {
  return new Promise((resolve, reject) =>
    client.sendMessage({ sessionToken: token, toPeerId: to, signal: { kind: { $case: "text", value: text } } }, (err) => (err ? reject(err) : resolve())),
  );
}

t.test("a subscriber that drops twice in a 10,000-message flow and resumes receives every message exactly once, in order", async (t) => {
  const server = await startTestServer(t, {
    // The senders never subscribe: a long grace keeps them registered.
    limits: { sessionGraceMs: 600_000, sendRate: 1_000_000, sendBurst: 1_000_000, peerEvents: 20_000, retainEvents: 5_000, peerBytes: 64 * 1024 * 1024 },
  });
  const client = connect(t, server);
  const room = uniqueRoom("resume");
  const bob = await register(client, room, "bob");
  const senders = await Promise.all(Array.from({ length: SENDERS }, (_, i) => register(client, room, `sender${i}`)));

  let processed = 0;
  let lastSequence = 0n;
  let resumes = 0;
  let duplicates = 0;
  const nextPerSender = new Array<number>(SENDERS).fill(0);
  const outOfOrder: string[] = [];
  let stream: ClientReadableStream<SubscribeResponse> | undefined;
  const finished = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${processed} of ${TOTAL} messages within 240 s`)), 240_000);
    const open = (resumeAfter: bigint | undefined) => {
      const current = client.subscribe({ sessionToken: bob, resumeAfterSequence: resumeAfter }, new Metadata());
      stream = current;
      current.on("error", (err: ServiceError) => {
        if (current !== stream || err.code === status.CANCELLED) return;
        clearTimeout(timer);
        reject(err);
      });
      current.on("data", (event: SubscribeResponse) => {
        if (current !== stream || event.sequence === 0n) return;
        if (event.sequence <= lastSequence) {
          duplicates++;
          return;
        }
        if (event.sequence !== lastSequence + 1n) outOfOrder.push(`sequence ${event.sequence} after ${lastSequence}`);
        lastSequence = event.sequence;
        // The senders' peer_joined events come first in bob's sequence.
        if (event.event?.$case !== "message") return;
        const kind = event.event.value.signal?.kind;
        const [sender, index] = (kind?.$case === "text" ? kind.value : "?:?").split(":").map(Number) as [number, number];
        if (nextPerSender[sender] !== index) outOfOrder.push(`sender ${sender} message ${index}, expected ${nextPerSender[sender]}`);
        nextPerSender[sender] = index + 1;
        processed++;
        if (processed === TOTAL) {
          clearTimeout(timer);
          stream = undefined;
          current.cancel();
          return resolve();
        }
        if (DROPS.includes(processed)) {
          // The stream breaks with events written to it that this client will never process.
          stream = undefined;
          current.cancel();
          resumes++;
          open(lastSequence);
        }
      });
    };
    open(undefined);
  });
  const sending = senders.map(async (token, sender) => {
    for (let i = 0; i < PER_SENDER; i++) await send(client, token, "bob", `${sender}:${i}`).catch((err: ServiceError) => Promise.reject(new Error(`send ${sender}:${i}: ${err.details}`)));
  });
  await Promise.all([...sending, finished]);
  t.equal(processed, TOTAL, `all ${TOTAL} messages were processed`);
  t.equal(resumes, DROPS.length, `the stream was resumed ${resumes} times`);
  t.equal(duplicates, 0, "the server replayed nothing the client had already processed");
  t.same(outOfOrder, [], "sequences had no gaps and every sender's messages came in the order sent");
  t.equal(lastSequence, BigInt(TOTAL + SENDERS), "the last sequence counts every message and the senders' joins");
  t.comment(`resume: ${TOTAL} messages, ${resumes} resumes, ${duplicates} duplicates, ${outOfOrder.length} gaps or reorderings`);
});

t.test("a resume point the server no longer holds is OUT_OF_RANGE with 'register again'", async (t) => {
  const server = await startTestServer(t, { limits: { retainEvents: 2 } });
  const client = connect(t, server);
  const room = uniqueRoom("resume");
  const bob = await register(client, room, "bob");
  const alice = await register(client, room, "alice");
  for (let i = 0; i < 5; i++) await send(client, alice, "bob", `m${i}`);
  const delivered = client.subscribe({ sessionToken: bob });
  await new Promise<void>((resolve) => {
    let messages = 0;
    delivered.on("data", (event: SubscribeResponse) => event.event?.$case === "message" && ++messages === 5 && resolve());
  });
  delivered.on("error", () => undefined);
  delivered.cancel();
  const refused = await new Promise<ServiceError>((resolve) => {
    const late = client.subscribe({ sessionToken: bob, resumeAfterSequence: 1n });
    late.on("error", resolve);
    late.on("data", () => undefined);
  });
  t.equal(refused.code, status.OUT_OF_RANGE, "OUT_OF_RANGE");
  t.match(refused.details, /Cannot resume after sequence 1: events before 5 are no longer held; register again/, "the message says what to do");
});

/**
 * A broker that cuts each peer's first stream after `after` events with UNAVAILABLE, as a server
 * behind a load balancer that loses a backend would: the test of the peers' resume.
 */
class CuttingBroker extends MemoryBroker implements Broker {
  readonly cut = new Set<string>();

  constructor(private readonly after: number) {
    super({ limits: { sessionGraceMs: 5_000 } });
  }

  override async subscribe(...args: Parameters<MemoryBroker["subscribe"]>): Promise<Subscription> {
    const subscription = await super.subscribe(...args);
    const peer = args[0].peerId;
    if (this.cut.has(peer)) return subscription;
    this.cut.add(peer);
    const after = this.after;
    const source = subscription[Symbol.asyncIterator]();
    let given = 0;
    return {
      others: subscription.others,
      ended: subscription.ended,
      close: () => subscription.close(),
      [Symbol.asyncIterator]: () => ({
        next: async () => {
          if (given++ >= after) throw unavailable(`Test: stream of ${peer} cut after ${after} events`);
          return source.next();
        },
      }),
    };
  }
}

t.test("peer CLIs whose streams the server cuts mid-session resume and still connect", async (t) => {
  const broker = new CuttingBroker(3);
  const server = await startTestServer(t, { broker, limits: { heartbeatMs: 1_000 } });
  const room = uniqueRoom("cut");
  const { offerer, answerer } = await meetCli(t, { offerer: "node", answerer: "node" }, loopbackFlags(`http://${server.address}`, room));
  for (const [name, result] of [["offerer", offerer], ["answerer", answerer]] as const) {
    t.equal(result.code, 0, `the ${name} exits 0 (${result.summary?.error?.message ?? "connected"})`);
    t.equal(result.summary?.connected, true, `the ${name} connected`);
    const breaks = result.events.filter((e) => e.event === "signaling-break");
    const resumed = result.events.filter((e) => e.event === "signaling-resumed");
    t.ok(breaks.length >= 1, `the ${name} saw its stream break (${breaks.map((e) => e["why"]).join("; ")})`);
    t.ok(resumed.length >= 1, `the ${name} resumed its stream`);
  }
  t.equal(broker.cut.size, 2, "both peers' first streams were cut");
});
