// The broker contract, without gRPC: ordering, queueing, room events, expiry, replacement and
// limits, run against every broker (in memory, Redis) so they cannot drift apart; and the
// in-memory mailbox. Waits are on events, each with a deadline.
import { status } from "@grpc/grpc-js";
import t, { type Test } from "tap";
import type { Signal, SubscribeResponse } from "../gen/icetest/signaling/v1/signaling.ts";
import type { Broker, PeerRecord } from "../server/broker.ts";
import { Mailbox } from "../server/mailbox.ts";
import { iterate, next } from "./fixtures/broker-contract.ts";
import { brokerKinds, type BrokerKind } from "./fixtures/brokers.ts";

const CLIENT = { name: "test", version: "0", runtime: "tap" };
const ORIGIN = { address: "192.0.2.1" };

function text(value: string): Signal {
  return { kind: { $case: "text", value } };
}

function textOf(event: SubscribeResponse): string | undefined {
  if (event.event?.$case !== "message") return undefined;
  const kind = event.event.value.signal?.kind;
  return kind?.$case === "text" ? kind.value : undefined;
}

async function pair(broker: Broker, room = "lab"): Promise<{ alice: PeerRecord; bob: PeerRecord }> {
  const alice = (await broker.register(room, "alice", CLIENT, ORIGIN)).peer;
  const bob = (await broker.register(room, "bob", CLIENT, ORIGIN)).peer;
  return { alice, bob };
}

