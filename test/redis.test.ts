// Several server instances sharing one real Redis: peers on different instances meet; an instance
// killed mid-flow loses its subscriber nothing (it resumes on the other one); an instance that stops
// for good has its peers leave with reason "shutdown"; Redis restarted under load costs refused
// sends (UNAVAILABLE, saying so) but no acknowledged message, and no duplicate.
import { status, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import t from "tap";
import type { SignalingServiceClient, SubscribeResponse } from "../gen/icetest/signaling/v1/signaling.ts";
import { startServerProcess } from "./fixtures/instance.ts";
import { loopbackFlags, runCli, uniqueRoom } from "./fixtures/peers.ts";
import { REDIS_MISSING, startRedis, type TestRedis } from "./fixtures/redis.ts";
import { connect, startTestServer } from "./fixtures/server.ts";

/** Generous: CI machines are shared, and Redis answers in ms when they are busy. */
const DEADLINE_MS = 60_000;
/** Rates high enough that a test's bursts are never refused. */
const LIMITS = { sendRate: 100_000, sendBurst: 100_000 };
const LIMIT_FLAGS = ["--send-rate", "100000", "--send-burst", "100000"];

// Two CLI peers, server processes and a Redis restart: minutes, not seconds, on a loaded machine.
t.setTimeout(300_000);

t.before(() => {
  if (REDIS_MISSING) t.plan(0, REDIS_MISSING);
});

let shared: Promise<TestRedis> | undefined;
const redis = () => (shared ??= startRedis(t));

function call<T>(start: (callback: (err: ServiceError | null, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => start((err, value) => (err ? reject(err) : resolve(value as T))));
}

async function register(client: SignalingServiceClient, room: string, peerId: string): Promise<string> {
  const response = await call<{ sessionToken: string }>((cb) => client.register({ room, peerId, client: undefined }, cb));
  return response.sessionToken;
}

/** Keeps a sender's own stream open, so it does not expire while it sends. */
function listen(t: { teardown(fn: () => void): void }, client: SignalingServiceClient, sessionToken: string): void {
  const stream = client.subscribe({ sessionToken });
  stream.on("data", () => {});
  stream.on("error", () => {});
  t.teardown(() => stream.cancel());
}

function send(client: SignalingServiceClient, sessionToken: string, toPeerId: string, text: string): Promise<unknown> {
  return call((cb) => client.sendMessage({ sessionToken, toPeerId, signal: { kind: { $case: "text", value: text } } }, cb));
}

/** Every text message a subscriber receives, by number, with the last sequence seen. */
class Inbox {
  readonly counts = new Map<number, number>();
  lastSequence = 0n;
  private waiters: { count: number; resolve: () => void }[] = [];

  attach(stream: ClientReadableStream<SubscribeResponse>): Promise<ServiceError | undefined> {
    stream.on("data", (event: SubscribeResponse) => {
      if (event.sequence > 0n) this.lastSequence = event.sequence;
      const kind = event.event?.$case === "message" ? event.event.value.signal?.kind : undefined;
      if (kind?.$case !== "text") return;
      const n = Number(kind.value);
      this.counts.set(n, (this.counts.get(n) ?? 0) + 1);
      this.waiters = this.waiters.filter((w) => (this.counts.size >= w.count ? (w.resolve(), false) : true));
    });
    return new Promise((resolve) => {
      stream.on("error", (err: ServiceError) => resolve(err));
      stream.on("end", () => resolve(undefined));
    });
  }

  /** Resolves when `count` distinct messages arrived; fails after the deadline. */
  received(count: number): Promise<void> {
    if (this.counts.size >= count) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${this.counts.size} of ${count} messages within ${DEADLINE_MS} ms`)), DEADLINE_MS);
      this.waiters.push({ count, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  duplicates(): number[] {
    return [...this.counts].filter(([, times]) => times > 1).map(([n]) => n);
  }

  missing(numbers: Iterable<number>): number[] {
    return [...numbers].filter((n) => !this.counts.has(n));
  }
}

t.test("a Node peer on instance 1 and a Deno peer on instance 2 connect through Redis", async (t) => {
  const { url } = await redis();
  const one = await startTestServer(t, { redis: url, limits: LIMITS });
  const two = await startTestServer(t, { redis: url, limits: LIMITS });
  const room = uniqueRoom("redis");
  const teardown = (fn: () => void) => t.teardown(fn);
  const [offerer, answerer] = await Promise.all([
    runCli("node", ["--role", "offerer", ...loopbackFlags(`http://${one.address}`, room)], teardown),
    runCli("deno", ["--role", "answerer", ...loopbackFlags(`http://${two.address}`, room)], teardown),
  ]);
  t.equal(offerer.code, 0, `the Node offerer on instance 1 connected (stderr: ${offerer.stderr.join(" ")})`);
  t.equal(answerer.code, 0, `the Deno answerer on instance 2 connected (stderr: ${answerer.stderr.join(" ")})`);
  t.ok(one.lines.some((line) => /register .*peer=/.test(line)) && two.lines.some((line) => /register .*peer=/.test(line)), "each instance served one of them");
});

