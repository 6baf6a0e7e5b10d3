import t from "tap";
import { PingPong } from "../core/pingpong.ts";
import { RemoteCandidates, type CandidateInit } from "../core/trickle.ts";

/** Two PingPongs joined back to back, as two peers over a data channel. */
function pair(count: number) {
  const trips: number[] = [];
  const events = { onRoundTrip: (_seq: number, rtt: number) => trips.push(rtt), onUnexpected: () => undefined };
  let a!: PingPong;
  let b!: PingPong;
  a = new PingPong({ send: (data) => queueMicrotask(() => b.receive(data)) }, count, events);
  b = new PingPong({ send: (data) => queueMicrotask(() => a.receive(data)) }, count, events);
  return { a, b, trips };
}

t.test("both sides measure N round trips and finish together", async (t) => {
  const { a, b, trips } = pair(4);
  await Promise.all([a.run(), b.run()]);
  t.equal(a.stats()?.samples.length, 4, "side A measured 4 round trips");
  t.equal(b.stats()?.samples.length, 4, "side B measured 4 round trips");
  t.equal(trips.length, 8, "every round trip was reported");
  const stats = a.stats()!;
  t.ok(stats.min <= stats.avg && stats.avg <= stats.max, "min <= avg <= max");
  t.equal(a.sent, 4 + 4 + 1, "A sent 4 pings, 4 pongs and done");
});

t.test("zero messages still finishes", async (t) => {
  const { a, b } = pair(0);
  await Promise.all([a.run(), b.run()]);
  t.equal(a.stats(), undefined, "no samples, no stats");
});

t.test("a bye through signaling stands in for a lost done", async (t) => {
  const a = new PingPong({ send: () => undefined }, 0, { onRoundTrip: () => undefined, onUnexpected: () => undefined });
  const running = a.run();
  a.peerFinished();
  await running;
  t.pass("finished on peerFinished()");
});

t.test("garbage on the channel is reported, not fatal", async (t) => {
  const seen: string[] = [];
  const a = new PingPong({ send: () => undefined }, 1, { onRoundTrip: () => undefined, onUnexpected: (text) => seen.push(text) });
  a.receive("hello");
  a.receive(new Uint8Array(3));
  a.receive('{"type":"pong","seq":99}');
  t.same(seen, ["hello", "3 bytes of binary"], "unexpected messages are described");
  t.equal(a.pongs, 0, "a pong for a ping never sent is ignored");
});

t.test("remote candidates wait for the description, then apply in order", async (t) => {
  const applied: (CandidateInit | null)[] = [];
  const trickle = new RemoteCandidates(async (candidate) => void applied.push(candidate));
  await trickle.add({ candidate: "candidate:1" });
  await trickle.add({ candidate: "candidate:2" });
  await trickle.end();
  t.same(applied, [], "nothing applied before the remote description");
  t.equal(await trickle.descriptionSet(), 2, "two candidates released");
  t.same(applied, [{ candidate: "candidate:1" }, { candidate: "candidate:2" }, null], "in order, end-of-candidates last");
  await trickle.add({ candidate: "candidate:3" });
  t.same(applied.at(-1), { candidate: "candidate:3" }, "later candidates apply at once");
});
