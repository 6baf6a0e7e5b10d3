// 10,000 randomized malformed requests (random bytes, mutated and truncated valid messages,
// invalid UTF-8, unknown tokens, wrong types) against every method, while a correct pair of
// clients keeps exchanging messages. Each bad request gets a status a client can act on (never
// INTERNAL), and the server never stops serving. Seeded, so a failure can be replayed.
import { credentials, Metadata, status, type Client, type ServiceError } from "@grpc/grpc-js";
import { Client as GrpcClient } from "@grpc/grpc-js";
import t from "tap";
import { RegisterRequest, SendMessageRequest, SubscribeRequest, type SignalingServiceClient, type SubscribeResponse } from "../gen/icetest/signaling/v1/signaling.ts";
import { uniqueRoom } from "./fixtures/peers.ts";
import { connect, startTestServer } from "./fixtures/server.ts";

// Thousands of calls: seconds on an idle machine, minutes on a crowded one; the waits inside have
// their own deadlines, this only keeps tap's per-file limit from cutting a slow run short.
t.setTimeout(300_000);

const REQUESTS = 10_000;
const IN_FLIGHT = 64;
const CHECK_EVERY = 500;
const SERVICE = "/icetest.signaling.v1.SignalingService/";

/** mulberry32: small, seeded, good enough to spread inputs. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function malformed(next: () => number, validToken: string): { method: string; bytes: Buffer } {
  const int = (n: number) => Math.floor(next() * n);
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const valid = [
    Buffer.from(RegisterRequest.encode({ room: "fuzz", peerId: `p${int(1000)}`, client: { name: "f", version: "1", runtime: "r" } }).finish()),
    Buffer.from(SendMessageRequest.encode({ sessionToken: int(2) ? validToken : "nope", toPeerId: "bob", signal: { kind: { $case: "text", value: "hi" } } }).finish()),
    Buffer.from(SendMessageRequest.encode({ sessionToken: validToken, toPeerId: "bob", signal: { kind: { $case: "candidate", value: { candidate: "candidate:1 1 udp 1 1.2.3.4 5 typ host", sdpMid: "0" } } } }).finish()),
    Buffer.from(SubscribeRequest.encode({ sessionToken: "x".repeat(int(100)), resumeAfterSequence: BigInt(int(5)) }).finish()),
  ];
  const methods = ["Register", "SendMessage", "Subscribe", "Leave"];
  const method = methods[int(methods.length)]!;
  const base = valid[int(valid.length)]!;
  switch (int(6)) {
    case 0:
      return { method, bytes: bytes(int(64)) };
    case 1: {
      const flipped = Buffer.from(base);
      for (let i = 0; i < 1 + int(4); i++) {
        const at = int(flipped.length);
        flipped[at] = (flipped[at] ?? 0) ^ (1 << int(8));
      }
      return { method, bytes: flipped };
    }
    case 2:
      return { method, bytes: base.subarray(0, int(base.length)) };
    case 3:
      // A string field holding bytes that are not UTF-8.
      return { method, bytes: Buffer.concat([Buffer.from([0x0a, 4]), Buffer.from([0xc3, 0x28, 0xff, 0xfe])]) };
    case 4:
      // A nested message with a huge announced length, or a wrong wire type.
      return { method, bytes: Buffer.from([0x1a, 0xff, 0xff, 0xff, 0x0f, 0x01]) };
    default:
      return { method, bytes: Buffer.concat([base, bytes(int(16))]) };
  }
}

t.test(`${REQUESTS} malformed requests get clear statuses while a correct client keeps working`, async (t) => {
  // alice only sends (no stream of her own): a long grace keeps her registered.
  const server = await startTestServer(t, { limits: { sessionGraceMs: 300_000, sendRate: 100_000, sendBurst: 100_000, registrationsPerAddress: 100_000, registrations: 100_000, peersPerRoom: 100_000 } });
  const client: SignalingServiceClient = connect(t, server);
  const raw: Client = new GrpcClient(server.address, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
  t.teardown(() => raw.close());

  // The correct pair: alice sends to bob, bob reads; checked throughout the fuzzing.
  const room = uniqueRoom("fuzz-ok");
  const register = (peerId: string) =>
    new Promise<string>((resolve, reject) => client.register({ room, peerId, client: { name: "ok", version: "1", runtime: "tap" } }, (err, res) => (err ? reject(err) : resolve(res!.sessionToken))));
  const alice = await register("alice");
  const bob = await register("bob");
  const inbox: string[] = [];
  const waiting = new Map<string, () => void>();
  const stream = client.subscribe({ sessionToken: bob });
  t.teardown(() => stream.cancel());
  stream.on("error", () => undefined);
  stream.on("data", (event: SubscribeResponse) => {
    const kind = event.event?.$case === "message" ? event.event.value.signal?.kind : undefined;
    if (kind?.$case !== "text") return;
    inbox.push(kind.value);
    waiting.get(kind.value)?.();
  });
  let checks = 0;
  const check = async () => {
    const body = `check ${checks++}`;
    const arrived = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${body} did not arrive within 20 s`)), 20_000);
      waiting.set(body, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    await new Promise<void>((resolve, reject) =>
      client.sendMessage({ sessionToken: alice, toPeerId: "bob", signal: { kind: { $case: "text", value: body } } }, (err) => (err ? reject(err) : resolve())),
    );
    await arrived;
  };

  const next = random(0x1ce7e57);
  const codes = new Map<string, number>();
  const internal: string[] = [];
  const identity = (value: Buffer) => value;
  const one = (method: string, bytes: Buffer) =>
    new Promise<void>((resolve) => {
      let answered = false;
      const done = (err: ServiceError | null) => {
        if (answered) return;
        answered = true;
        const code = status[err?.code ?? status.OK] ?? "?";
        codes.set(code, (codes.get(code) ?? 0) + 1);
        if (err?.code === status.INTERNAL || err?.code === status.UNKNOWN) internal.push(`${method}: ${err.details}`);
        resolve();
      };
      const deadline = { deadline: Date.now() + 20_000 };
      if (method !== "Subscribe") {
        raw.makeUnaryRequest(SERVICE + method, identity, identity, bytes, new Metadata(), deadline, (err) => done(err));
        return;
      }
      const call = raw.makeServerStreamRequest(SERVICE + method, identity, identity, bytes, new Metadata(), deadline);
      // A stream that opens is a valid subscription after all: close it.
      call.on("data", () => call.cancel());
      call.on("error", (err: ServiceError) => done(err.code === status.CANCELLED ? null : err));
      call.on("end", () => done(null));
    });

  // A registered peer of its own, so malformed requests with a valid token reach the broker too.
  const mallory = await new Promise<string>((resolve, reject) =>
    client.register({ room: uniqueRoom("fuzz"), peerId: "mallory", client: { name: "fuzz", version: "1", runtime: "tap" } }, (err, res) => (err ? reject(err) : resolve(res!.sessionToken))),
  );
  let sent = 0;
  const worker = async () => {
    while (sent < REQUESTS) {
      const { method, bytes } = malformed(next, mallory);
      sent++;
      await one(method, bytes);
      if (sent % CHECK_EVERY === 0) await check();
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  await check();
  const total = [...codes.values()].reduce((a, b) => a + b, 0);
  t.equal(total, REQUESTS, `every one of the ${REQUESTS} requests was answered`);
  t.same(internal, [], "no request was answered INTERNAL or UNKNOWN");
  t.ok((codes.get("INVALID_ARGUMENT") ?? 0) > REQUESTS / 10, "most malformed requests are INVALID_ARGUMENT");
  t.ok(checks >= REQUESTS / CHECK_EVERY, `the correct client exchanged ${checks} messages during the fuzzing, all delivered`);
  t.comment(`fuzz: ${REQUESTS} requests; ${[...codes].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(", ")}`);
});
