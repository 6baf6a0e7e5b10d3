// The service over real gRPC: every bad input gets the right status and a message that names the
// problem, the server keeps serving afterwards, and the happy paths deliver what they promise.
import { createHmac } from "node:crypto";
import { Metadata, status, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import t, { type Test } from "tap";
import {
  SdpType,
  type DeepPartial,
  type RegisterResponse,
  type SendMessageResponse,
  type Signal,
  type SignalingServiceClient,
  type SubscribeResponse,
} from "../gen/icetest/signaling/v1/signaling.ts";
import { hostOfAuthority, turnRestCredentials } from "../server/ice-servers.ts";
import { MemoryBroker } from "../server/memory-broker.ts";
import { connect, startTestServer, type Teardown, type TestServer } from "./fixtures/server.ts";

const DEADLINE_MS = 5_000;
const CLIENT = { name: "rpc-test", version: "0.0.0", runtime: "node" };
const OFFER_SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

let roomCounter = 0;
function uniqueRoom(): string {
  return `room-${process.pid}-${++roomCounter}`;
}

// ---------------------------------------------------------------------------------------------
// Promise wrappers around the generated client.

function callOptions() {
  return { deadline: Date.now() + DEADLINE_MS };
}

function register(client: SignalingServiceClient, room: string, peerId = ""): Promise<RegisterResponse> {
  return new Promise((resolve, reject) =>
    client.register({ room, peerId, client: CLIENT }, new Metadata(), callOptions(), (err, res) => (err ? reject(err) : resolve(res))),
  );
}

function send(client: SignalingServiceClient, sessionToken: string, toPeerId: string, signal: Signal | undefined): Promise<SendMessageResponse> {
  return new Promise((resolve, reject) =>
    client.sendMessage({ sessionToken, toPeerId, signal }, new Metadata(), callOptions(), (err, res) => (err ? reject(err) : resolve(res))),
  );
}

function leave(client: SignalingServiceClient, sessionToken: string): Promise<void> {
  return new Promise((resolve, reject) =>
    client.leave({ sessionToken }, new Metadata(), callOptions(), (err) => (err ? reject(err) : resolve())),
  );
}

function text(value: string): Signal {
  return { kind: { $case: "text", value } };
}

function description(type: number, sdp: string): Signal {
  return { kind: { $case: "description", value: { type: type as SdpType, sdp } } };
}

function candidate(value: string): Signal {
  return { kind: { $case: "candidate", value: { candidate: value } } };
}

/** The status of a call that must fail. */
async function failure(call: Promise<unknown>): Promise<ServiceError> {
  try {
    await call;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error("the call succeeded but should have failed");
}

async function expectStatus(t: Test, call: Promise<unknown>, code: status, details: string | RegExp, what: string): Promise<void> {
  const err = await failure(call);
  t.equal(err.code, code, `${what} is ${status[code]}`);
  t.match(err.details, details, `${what}: the message says why ("${err.details}")`);
}

// ---------------------------------------------------------------------------------------------
// A Subscribe stream whose events a test awaits one by one, with a deadline.

class Inbox {
  private readonly events: SubscribeResponse[] = [];
  private cursor = 0;
  private wake: (() => void) | undefined;
  /** The stream's end: its status (OK when it ended cleanly). */
  readonly ended: Promise<{ code: status; details: string }>;

  constructor(readonly stream: ClientReadableStream<SubscribeResponse>) {
    stream.on("data", (event: SubscribeResponse) => {
      this.events.push(event);
      this.wake?.();
    });
    this.ended = new Promise((resolve) => {
      stream.on("error", (err: ServiceError) => resolve({ code: err.code, details: err.details }));
      stream.on("status", (s: { code: status; details: string }) => {
        if (s.code === status.OK) resolve({ code: s.code, details: s.details });
      });
    });
  }

  /** The next event not yet returned. */
  async next(what = "an event"): Promise<SubscribeResponse> {
    const deadline = Date.now() + DEADLINE_MS;
    while (this.cursor >= this.events.length) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${DEADLINE_MS} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    return this.events[this.cursor++]!;
  }

  /** The next message's signal text, checking sender and sequence on the way. */
  async nextText(t: Test, from: string, sequence: bigint): Promise<string | undefined> {
    const event = await this.next(`message ${sequence}`);
    t.equal(event.sequence, sequence, `message has sequence ${sequence}`);
    if (event.event?.$case !== "message") {
      t.fail(`expected a message, got ${event.event?.$case}`);
      return undefined;
    }
    t.equal(event.event.value.fromPeerId, from, `message ${sequence} is from ${from}`);
    const kind = event.event.value.signal?.kind;
    return kind?.$case === "text" ? kind.value : undefined;
  }
}

function subscribe(t: Teardown, client: SignalingServiceClient, sessionToken: string): Inbox {
  const inbox = new Inbox(client.subscribe({ sessionToken }));
  t.teardown(() => inbox.stream.cancel());
  return inbox;
}

async function subscribed(inbox: Inbox): Promise<string[]> {
  const first = await inbox.next("the subscribed event");
  if (first.event?.$case !== "subscribed") throw new Error(`first event is ${first.event?.$case}, not subscribed`);
  if (first.sequence !== 0n) throw new Error("subscribed must have sequence 0");
  return first.event.value.peers.map((peer) => peer.peerId);
}

// ---------------------------------------------------------------------------------------------

t.test("bad requests get the right status and a useful message, and the server keeps serving", async (t) => {
  const server = await startTestServer(t);
  const client = connect(t, server);
  const room = uniqueRoom();
  const alice = await register(client, room, "alice");
  const bob = await register(client, room, "bob");
  const sendAsAlice = (signal: Signal | undefined, to = "bob") => send(client, alice.sessionToken, to, signal);

  /** After every refusal: the server still answers a valid call. */
  const stillServing = async (what: string) => {
    const { sequence } = await sendAsAlice(text(`after ${what}`));
    t.ok(sequence > 0n, `the server still serves after ${what}`);
  };

  const cases: Array<[string, () => Promise<unknown>, status, string | RegExp]> = [
    ["an unknown session token", () => send(client, "no-such-token", "bob", text("x")), status.UNAUTHENTICATED, "Unknown or expired session token"],
    ["an empty session token", () => send(client, "", "bob", text("x")), status.UNAUTHENTICATED, /^Missing session token/],
    ["Leave with an unknown token", () => leave(client, "no-such-token"), status.UNAUTHENTICATED, "Unknown or expired session token"],
    ["sending to an unknown peer", () => sendAsAlice(text("x"), "nobody"), status.NOT_FOUND, `Cannot send to peer "nobody": no such peer in room "${room}"`],
    ["an empty room", () => register(client, ""), status.INVALID_ARGUMENT, /^Missing room: use 1 to 64 characters/],
    ["a room with a space", () => register(client, "la b"), status.INVALID_ARGUMENT, /^Invalid room "la b": use 1 to 64 characters from A-Z/],
    ["a room of 65 characters", () => register(client, "r".repeat(65)), status.INVALID_ARGUMENT, /^Invalid room "r+…"/],
    ["a peer id with a slash", () => register(client, room, "a/b"), status.INVALID_ARGUMENT, /^Invalid peer_id "a\/b"/],
    ["a taken peer id", () => register(client, room, "alice"), status.ALREADY_EXISTS, `Peer id "alice" is already taken in room "${room}"`],
    ["an empty to_peer_id", () => sendAsAlice(text("x"), ""), status.INVALID_ARGUMENT, /^Missing to_peer_id/],
    ["a missing signal", () => sendAsAlice(undefined), status.INVALID_ARGUMENT, /^Missing signal: set one of description, candidate/],
    ["an empty signal", () => sendAsAlice({ kind: undefined }), status.INVALID_ARGUMENT, "Signal is empty: set one of description, candidate, end_of_candidates, bye, text, report"],
    ["an UNSPECIFIED SDP type", () => sendAsAlice(description(SdpType.SDP_TYPE_UNSPECIFIED, OFFER_SDP)), status.INVALID_ARGUMENT, /^Description type is not set: use SDP_TYPE_OFFER, SDP_TYPE_ANSWER, SDP_TYPE_PRANSWER or SDP_TYPE_ROLLBACK/],
    ["an unknown SDP type number", () => sendAsAlice(description(7, OFFER_SDP)), status.INVALID_ARGUMENT, /^Unknown description type 7: use SDP_TYPE_OFFER/],
    ["an offer without SDP", () => sendAsAlice(description(SdpType.SDP_TYPE_OFFER, "")), status.INVALID_ARGUMENT, /^Missing SDP in offer/],
    ["malformed SDP", () => sendAsAlice(description(SdpType.SDP_TYPE_ANSWER, "hello")), status.INVALID_ARGUMENT, 'Malformed SDP in answer: it must start with "v=0", got "hello"'],
    ["a rollback with SDP", () => sendAsAlice(description(SdpType.SDP_TYPE_ROLLBACK, OFFER_SDP)), status.INVALID_ARGUMENT, "A rollback carries no SDP: leave sdp empty"],
    ["a candidate without candidate:", () => sendAsAlice(candidate("udp 1 2 3")), status.INVALID_ARGUMENT, 'Malformed candidate "udp 1 2 3": it must start with "candidate:"'],
    ["an empty candidate", () => sendAsAlice(candidate("")), status.INVALID_ARGUMENT, /send end_of_candidates instead/],
    ["sending to yourself", () => sendAsAlice(text("me"), "alice"), status.INVALID_ARGUMENT, 'Cannot send to peer "alice": that is the sender itself'],
    ["an SDP over 64 KiB", () => sendAsAlice(description(SdpType.SDP_TYPE_OFFER, OFFER_SDP + "a".repeat(64 * 1024))), status.INVALID_ARGUMENT, /^SDP is too large: \d+ bytes, the limit is 65536 \(64 KiB\)/],
    ["a text over 64 KiB", () => sendAsAlice(text("é".repeat(40 * 1024))), status.INVALID_ARGUMENT, "Text is too large: 81920 bytes, the limit is 65536 (64 KiB)"],
    ["a candidate over 2 KiB", () => sendAsAlice(candidate("candidate:" + "1".repeat(2048))), status.INVALID_ARGUMENT, /^Candidate is too large/],
    ["a report over 16 KiB", () => sendAsAlice({ kind: { $case: "report", value: { connected: false, reason: "x", message: "m".repeat(17 * 1024), phase: "ice", candidates: [], servers: [], pairs: [] } } }), status.INVALID_ARGUMENT, /^Report is too large: \d+ bytes, the limit is 16384 \(16 KiB\)/],
    ["a client name over 256 characters", () => new Promise((resolve, reject) => client.register({ room, peerId: "", client: { ...CLIENT, name: "n".repeat(257) } }, (err, res) => (err ? reject(err) : resolve(res)))), status.INVALID_ARGUMENT, "Invalid client.name: 257 characters, the limit is 256"],
    ["a request over the server's message limit", () => sendAsAlice(text("x".repeat(300 * 1024))), status.RESOURCE_EXHAUSTED, /larger than max/],
  ];
  for (const [what, call, code, details] of cases) {
    await expectStatus(t, call(), code, details, what);
    await stillServing(what);
  }

  const stream = subscribe(t, client, "no-such-token");
  t.same(await stream.ended, { code: status.UNAUTHENTICATED, details: "Unknown or expired session token" }, "Subscribe with an unknown token ends UNAUTHENTICATED");
  await stillServing("a refused Subscribe");
  t.ok(bob.sessionToken, "bob stays registered throughout");
});

t.test("every valid signal kind is relayed; an a= candidate prefix is dropped", async (t) => {
  const server = await startTestServer(t);
  const client = connect(t, server);
  const room = uniqueRoom();
  const alice = await register(client, room, "alice");
  const bob = await register(client, room, "bob");
  const signals: Signal[] = [
    description(SdpType.SDP_TYPE_OFFER, OFFER_SDP),
    description(SdpType.SDP_TYPE_ROLLBACK, ""),
    { kind: { $case: "candidate", value: { candidate: "a=candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host", sdpMid: "0", sdpMLineIndex: 0 } } },
    { kind: { $case: "endOfCandidates", value: { usernameFragment: "" } } },
    { kind: { $case: "bye", value: { reason: "done" } } },
    text(""),
  ];
  for (const signal of signals) await send(client, alice.sessionToken, "bob", signal);
  const inbox = subscribe(t, client, bob.sessionToken);
  await subscribed(inbox);
  const received: Array<DeepPartial<Signal> | undefined> = [];
  for (let i = 0; i < signals.length; i++) {
    const event = await inbox.next();
    received.push(event.event?.$case === "message" ? event.event.value.signal : undefined);
  }
  const expected = [...signals];
  expected[2] = { kind: { $case: "candidate", value: { candidate: "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host", sdpMid: "0", sdpMLineIndex: 0 } } };
  t.same(received, expected, "bob gets every signal as sent, the candidate without its a= prefix");
});

t.test("two peers: messages arrive in order, numbered 1..n, stamped with the sender", async (t) => {
  const server = await startTestServer(t);
  const client = connect(t, server);
  const room = uniqueRoom();
  const alice = await register(client, room, "alice");
  const bob = await register(client, room, "bob");
  t.same(bob.peers.map((peer) => peer.peerId), ["alice"], "bob's RegisterResponse lists alice");
  t.equal(bob.room, room, "RegisterResponse names the room");

  // Three messages wait in bob's queue before he subscribes.
  for (let i = 1; i <= 3; i++) {
    const { sequence } = await send(client, alice.sessionToken, "bob", text(`m${i}`));
    t.equal(sequence, BigInt(i), `SendMessage ${i} returns sequence ${i}`);
  }
  const inbox = subscribe(t, client, bob.sessionToken);
  t.same(await subscribed(inbox), ["alice"], "subscribed lists alice");
  for (let i = 1; i <= 3; i++) t.equal(await inbox.nextText(t, "alice", BigInt(i)), `m${i}`, `queued message ${i} arrives`);
  for (let i = 4; i <= 10; i++) await send(client, alice.sessionToken, "bob", text(`m${i}`));
  for (let i = 4; i <= 10; i++) t.equal(await inbox.nextText(t, "alice", BigInt(i)), `m${i}`, `live message ${i} arrives in order`);
});

t.test("three peers: nobody receives a message meant for someone else", async (t) => {
  const server = await startTestServer(t);
  const client = connect(t, server);
  const room = uniqueRoom();
  const peers = { alice: await register(client, room, "alice"), bob: await register(client, room, "bob"), carol: await register(client, room, "carol") };
  const inboxes = {
    alice: subscribe(t, client, peers.alice.sessionToken),
    bob: subscribe(t, client, peers.bob.sessionToken),
    carol: subscribe(t, client, peers.carol.sessionToken),
  };
  const routes: Array<[keyof typeof peers, keyof typeof peers]> = [
    ["alice", "bob"], ["alice", "carol"], ["bob", "carol"], ["carol", "alice"], ["bob", "alice"], ["carol", "bob"],
  ];
  for (const [from, to] of routes) await send(client, peers[from].sessionToken, to, text(`${from}->${to}`));
  // A last message from alice to each marks the end of what each may receive.
  for (const to of ["bob", "carol"] as const) await send(client, peers.alice.sessionToken, to, text("end"));
  await send(client, peers.bob.sessionToken, "alice", text("end"));

  for (const name of ["alice", "bob", "carol"] as const) {
    await subscribed(inboxes[name]);
    const got: string[] = [];
    for (;;) {
      const event = await inboxes[name].next(`${name}'s messages`);
      if (event.event?.$case !== "message") continue; // PeerJoined of later arrivals
      const kind = event.event.value.signal?.kind;
      const body = kind?.$case === "text" ? kind.value : "?";
      if (body === "end") break;
      got.push(body);
    }
    const expected = routes.filter(([, to]) => to === name).map(([from, to]) => `${from}->${to}`);
    t.same(got, expected, `${name} receives exactly the messages addressed to ${name}, in order`);
  }
});

t.test("streams see PeerJoined and PeerLeft; Leave ends the leaver's stream cleanly", async (t) => {
  const server = await startTestServer(t);
  const client = connect(t, server);
  const room = uniqueRoom();
  const alice = await register(client, room, "alice");
  const aliceInbox = subscribe(t, client, alice.sessionToken);
  t.same(await subscribed(aliceInbox), [], "alice is alone at first");

  const bob = await register(client, room, "bob");
  const joined = await aliceInbox.next("PeerJoined");
  t.equal(joined.event?.$case, "peerJoined", "alice sees bob join");
  t.equal(joined.event?.$case === "peerJoined" && joined.event.value.peer?.peerId, "bob", "PeerJoined names bob");
  t.equal(joined.sequence, 1n, "PeerJoined is alice's event 1");

  const bobInbox = subscribe(t, client, bob.sessionToken);
  t.same(await subscribed(bobInbox), ["alice"], "bob's subscribed lists alice");
  await leave(client, bob.sessionToken);
  t.same(await bobInbox.ended, { code: status.OK, details: "OK" }, "bob's own stream ends with OK");
  const left = await aliceInbox.next("PeerLeft");
  t.same(left.event, { $case: "peerLeft", value: { peerId: "bob", reason: "left" } }, "alice sees bob leave");
  await expectStatus(t, send(client, bob.sessionToken, "alice", text("ghost")), status.UNAUTHENTICATED, "Unknown or expired session token", "sending after Leave");
  t.match(server.lines.join("\n"), /leave room=\S+ peer=bob reason=left/, "the leave is logged");
});

t.test("a cancelled stream starts the grace period: the peer expires, the others are told, its token dies", async (t) => {
  const server = await startTestServer(t, { sessionGraceMs: 50 });
  const client = connect(t, server);
  const room = uniqueRoom();
  const alice = await register(client, room, "alice");
  const aliceInbox = subscribe(t, client, alice.sessionToken);
  await subscribed(aliceInbox);
  const bob = await register(client, room, "bob");
  await aliceInbox.next("bob joined");
  const bobInbox = subscribe(t, client, bob.sessionToken);
  await subscribed(bobInbox);
  bobInbox.stream.cancel();
  const left = await aliceInbox.next("bob's expiry");
  t.same(left.event, { $case: "peerLeft", value: { peerId: "bob", reason: "expired" } }, "alice is told that bob expired");
  await expectStatus(t, send(client, bob.sessionToken, "alice", text("late")), status.UNAUTHENTICATED, "Unknown or expired session token", "bob's calls after expiry");
  const log = server.lines.join("\n");
  t.match(log, /unsubscribe room=\S+ peer=bob reason=cancelled/, "the server saw the cancellation");
  t.match(log, /expire room=\S+ peer=bob reason=expired/, "and logged the expiry");
});

t.test("an unexpected failure is INTERNAL with a generic message; the details go to the log only", async (t) => {
  const broker = new MemoryBroker();
  broker.send = async () => {
    throw new Error("backend 10.0.0.5:6379 refused the connection");
  };
  const server = await startTestServer(t, { broker });
  const client = connect(t, server);
  const room = uniqueRoom();
  const alice = await register(client, room, "alice");
  await register(client, room, "bob");
  await expectStatus(t, send(client, alice.sessionToken, "bob", text("x")), status.INTERNAL, /^Internal server error$/, "a broker bug");
  t.match(server.lines.join("\n"), /internal-error method=\/icetest.signaling.v1.SignalingService\/SendMessage error="Error: backend 10.0.0.5:6379 refused/, "the log has the details");
});

t.test("a second Subscribe replaces the first with ABORTED, and delivery continues on the new one", async (t) => {
  const server = await startTestServer(t);
  const client = connect(t, server);
  const room = uniqueRoom();
  const alice = await register(client, room, "alice");
  const bob = await register(client, room, "bob");
  const first = subscribe(t, client, bob.sessionToken);
  await subscribed(first);
  const second = subscribe(t, client, bob.sessionToken);
  await subscribed(second);
  t.same(await first.ended, { code: status.ABORTED, details: 'Subscription replaced by a newer Subscribe for peer "bob"' }, "the first stream ends ABORTED");
  await send(client, alice.sessionToken, "bob", text("hello"));
  t.equal(await second.nextText(t, "alice", 1n), "hello", "the new stream gets the message");
});

t.test("a reader that stops reading keeps its events queued, and senders are refused once its queue is full", async (t) => {
  const server = await startTestServer(t, { maxQueue: 5 });
  const client = connect(t, server);
  const room = uniqueRoom();
  const alice = await register(client, room, "alice");
  const bob = await register(client, room, "bob");
  const inbox = subscribe(t, client, bob.sessionToken);
  await subscribed(inbox);
  inbox.stream.pause();
  const chunk = "x".repeat(60 * 1024);
  let sent = 0;
  let refusal: ServiceError | undefined;
  // HTTP/2 windows and stream buffers take a few dozen 60 KiB messages; after that the mailbox fills.
  while (sent < 300 && !refusal) {
    try {
      await send(client, alice.sessionToken, "bob", text(`${sent + 1}:${chunk}`));
      sent++;
    } catch (err) {
      refusal = err as ServiceError;
    }
  }
  t.equal(refusal?.code, status.RESOURCE_EXHAUSTED, `the server refused message ${sent + 1} instead of buffering without bound`);
  t.match(refusal?.details, /^Cannot send to peer "bob": its queue holds 5 undelivered events of \d+ bytes \(limit 5 \(--max-queue\)\)/, "the refusal names the recipient and the limit");
  inbox.stream.resume();
  for (let i = 1; i <= sent; i++) {
    const body = await inbox.nextText(t, "alice", BigInt(i));
    if (!body?.startsWith(`${i}:`)) t.fail(`message ${i} is out of order`);
  }
  const { sequence } = await send(client, alice.sessionToken, "bob", text("after"));
  t.equal(sequence, BigInt(sent + 1), "once bob reads again, sending works and the sequence has no gap");
});

t.test("ice_servers: STUN on the dialled host and the real STUN port; TURN REST credentials verify", async (t) => {
  const secret = "s3cret";
  const server = await startTestServer(t, { turn: { urls: ["turn:turn.example.org:3478", "turns:turn.example.org:5349"], secret } });
  const byIp = await register(connect(t, server), uniqueRoom(), "alice");
  const [stun, turn] = byIp.iceServers;
  t.equal(stun?.urls[0], `stun:127.0.0.1:${server.stunPort}`, "dialling 127.0.0.1 gives stun:127.0.0.1 and the bound STUN port");
  t.match(stun?.urls[1], /^stun:127\.0\.0\.1:\d+$/, "then the same responder's second port, for NAT tests");
  t.same(turn?.urls, ["turn:turn.example.org:3478", "turns:turn.example.org:5349"], "the TURN URLs are passed on");
  const [expiry, peerId] = (turn?.username ?? "").split(":");
  t.equal(peerId, "alice", "the TURN user name ends with the peer id");
  const ttl = Number(expiry) - Date.now() / 1000;
  t.ok(ttl > 3590 && ttl <= 3600, `the credential expires in about an hour (${Math.round(ttl)} s)`);
  t.equal(turn?.credential, createHmac("sha1", secret).update(turn?.username ?? "").digest("base64"), "the password is base64(HMAC-SHA1(secret, username))");

  const byName = await register(connect(t, { address: `localhost:${server.port}` }), uniqueRoom(), "bob");
  t.equal(byName.iceServers[0]?.urls[0], `stun:localhost:${server.stunPort}`, "dialling localhost gives stun:localhost");
});

t.test("ice_servers: publicHost wins, static TURN credentials pass through, no STUN entry when disabled", async (t) => {
  const server = await startTestServer(t, { publicHost: "signal.example.org", turn: { urls: ["turn:relay.example.org"], user: "u", password: "p" } });
  const response = await register(connect(t, server), uniqueRoom());
  t.same(response.iceServers, [
    { urls: [`stun:signal.example.org:${server.stunPort}`, response.iceServers[0]?.urls[1]], username: "", credential: "" },
    { urls: ["turn:relay.example.org"], username: "u", credential: "p" },
  ], "publicHost in the STUN URL, static TURN credentials");
  t.match(response.peerId, /^peer-[a-z0-9]{6}$/, "an empty peer_id is replaced by a server-chosen one");

  const noStun = await startTestServer(t, { stunPort: null });
  t.equal(noStun.stunPort, null, "STUN can be disabled");
  t.same((await register(connect(t, noStun), uniqueRoom())).iceServers, [], "and then no ICE servers are offered");
});

t.test("hosts in :authority and TURN REST credentials, as pure functions", async (t) => {
  t.equal(hostOfAuthority("[::1]:8443"), "::1", "a bracketed IPv6 authority gives the bare address");
  t.equal(hostOfAuthority("[::1]"), "::1", "brackets without a port work too");
  t.equal(hostOfAuthority("example.org"), "example.org", "a bare host name is kept");
  t.equal(hostOfAuthority("example.org:443"), "example.org", "the port is dropped");
  t.equal(hostOfAuthority("::1"), "::1", "a bare IPv6 address is accepted");
  t.equal(hostOfAuthority(""), undefined, "an empty authority gives nothing");
  t.equal(hostOfAuthority("evil host/x:1"), undefined, "a header that is not a host gives nothing");
  const credentials = turnRestCredentials("secret", "bob", 600, 1_700_000_000_000);
  t.same(credentials, { username: "1700000600:bob", credential: createHmac("sha1", "secret").update("1700000600:bob").digest("base64") }, "coturn's REST scheme");
});

t.test("TLS: the fixture's self-signed server serves a client that trusts its certificate", async (t) => {
  const server = await startTestServer(t, { tls: true });
  t.ok(server.caPem?.includes("BEGIN CERTIFICATE"), "the fixture exposes the certificate");
  const response = await register(connect(t, server), uniqueRoom(), "alice");
  t.equal(response.peerId, "alice", "Register works over TLS");
});

t.test("shutdown with open Subscribe streams completes promptly and tells clients UNAVAILABLE", async (t) => {
  const server: TestServer = await startTestServer(t);
  const client = connect(t, server);
  const room = uniqueRoom();
  const inboxes: Inbox[] = [];
  for (const name of ["alice", "bob", "carol"]) {
    const registration = await register(client, room, name);
    const inbox = subscribe(t, client, registration.sessionToken);
    await subscribed(inbox);
    inboxes.push(inbox);
  }
  const started = Date.now();
  await server.shutdown();
  const elapsed = Date.now() - started;
  t.ok(elapsed < 900, `shutdown took ${elapsed} ms, less than the fixture's 1 s grace: no forced fallback`);
  for (const inbox of inboxes) {
    t.same(await inbox.ended, { code: status.UNAVAILABLE, details: "Server is shutting down" }, "each stream ends with UNAVAILABLE");
  }
  t.notMatch(server.lines.join("\n"), /shutdown-forced/, "no connection had to be cut");
  t.equal(server.lines.filter((line) => / unsubscribe .*reason=shutdown/.test(line)).length, 3, "each stream's end is logged");
});
