// Regressions in werift's ICE agent and in how ice-test feeds it candidates (patches/werift+0.24.4.patch,
// core/trickle.ts, core/peer-connection.ts), with two werift peers in one process.
import t from "tap";
import { Candidate, type RTCPeerConnection } from "werift";
import { fromWerift } from "../core/candidates.ts";
import { iceHasFailed } from "../core/peer-connection.ts";
import { connectPair, echo, UdpRelay, within, type Side } from "./fixtures/werift-pair.ts";

const LIMIT_MS = 20_000;

t.test("ICE checks do not give up on a 400 ms round trip with loss", async (t) => {
  const relay = new UdpRelay();
  await relay.start();
  let n = 0;
  // 200 ms each way, and every 7th datagram (of any kind) lost: deterministic, about 14% loss.
  relay.rule = () => (++n % 7 === 0 ? [] : [200]);
  const pair = await connectPair(t, { relay });
  const { offerer, answerer } = await within(pair.channels, LIMIT_MS, "the data channel opening");
  t.equal(await within(echo(offerer, answerer, "over a long path"), LIMIT_MS, "a message"), "over a long path", "data flows over the long, lossy path");
});

t.test("ICE starts when remote candidates exist, not when our own gathering ends (unreachable STUN server)", async (t) => {
  // connectPair gives both peers a STUN server that never answers: gathering lasts 5 s.
  const pair = await connectPair(t);
  await within(pair.channels, LIMIT_MS, "the data channel opening");
  t.not(pair.answerer.iceGatheringState, "complete", "the answerer connected while its own gathering was still waiting for STUN");
  t.not(pair.offerer.iceGatheringState, "complete", "so did the offerer");
});

t.test("candidates with an empty sdpMid (pion) are applied through the m-line index", async (t) => {
  const pair = await connectPair(t, { candidate: (_from: Side, c) => ({ candidate: c.candidate, sdpMid: "" }) });
  const { offerer, answerer } = await within(pair.channels, LIMIT_MS, "the data channel opening");
  t.equal(await within(echo(offerer, answerer, "mid"), LIMIT_MS, "a message"), "mid", "the peers connected on those candidates alone");
});

t.test("an answerer that chooses DTLS passive still opens the data channel (SCTP role and INIT)", async (t) => {
  const pair = await connectPair(t, { mungeAnswer: (sdp) => sdp.replace(/a=setup:active/g, "a=setup:passive") });
  const { offerer, answerer } = await within(pair.channels, LIMIT_MS, "the data channel opening");
  t.equal(await within(echo(answerer, offerer, "passive"), LIMIT_MS, "a message"), "passive", "data flows with the roles swapped");
  t.equal(offerer.id % 2, 0, "the offerer, now the DTLS client, opened its channel on an even stream (RFC 8832 §6)");
});

t.test("a .local candidate still resolving is not lost to an early end-of-candidates", async (t) => {
  const pair = await connectPair(t);
  await within(pair.channels, LIMIT_MS, "the data channel opening");
  const agent = pair.answerer.iceTransports[0]!.connection;
  // Stands in for the multicast DNS network: the name resolves after 300 ms.
  let resolve: (address: string) => void = () => undefined;
  const answered = new Promise<string>((r) => (resolve = r));
  Object.assign(agent, { lookup: { lookup: () => answered, close: () => undefined } });
  Object.assign(agent, { remoteCandidatesEnd: false });
  const name = "0b7a3a4e-2d1c-4a1b-9d3e-6f1e2a3b4c5d.local";
  const adding = agent.addRemoteCandidate(Candidate.fromSdp(`1 1 udp 2130706431 ${name} 40000 typ host`));
  const ending = agent.addRemoteCandidate(undefined);
  setTimeout(() => resolve("127.0.0.1"), 300);
  await within(Promise.all([adding, ending]), LIMIT_MS, "end-of-candidates");
  const added = agent.remoteCandidates.find((c) => c.port === 40000);
  t.ok(added, "the candidate was added before end-of-candidates took effect");
  t.same(
    added && { address: fromWerift(added).address, mdnsName: fromWerift(added).mdnsName },
    { address: "127.0.0.1", mdnsName: name },
    "it is reported under its mDNS name, with what the name resolved to",
  );
  t.equal(fromWerift(Candidate.fromSdp(`1 1 udp 2130706431 ${name} 40000 typ host`)).mdnsName, name, "an unresolved name is reported as an mDNS name too");
});

t.test("werift's own failed ICE state ends the wait", async (t) => {
  const failed = { iceConnectionState: "failed", iceTransports: [] } as unknown as RTCPeerConnection;
  t.ok(iceHasFailed(failed, false), "failed is final even before the other side's end-of-candidates");
});


t.test("a loopback address named as both interface and additional host address is the only one gathered (--bind 127.0.0.1)", async (t) => {
  // The fixture binds both peers so; werift used to gather on every other interface as well.
  const pair = await connectPair(t);
  await within(pair.channels, LIMIT_MS, "the data channel opening");
  for (const [side, pc] of [["offerer", pair.offerer], ["answerer", pair.answerer]] as const) {
    const hosts = (pc.iceTransports[0]?.connection.localCandidates ?? []).filter((c) => c.type === "host").map((c) => c.host);
    t.same(hosts, ["127.0.0.1"], `the ${side} gathered a host candidate on 127.0.0.1 only`);
  }
});