function contract(t: Test, kind: BrokerKind): void {
  t.test("messages queued before subscribe arrive first, in order, numbered 1..n without gaps", async (t) => {
    const broker = await kind.create(t);
    const { alice, bob } = await pair(broker);
    for (let i = 1; i <= 5; i++) {
      const { sequence } = await broker.send(alice, "bob", text(`m${i}`));
      t.equal(sequence, BigInt(i), `send ${i} is told sequence ${i}`);
    }
    const events = iterate(await broker.subscribe(bob));
    for (let i = 1; i <= 5; i++) {
      const event = await next(events, `queued message ${i}`);
      t.equal(event.sequence, BigInt(i), `queued event ${i} has sequence ${i}`);
      t.equal(textOf(event), `m${i}`, `queued event ${i} is message m${i}`);
      t.ok(event.serverTime, "every event carries the server time");
    }
    await broker.send(alice, "bob", text("live"));
    const live = await next(events, "the live message");
    t.equal(live.sequence, 6n, "a live message continues the sequence");
    t.equal(live.event?.$case === "message" && live.event.value.fromPeerId, "alice", "the sender is stamped by the broker");
  });

  t.test("a registration sees the others, and they get PeerJoined then PeerLeft", async (t) => {
    const broker = await kind.create(t);
    const alice = await broker.register("lab", "alice", CLIENT, ORIGIN);
    t.same(alice.others, [], "the first peer sees an empty room");
    const aliceEvents = iterate(await broker.subscribe(alice.peer));

    const bob = await broker.register("lab", "bob", { name: "bob-app", version: "2", runtime: "deno" }, ORIGIN);
    t.same(bob.others.map((peer) => peer.peerId), ["alice"], "bob sees alice");
    const joined = await next(aliceEvents, "PeerJoined");
    t.equal(joined.event?.$case, "peerJoined", "alice is told that bob joined");
    if (joined.event?.$case === "peerJoined") {
      t.equal(joined.event.value.peer?.peerId, "bob", "PeerJoined names bob");
      t.equal(joined.event.value.peer?.client?.name, "bob-app", "PeerJoined carries bob's client info");
    }

    await broker.leave(bob.peer, "left");
    const left = await next(aliceEvents, "PeerLeft");
    t.same(left.event, { $case: "peerLeft", value: { peerId: "bob", reason: "left" } }, "alice is told that bob left");
    t.equal(left.sequence, joined.sequence + 1n, "room events share the recipient's sequence");
  });

  t.test("rooms are separate: no events or sends across rooms", async (t) => {
    const broker = await kind.create(t);
    const alice = await broker.register("lab", "alice", CLIENT, ORIGIN);
    const other = await broker.register("other", "bob", CLIENT, ORIGIN);
    t.same(other.others, [], "a peer in another room is not listed");
    await t.rejects(broker.send(alice.peer, "bob", text("hi")), { code: status.NOT_FOUND, message: 'Cannot send to peer "bob": no such peer in room "lab"' }, "sending across rooms is NOT_FOUND");
    const aliceEvents = iterate(await broker.subscribe(alice.peer));
    await broker.register("other", "dave", CLIENT, ORIGIN);
    await broker.register("lab", "carol", CLIENT, ORIGIN);
    const first = await next(aliceEvents, "carol's PeerJoined");
    t.equal(first.event?.$case === "peerJoined" && first.event.value.peer?.peerId, "carol", "alice's first event is carol joining her room, not bob");
  });

  t.test("peer ids: taken ones are refused, empty ones are chosen by the broker", async (t) => {
    const broker = await kind.create(t);
    await broker.register("lab", "alice", CLIENT, ORIGIN);
    await t.rejects(broker.register("lab", "alice", CLIENT, ORIGIN), { code: status.ALREADY_EXISTS, message: /"alice" is already taken in room "lab"/ }, "a taken peer id is ALREADY_EXISTS");
    const chosen = await broker.register("lab", undefined, CLIENT, ORIGIN);
    t.match(chosen.peer.peerId, /^peer-[a-z0-9]{6}$/, "the broker chooses peer-xxxxxx");
    const again = await broker.register("other", "alice", CLIENT, ORIGIN);
    t.equal(again.peer.peerId, "alice", "the same id is free in another room");
  });

  t.test("after leave, the token and the peer are gone; leaving twice is harmless", async (t) => {
    const broker = await kind.create(t);
    const { alice } = await pair(broker);
    const registration = await broker.register("lab", "carol", CLIENT, ORIGIN);
    const carolEvents = iterate(await broker.subscribe(registration.peer));
    await broker.leave(registration.peer, "left");
    const end = await carolEvents.next();
    t.equal(end.done, true, "the leaver's own subscription ends");
    await t.rejects(broker.authenticate(registration.token), { code: status.UNAUTHENTICATED, message: "Unknown or expired session token" }, "its token is refused");
    await t.rejects(broker.send(registration.peer, "alice", text("late")), { code: status.UNAUTHENTICATED }, "it cannot send");
    await t.rejects(broker.send(alice, "carol", text("hi")), { code: status.NOT_FOUND }, "nobody can send to it");
    await t.resolves(broker.leave(registration.peer, "left"), "leaving again is not an error");
    const carolAgain = await broker.register("lab", "carol", CLIENT, ORIGIN);
    await broker.leave(registration.peer, "left");
    t.equal((await broker.authenticate(carolAgain.token)).peerId, "carol", "a stale record cannot remove the new registration of the same id");
  });

  t.test("a peer that never subscribes expires after the grace period", async (t) => {
    const expired: string[] = [];
    const broker = await kind.create(t, { limits: { sessionGraceMs: 30 }, onExpire: (peer) => expired.push(peer.peerId) });
    const alice = await broker.register("lab", "alice", CLIENT, ORIGIN);
    const aliceEvents = iterate(await broker.subscribe(alice.peer));
    const bob = await broker.register("lab", "bob", CLIENT, ORIGIN);
    t.equal((await next(aliceEvents, "PeerJoined")).event?.$case, "peerJoined");
    const left = await next(aliceEvents, "bob's expiry");
    t.same(left.event, { $case: "peerLeft", value: { peerId: "bob", reason: "expired" } }, "alice is told that bob expired");
    t.same(expired, ["bob"], "onExpire is told, once");
    await t.rejects(broker.authenticate(bob.token), { code: status.UNAUTHENTICATED }, "the expired token is refused");
    t.equal((await broker.authenticate(alice.token)).peerId, "alice", "a subscribed peer does not expire meanwhile");
  });

  t.test("a peer whose subscription closed expires; subscribing again in time keeps it", async (t) => {
    const broker = await kind.create(t, { limits: { sessionGraceMs: 40 } });
    const watcher = await broker.register("lab", "watcher", CLIENT, ORIGIN);
    const events = iterate(await broker.subscribe(watcher.peer));
    const bob = await broker.register("lab", "bob", CLIENT, ORIGIN);
    await next(events, "bob joined");
    // Bob reconnects at once: his session survives; then his stream goes for good.
    (await broker.subscribe(bob.peer)).close();
    const resubscribed = await broker.subscribe(bob.peer);
    const carol = await broker.register("lab", "carol", CLIENT, ORIGIN);
    await next(events, "carol joined");
    resubscribed.close();
    // Carol never subscribes and registered before bob's stream closed, so she expires first.
    const first = await next(events, "the first expiry");
    t.same(first.event, { $case: "peerLeft", value: { peerId: "carol", reason: "expired" } }, "carol expires first");
    const second = await next(events, "bob's expiry");
    t.same(second.event, { $case: "peerLeft", value: { peerId: "bob", reason: "expired" } }, "bob expires after his stream closed");
    await t.rejects(broker.authenticate(carol.token), { code: status.UNAUTHENTICATED });
  });

  t.test("a second subscribe replaces the first, which ends with ABORTED", async (t) => {
    const broker = await kind.create(t);
    const { alice, bob } = await pair(broker);
    const first = iterate(await broker.subscribe(bob));
    const pending = first.next();
    const second = iterate(await broker.subscribe(bob));
    await t.rejects(pending, { code: status.ABORTED, message: 'Subscription replaced by a newer Subscribe for peer "bob"' }, "the old subscription fails with ABORTED");
    await broker.send(alice, "bob", text("after"));
    const event = await next(second, "the message on the new subscription");
    t.equal(textOf(event), "after", "the new subscription gets the message");
    t.equal(event.sequence, 1n, "and the sequence is unbroken");
  });

  t.test("a full queue refuses messages with RESOURCE_EXHAUSTED until the recipient reads", async (t) => {
    const broker = await kind.create(t, { limits: { peerEvents: 3 } });
    const { alice, bob } = await pair(broker);
    for (let i = 1; i <= 3; i++) await broker.send(alice, "bob", text(`m${i}`));
    await t.rejects(
      broker.send(alice, "bob", text("one too many")),
      { code: status.RESOURCE_EXHAUSTED, message: /^Cannot send to peer "bob": its queue holds 3 undelivered events of \d+ bytes \(limit 3 \(--max-queue\)\); it is not reading its Subscribe stream$/ },
      "the fourth message is refused",
    );
    const events = iterate(await broker.subscribe(bob));
    t.equal(textOf(await next(events)), "m1", "the queue kept the first message");
    const { sequence } = await broker.send(alice, "bob", text("m4"));
    t.equal(sequence, 4n, "a refused message used no sequence number");
  });

  t.test("close ends subscriptions with UNAVAILABLE and refuses later calls", async (t) => {
    // A grace long enough that alice, who never subscribes, does not expire (an event) before close.
    const broker = await kind.create(t, { limits: { sessionGraceMs: 5_000 } });
    const { bob } = await pair(broker);
    const pending = iterate(await broker.subscribe(bob)).next();
    await broker.close();
    await t.rejects(pending, { code: status.UNAVAILABLE, message: "Server is shutting down" }, "open subscriptions end with UNAVAILABLE");
    await t.rejects(broker.register("lab", "carol", CLIENT, ORIGIN), { code: status.UNAVAILABLE }, "register after close is UNAVAILABLE");
    await t.resolves(broker.close(), "closing twice is harmless");
  });
}

for (const kind of brokerKinds(t)) {
  t.test(kind.name, { skip: kind.skip }, async (t) => contract(t, kind));
}

t.test("a mailbox hands out events only when asked, so they stay queued under backpressure", async (t) => {
  let idle = 0;
  const mailbox = new Mailbox(10, undefined, () => idle++);
  mailbox.post({ $case: "peerLeft", value: { peerId: "a", reason: "left" } }, 10);
  mailbox.post({ $case: "peerLeft", value: { peerId: "b", reason: "left" } }, 10);
  const reader = mailbox.attach(new Error("replaced"));
  t.equal(mailbox.undelivered, 2, "attaching takes nothing");
  t.equal((await reader.next()).value?.sequence, 1n, "the first event comes on request");
  t.equal(mailbox.undelivered, 1, "the second is still queued");
  await reader.return();
  t.equal(idle, 1, "the mailbox reports that its reader went away");
  t.equal(mailbox.hasReader, false, "and has no reader");
});
