// Liveness: heartbeats on idle streams; a peer process that is SIGKILLed or SIGSTOPped leaves the
// room with peer_left (test-shortened heartbeat and grace); a stream replaced while blocked on flow
// control ends at once.
import { status, type ServiceError } from "@grpc/grpc-js";
import t from "tap";
import type { SignalingServiceClient, SubscribeResponse } from "../gen/icetest/signaling/v1/signaling.ts";
import { loopbackFlags, spawnPeer, uniqueRoom } from "./fixtures/peers.ts";
import { connect, startTestServer } from "./fixtures/server.ts";

const CLIENT = { name: "liveness-test", version: "0", runtime: "tap" };

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

/** The events of a subscription, with a wait for the first one matching. */
function watch(client: SignalingServiceClient, token: string) {
  const events: SubscribeResponse[] = [];
  const waiters = new Set<() => void>();
  const stream = client.subscribe({ sessionToken: token });
  const failed = new Promise<ServiceError>((resolve) => stream.on("error", resolve));
  stream.on("data", (event: SubscribeResponse) => {
    events.push(event);
    waiters.forEach((wake) => wake());
  });
  const until = (what: string, match: (event: SubscribeResponse) => boolean, limitMs = 30_000) =>
    new Promise<SubscribeResponse>((resolve, reject) => {
      const check = () => {
        const found = events.find(match);
        if (!found) return false;
        clearTimeout(timer);
        waiters.delete(wake);
        resolve(found);
        return true;
      };
      const wake = () => void check();
      const timer = setTimeout(() => {
        waiters.delete(wake);
        reject(new Error(`no ${what} within ${limitMs} ms`));
      }, limitMs);
      if (!check()) waiters.add(wake);
    });
  return { stream, events, until, failed };
}

t.test("an idle stream receives heartbeats that take no sequence number", async (t) => {
  const server = await startTestServer(t, { limits: { heartbeatMs: 200 } });
  const client = connect(t, server);
  const token = await register(client, uniqueRoom(), "alice");
  const { stream, until } = watch(client, token);
  t.teardown(() => stream.cancel());
  const beat = await until("a heartbeat", (e) => e.event?.$case === "heartbeat");
  t.equal(beat.sequence, 0n, "a heartbeat has sequence 0");
  t.same(beat.event?.$case === "heartbeat" && beat.event.value, { intervalMs: 200 }, "and says how often they come");
});

for (const signal of ["SIGKILL", "SIGSTOP"] as const) {
  t.test(`a peer process stopped by ${signal} is gone from the room with peer_left`, async (t) => {
    const heartbeatMs = 500;
    const sessionGraceMs = 1_000;
    const server = await startTestServer(t, { limits: { heartbeatMs, sessionGraceMs } });
    const client = connect(t, server);
    const room = uniqueRoom("live");
    const watcher = watch(client, await register(client, room, "watcher"));
    t.teardown(() => watcher.stream.cancel());
    const peer = await spawnPeer("node", ["--role", "answerer", "--id", "victim", ...loopbackFlags(`http://${server.address}`, room, ["--wait", "60s"])]);
    t.teardown(() => {
      peer.child.kill("SIGCONT");
      peer.child.kill("SIGKILL");
    });
    await watcher.until("the peer's peer_joined", (e) => e.event?.$case === "peerJoined" && e.event.value.peer?.peerId === "victim", 60_000);
    // Registered is not enough: wait until its stream is open, so the stream's end is what counts.
    while (!server.lines.some((line) => /subscribe .*peer=victim/.test(line))) await new Promise((resolve) => setTimeout(resolve, 50));
    const stoppedAt = performance.now();
    peer.child.kill(signal);
    const left = await watcher.until("peer_left", (e) => e.event?.$case === "peerLeft" && e.event.value.peerId === "victim", 20_000);
    const seconds = ((performance.now() - stoppedAt) / 1000).toFixed(2);
    t.same(left.event?.$case === "peerLeft" && left.event.value, { peerId: "victim", reason: "expired" }, `peer_left with reason expired after ${seconds} s (bound: 2 × ${heartbeatMs} ms heartbeat + ${sessionGraceMs} ms grace)`);
    t.comment(`peer_left after ${signal}: ${seconds} s`);
  });
}

t.test("a stream replaced while blocked on flow control ends at once, and the new one gets the messages", async (t) => {
  const server = await startTestServer(t, { limits: { heartbeatMs: 60_000, sendRate: 100_000, sendBurst: 100_000, sessionGraceMs: 60_000 } });
  const client = connect(t, server);
  const room = uniqueRoom("replace");
  const alice = await register(client, room, "alice");
  const bob = await register(client, room, "bob");
  const old = watch(client, bob);
  await old.until("subscribed", (e) => e.event?.$case === "subscribed");
  old.stream.pause();
  // Fill the HTTP/2 window and the stream's buffer until the server waits for a drain.
  const chunk = "b".repeat(60 * 1024);
  for (let i = 0; i < 40; i++) await send(client, alice, "bob", `${i}:${chunk}`);
  const fresh = watch(client, bob);
  t.teardown(() => fresh.stream.cancel());
  t.teardown(() => old.stream.cancel());
  await fresh.until("the new stream's subscribed", (e) => e.event?.$case === "subscribed");
  const ended = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the old stream did not end within 10 s")), 10_000);
    const check = () => {
      const line = server.lines.find((l) => /unsubscribe .*peer=bob reason=replaced/.test(l));
      if (line) {
        clearTimeout(timer);
        return resolve(line);
      }
      setTimeout(check, 20);
    };
    check();
  });
  t.match(ended, /reason=replaced/, "the server ended the blocked stream as replaced");
  await send(client, alice, "bob", "after");
  await fresh.until("the message sent after the takeover", (e) => e.event?.$case === "message" && e.event.value.signal?.kind?.$case === "text" && e.event.value.signal.kind.value === "after");
  t.pass("the new stream receives messages");
  old.stream.resume();
  const oldStatus = await Promise.race([
    old.failed,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`the replaced client saw no status within 20 s (${old.events.length} events read)`)), 20_000).unref()),
  ]);
  t.ok([status.ABORTED, status.CANCELLED].includes(oldStatus.code), `the replaced client learns its stream ended (${status[oldStatus.code]}: ${oldStatus.details})`);
});