t.test("an instance killed mid-flow: its subscriber resumes on the other instance, 0 lost, 0 duplicated", async (t) => {
  const { url } = await redis();
  const doomed = await startServerProcess(t, ["--redis", url, ...LIMIT_FLAGS]);
  const survivor = await startTestServer(t, { redis: url, limits: LIMITS });
  const room = uniqueRoom("kill");
  const bobOnDoomed = connect(t, { address: doomed.address });
  const bobOnSurvivor = connect(t, { address: survivor.address });
  const alice = connect(t, survivor);
  const bobToken = await register(bobOnDoomed, room, "bob");
  const aliceToken = await register(alice, room, "alice");
  listen(t, alice, aliceToken);
  const inbox = new Inbox();
  const firstStream = bobOnDoomed.subscribe({ sessionToken: bobToken });
  const firstEnd = inbox.attach(firstStream);

  const TOTAL = 400;
  const sending = (async () => {
    for (let n = 1; n <= TOTAL; n++) {
      await send(alice, aliceToken, "bob", String(n));
      // A pause now and then, so the kill lands mid-flow rather than after it.
      if (n % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  await inbox.received(100);
  doomed.process.child.kill("SIGKILL");
  const end = await firstEnd;
  t.equal(end?.code, status.UNAVAILABLE, "bob's stream on the killed instance breaks (UNAVAILABLE)");

  const resumed = bobOnSurvivor.subscribe({ sessionToken: bobToken, resumeAfterSequence: inbox.lastSequence });
  resumed.on("error", () => {});
  t.teardown(() => resumed.cancel());
  void inbox.attach(resumed);
  await sending;
  await inbox.received(TOTAL);
  const numbers = Array.from({ length: TOTAL }, (_, i) => i + 1);
  t.same(inbox.missing(numbers), [], "no message was lost");
  t.same(inbox.duplicates(), [], "no message arrived twice");
});

t.test("peers of an instance that stops for good leave with reason shutdown, and the others hear of it", async (t) => {
  const { url } = await redis();
  const stopping = await startServerProcess(t, ["--redis", url, "--session-grace", "1"]);
  const staying = await startTestServer(t, { redis: url, limits: { sessionGraceMs: 1_000 } });
  const room = uniqueRoom("stop");
  const bob = connect(t, { address: stopping.address });
  const alice = connect(t, staying);
  const bobToken = await register(bob, room, "bob");
  const bobStream = bob.subscribe({ sessionToken: bobToken });
  bobStream.on("error", () => {});
  await new Promise((resolve) => bobStream.once("data", resolve));
  const aliceToken = await register(alice, room, "alice");
  const aliceStream = alice.subscribe({ sessionToken: aliceToken });
  t.teardown(() => aliceStream.cancel());
  aliceStream.on("error", () => {});
  const left = new Promise<SubscribeResponse>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no peer_left within ${DEADLINE_MS} ms`)), DEADLINE_MS);
    aliceStream.on("data", (event: SubscribeResponse) => {
      if (event.event?.$case !== "peerLeft") return;
      clearTimeout(timer);
      resolve(event);
    });
  });
  stopping.process.child.kill("SIGTERM");
  t.equal(await stopping.process.exited, 0, "the stopping instance exits 0 on SIGTERM");
  const event = await left;
  t.same(event.event, { $case: "peerLeft", value: { peerId: "bob", reason: "shutdown" } }, "alice, on the other instance, is told bob left with reason shutdown");
});

t.test("Redis restarted under load: sends fail UNAVAILABLE meanwhile, the server recovers alone, 0 acknowledged lost, 0 duplicated", async (t) => {
  const server = await redis();
  const one = await startTestServer(t, { redis: server.url, limits: LIMITS });
  const two = await startTestServer(t, { redis: server.url, limits: LIMITS });
  const room = uniqueRoom("restart");
  const alice = connect(t, one);
  const bob = connect(t, two);
  const bobToken = await register(bob, room, "bob");
  const aliceToken = await register(alice, room, "alice");
  listen(t, alice, aliceToken);
  const inbox = new Inbox();
  const stream = bob.subscribe({ sessionToken: bobToken });
  t.teardown(() => stream.cancel());
  stream.on("error", () => {});
  void inbox.attach(stream);

  const acknowledged = new Set<number>();
  const refusals: ServiceError[] = [];
  let n = 0;
  let restarted = false;
  let firstRefused = 0;
  const sendUntil = async (done: () => boolean) => {
    while (!done()) {
      n++;
      try {
        await send(alice, aliceToken, "bob", String(n));
        acknowledged.add(n);
      } catch (err) {
        firstRefused ||= n;
        refusals.push(err as ServiceError);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  };
  const load = sendUntil(() => restarted && acknowledged.size >= 300 && refusals.length > 0);
  await inbox.received(100);
  await server.restart();
  restarted = true;
  await load;
  const lastAcknowledged = Math.max(...acknowledged);
  await inbox.received(acknowledged.size);
  t.ok(refusals.length > 0, `sends while Redis was down were refused (${refusals.length})`);
  t.ok(refusals.every((err) => err.code === status.UNAVAILABLE), "every refusal is UNAVAILABLE");
  t.match(refusals[0]?.details, /cannot reach its Redis at redis:\/\/127\.0\.0\.1:\d+/, "and says the server cannot reach its Redis");
  t.ok(acknowledged.has(lastAcknowledged) && lastAcknowledged > firstRefused, "sends succeed again after the restart, without restarting the server");
  t.same(inbox.missing(acknowledged), [], "every acknowledged message arrived");
  t.same(inbox.duplicates(), [], "no message arrived twice");
});
