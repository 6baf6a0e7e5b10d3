// A peer given several instances (`--signaling-addr URL1,URL2`) survives the death of the one it
// registered on: its Subscribe stream moves to the next instance and resumes there (sessions are
// shared through Redis), and it still meets a peer that arrives afterwards on the other instance.
import t from "tap";
import { startServerProcess } from "./fixtures/instance.ts";
import { loopbackFlags, resultOf, runCli, spawnPeer, uniqueRoom, type RunEvent } from "./fixtures/peers.ts";
import { REDIS_MISSING, startRedis } from "./fixtures/redis.ts";
import { startTestServer } from "./fixtures/server.ts";
import { parseSignalingAddr } from "../core/options.ts";
import { SignalingChannel } from "../core/signaling.ts";
import type { SubscribeResponse } from "../gen/icetest/signaling/v1/signaling.ts";

/** Generous: CI machines are shared, and a CLI peer takes seconds just to start there. */
const DEADLINE_MS = 60_000;
const LIMITS = { sendRate: 100_000, sendBurst: 100_000 };
const LIMIT_FLAGS = ["--send-rate", "100000", "--send-burst", "100000"];
/** The answerer waits through the kill and the offerer's start-up. */
const PEER_FLAGS = ["--timeout", "60s", "--wait", "120s"];

t.setTimeout(240_000);

t.before(() => {
  if (REDIS_MISSING) t.plan(0, REDIS_MISSING);
});

/** Resolves with a peer's first JSON event named `name`; fails after the deadline. */
function eventOf(lines: string[], subscribe: (listener: (line: string) => void) => void, name: string): Promise<RunEvent> {
  const parse = (line: string): RunEvent | undefined => {
    try {
      const event = JSON.parse(line) as RunEvent;
      return event.event === name ? event : undefined;
    } catch {
      return undefined;
    }
  };
  const seen = lines.map(parse).find(Boolean);
  if (seen) return Promise.resolve(seen);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${name} event within ${DEADLINE_MS} ms:\n${lines.join("\n")}`)), DEADLINE_MS);
    subscribe((line) => {
      const event = parse(line);
      if (!event) return;
      clearTimeout(timer);
      resolve(event);
    });
  });
}

t.test("its instance killed while the answerer waits: it resumes on the next listed instance and still connects", async (t) => {
  const { url } = await startRedis(t);
  const doomed = await startServerProcess(t, ["--redis", url, ...LIMIT_FLAGS]);
  const survivor = await startTestServer(t, { redis: url, limits: LIMITS });
  const room = uniqueRoom("failover");

  const listeners = new Set<(line: string) => void>();
  const addresses = `http://${doomed.address},http://${survivor.address}`;
  const answerer = await spawnPeer("node", ["--role", "answerer", ...loopbackFlags(addresses, room, PEER_FLAGS)], (line) => listeners.forEach((l) => l(line)));
  t.teardown(() => answerer.child.kill("SIGKILL"));
  const answererEvent = (name: string) => eventOf(answerer.lines, (listener) => listeners.add(listener), name);

  await answererEvent("subscribed");
  doomed.process.child.kill("SIGKILL");
  const broke = await answererEvent("signaling-break");
  t.match(String(broke.why), /UNAVAILABLE/, "the answerer's stream broke when its instance died");

  const offerer = await runCli("node", ["--role", "offerer", ...loopbackFlags(`http://${survivor.address}`, room, PEER_FLAGS)], (fn) => t.teardown(fn));
  const answered = resultOf(answerer, await answerer.exited);
  await doomed.process.exited;
  t.ok(doomed.process.lines.some((line) => /\bregister\b.*\bpeer\b/.test(line)), "the answerer registered on the first listed instance");
  t.equal(offerer.code, 0, `the offerer on the surviving instance connected (stderr: ${offerer.stderr.join(" ")})`);
  t.equal(answered.code, 0, `the answerer connected after moving to the surviving instance (stderr: ${answered.stderr.join(" ")})`);
  t.ok(answered.events.some((e) => e.event === "signaling-resumed"), "the answerer's report says its stream resumed");
  t.equal(answered.events.filter((e) => e.event === "subscribed").length, 1, "the resume did not start the session over");
});

/** Every text message a channel receives, in order; waits for one with a deadline. */
function textsOf(channel: SignalingChannel): { texts: string[]; arrived(text: string): Promise<void> } {
  const texts: string[] = [];
  const waiters = new Map<string, () => void>();
  const subscribed = new Promise<void>((resolve, reject) => {
    channel.subscribe(
      (event: SubscribeResponse) => {
        if (event.event?.$case === "subscribed") resolve();
        const kind = event.event?.$case === "message" ? event.event.value.signal?.kind : undefined;
        if (kind?.$case !== "text") return;
        texts.push(kind.value);
        waiters.get(kind.value)?.();
      },
      (failure) => failure && reject(failure),
    );
  });
  const arrived = (text: string) =>
    subscribed.then(() =>
      texts.includes(text)
        ? undefined
        : new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`"${text}" did not arrive within ${DEADLINE_MS} ms (got ${texts.join(", ")})`)), DEADLINE_MS);
            waiters.set(text, () => (clearTimeout(timer), resolve()));
          }),
    );
  return { texts, arrived };
}

const CLIENT = { name: "failover-test", version: "0", runtime: "node" };
const text = (value: string) => ({ kind: { $case: "text" as const, value } });

t.test("a send to a dead instance, refused before it left, goes to the next listed instance and arrives once", async (t) => {
  const { url } = await startRedis(t);
  const doomed = await startServerProcess(t, ["--redis", url, ...LIMIT_FLAGS]);
  const survivor = await startTestServer(t, { redis: url, limits: LIMITS });
  const room = uniqueRoom("failover-send");
  const alice = new SignalingChannel({ target: parseSignalingAddr(`http://${doomed.address},http://${survivor.address}`) });
  const bob = new SignalingChannel({ target: parseSignalingAddr(`http://${survivor.address}`) });
  t.teardown(() => Promise.all([alice.close(), bob.close()]));

  await alice.register(room, "alice", CLIENT);
  await bob.register(room, "bob", CLIENT);
  const inbox = textsOf(bob);
  await alice.send("bob", text("before"));
  await inbox.arrived("before");

  doomed.process.child.kill("SIGKILL");
  await doomed.process.exited;
  await alice.send("bob", text("after"));
  await alice.send("bob", text("last"));
  await inbox.arrived("last");
  t.same(inbox.texts, ["before", "after", "last"], "every message arrived once, in order, the later ones through the surviving instance");
});
