// Two peers in this process meet through a real server, over plaintext and over TLS.
import t, { type Test } from "tap";
import { startTestServer } from "./fixtures/server.ts";
import { loopbackFlags, startSession, uniqueRoom, type InProcessPeer, type RunEvent } from "./fixtures/peers.ts";
import type { Summary } from "../core/summary.ts";

function candidatesOf(events: RunEvent[], event: string): string[] {
  return events.filter((e) => e.event === event).map((e) => `${e["type"]} ${e["protocol"]} ${e["address"]}:${e["port"]}`).sort();
}

function assertConnected(t: Test, name: string, summary: Summary, peer: InProcessPeer): void {
  t.equal(summary.connected, true, `${name} connected`);
  t.equal(summary.exitCode, 0, `${name} exit code 0`);
  t.equal(summary.error, undefined, `${name} reports no error`);
  t.equal(summary.rttMs?.count, 3, `${name} measured 3 round trips`);
  t.ok(summary.rttMs!.min > 0 && summary.rttMs!.min <= summary.rttMs!.max, `${name} RTTs are positive and ordered`);
  t.equal(summary.selectedPair?.local.address, "127.0.0.1", `${name} selected a loopback local candidate`);
  t.equal(summary.selectedPair?.remote.address, "127.0.0.1", `${name} selected a loopback remote candidate`);
  t.equal(summary.selectedPair?.local.protocol, "udp", `${name} over UDP`);
  const seen = new Set(peer.events.map((e) => e.event));
  for (const event of ["registered", "subscribed", "local-candidate", "remote-candidate", "ice-connection-state", "dtls-state", "sctp-state", "data-channel-state", "selected-pair", "round-trip"]) {
    t.ok(seen.has(event), `${name} reported ${event}`);
  }
  const states = (event: string) => peer.events.filter((e) => e.event === event).map((e) => e["state"]);
  t.ok(states("ice-connection-state").includes("connected"), `${name} saw ICE connected`);
  t.ok(states("dtls-state").includes("connected"), `${name} saw DTLS connected`);
  t.ok(states("sctp-state").includes("connected"), `${name} saw SCTP connected`);
  t.ok(states("data-channel-state").includes("open"), `${name} saw the channel open`);
  const timings = summary.timingsMs;
  t.ok(timings.register! <= timings.iceConnected! && timings.iceConnected! <= timings.channelOpen!, `${name} timings in order: register <= ICE connected <= channel open`);
  t.ok(timings.offer !== undefined && timings.answer !== undefined, `${name} timed the offer and the answer`);
}

async function meet(t: Test, signalingAddr: string, ca?: string): Promise<void> {
  const room = uniqueRoom();
  const answerer = startSession(["--role", "answerer", ...loopbackFlags(signalingAddr, room)], ca);
  const offerer = startSession(["--role", "offerer", ...loopbackFlags(signalingAddr, room)], ca);
  const [answer, offer] = await Promise.all([answerer.done, offerer.done]);
  assertConnected(t, "offerer", offer, offerer);
  assertConnected(t, "answerer", answer, answerer);
  t.equal(offer.remotePeerId, answer.peerId, "the offerer met the answerer");
  t.equal(answer.remotePeerId, offer.peerId, "the answerer met the offerer");
  t.same(candidatesOf(answerer.events, "remote-candidate"), candidatesOf(offerer.events, "local-candidate"), "every candidate the offerer gathered reached the answerer");
  t.same(candidatesOf(offerer.events, "remote-candidate"), candidatesOf(answerer.events, "local-candidate"), "every candidate the answerer gathered reached the offerer");
  const everyAddress = [...offerer.events, ...answerer.events].filter((e) => /candidate$/.test(e.event)).map((e) => e["address"]);
  t.ok(everyAddress.every((a) => a === "127.0.0.1"), "no candidate beyond loopback was signalled");
}

t.test("Node peers meet over plaintext signaling", async (t) => {
  const server = await startTestServer(t);
  await meet(t, `http://${server.address}`);
});

t.test("Node peers meet over TLS signaling with a self-signed certificate", async (t) => {
  const server = await startTestServer(t, { tls: true });
  await meet(t, `https://localhost:${server.port}`, server.caPem);
});

t.test("the answerer may start after the offerer", async (t) => {
  const server = await startTestServer(t);
  const room = uniqueRoom();
  const offerer = startSession(["--role", "offerer", ...loopbackFlags(`http://${server.address}`, room)]);
  await offerer.reported("subscribed");
  const answerer = startSession(["--role", "answerer", ...loopbackFlags(`http://${server.address}`, room)]);
  const [offer, answer] = await Promise.all([offerer.done, answerer.done]);
  t.equal(offer.connected && answer.connected, true, "both connected");
  t.ok(offerer.events.some((e) => e.event === "peer-joined"), "the offerer saw the answerer join");
});

t.test("Ctrl-C while waiting for a peer ends the run as interrupted", async (t) => {
  const server = await startTestServer(t);
  const lonely = startSession(["--role", "offerer", ...loopbackFlags(`http://${server.address}`, uniqueRoom())]);
  await lonely.reported("subscribed");
  lonely.session.interrupt();
  const summary = await lonely.done;
  t.equal(summary.connected, false, "not connected");
  t.equal(summary.exitCode, 130, "exit code 130");
  t.equal(summary.error?.reason, "interrupted", "reason interrupted");
});
