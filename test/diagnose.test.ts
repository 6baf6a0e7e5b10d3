import t from "tap";
import type { CandidateInfo } from "../core/candidates.ts";
import { diagnose, isPrivate, type Observation, type PairReport } from "../core/diagnose.ts";

function candidate(type: string, address: string, port = 40000): CandidateInfo {
  return { type, protocol: "udp", address, port, priority: 1, foundation: "f" };
}

function observation(overrides: Partial<Observation>): Observation {
  return {
    phase: "ice",
    trigger: "ice-failed",
    waitedMs: 12_000,
    role: "offerer",
    room: "lab",
    remotePeerId: "bob",
    local: [candidate("host", "10.1.0.2")],
    remote: [candidate("host", "10.2.0.2")],
    pairs: [],
    relayOnly: false,
    localGatheringComplete: true,
    remoteEndOfCandidates: true,
    ...overrides,
  };
}

const failedPair = (local: CandidateInfo, remote: CandidateInfo): PairReport => ({ local, remote, state: "failed" });

t.test("each failure names its cause", async (t) => {
  const cases: [string, Partial<Observation>, string, RegExp][] = [
    ["nobody came", { phase: "waiting-for-peer", trigger: "timeout" }, "no-peer", /No other peer joined room "lab"/],
    ["no offer", { phase: "waiting-for-peer", trigger: "timeout", role: "answerer" }, "no-peer", /No offer arrived in room "lab"/],
    ["no answer", { phase: "negotiating", trigger: "timeout" }, "no-answer", /got no answer/],
    ["no interfaces", { local: [] }, "no-local-candidates", /gathered no ICE candidates/],
    ["silent peer", { remote: [] }, "no-remote-candidates", /sent no ICE candidates/],
    [
      "TURN refused",
      { turn: { url: "turn:t:3478", transport: "udp" }, local: [candidate("host", "10.1.0.2"), candidate("srflx", "203.0.113.5")] },
      "turn-refused",
      /TURN server turn:t:3478 gave no relay candidate/,
    ],
    [
      "TURN probe refused",
      { relayOnly: true, local: [], turn: { url: "turn:t:3478", transport: "udp" }, turnProbe: { outcome: "refused", code: 401, reason: "Unauthorized", ms: 3 } },
      "turn-refused",
      /refused the allocation: 401 Unauthorized/,
    ],
    [
      "TURN probe unanswered",
      { relayOnly: true, local: [], turn: { url: "turn:t:3478", transport: "udp" }, turnProbe: { outcome: "no-answer", ms: 5000 } },
      "turn-unreachable",
      /did not answer over UDP/,
    ],
    ["relay only, nothing gathered", { relayOnly: true, turn: { url: "turn:t:3478", transport: "tcp" }, local: [] }, "turn-refused", /relay-only allows nothing else/],
    ["UDP blocked", { stun: "stun:s:3478" }, "udp-blocked", /STUN server stun:s:3478 never answered/],
    [
      "symmetric NAT",
      {
        stun: "stun:s:3478",
        local: [candidate("host", "10.1.0.2"), candidate("srflx", "203.0.113.5")],
        remote: [candidate("host", "10.2.0.2"), candidate("srflx", "198.51.100.7")],
        pairs: [failedPair(candidate("host", "10.1.0.2"), candidate("srflx", "198.51.100.7"))],
      },
      "nat-traversal-failed",
      /Both peers are behind NAT .* symmetric/,
    ],
    [
      "the other side has UDP blocked",
      {
        stun: "stun:s:3478",
        local: [candidate("host", "10.1.0.2"), candidate("srflx", "203.0.113.5")],
        remote: [candidate("host", "10.2.0.2")],
        pairs: [failedPair(candidate("host", "10.1.0.2"), candidate("host", "10.2.0.2"))],
      },
      "peer-unreachable",
      /offered only private addresses .* UDP is probably blocked on its side/,
    ],
    ["plain failure", { local: [candidate("host", "203.0.113.9")], pairs: [failedPair(candidate("host", "203.0.113.9"), candidate("host", "10.2.0.2"))] }, "ice-failed", /Every candidate pair failed \(1 of 1/],
    ["checks time out", { trigger: "timeout", local: [candidate("host", "203.0.113.9")], remoteEndOfCandidates: false }, "ice-timeout", /had not finished gathering/],
    ["DTLS", { phase: "dtls", trigger: "timeout" }, "dtls-failed", /DTLS handshake did not finish/],
    ["SCTP", { phase: "data-channel", trigger: "timeout" }, "data-channel-failed", /data channel did not open/],
    ["lossy", { phase: "exchange", trigger: "timeout", pongs: { received: 2, expected: 5 } }, "exchange-incomplete", /only 2 of 5 pings/],
  ];
  for (const [name, overrides, reason, message] of cases) {
    const failure = diagnose(observation(overrides));
    t.equal(failure.reason, reason, `${name}: reason ${reason}`);
    t.match(failure.message, message, `${name}: message says why`);
    t.equal(failure.kind, "connection", `${name}: a connection failure`);
    t.ok(failure.hints.length > 0, `${name}: gives a hint`);
  }
});

t.test("TURN over UDP suggests TCP; over TCP it does not", async (t) => {
  const udp = diagnose(observation({ turn: { url: "turn:t:3478", transport: "udp" } }));
  t.match(udp.hints.join(" "), /transport=tcp/);
  const tcp = diagnose(observation({ turn: { url: "turn:t:3478?transport=tcp", transport: "tcp" } }));
  t.notMatch(tcp.hints.join(" "), /transport=tcp/);
});

t.test("private addresses", async (t) => {
  for (const address of ["10.0.0.1", "172.16.5.4", "192.168.1.1", "127.0.0.1", "100.64.0.1", "fd00::1", "fe80::1"]) t.ok(isPrivate(address), `${address} is private`);
  for (const address of ["203.0.113.5", "172.32.0.1", "8.8.8.8", "2001:db8::1"]) t.notOk(isPrivate(address), `${address} is public`);
});
