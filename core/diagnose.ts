// Why a connection failed, from what the peer saw: its candidates, the other side's, the servers it
// was given and how far it got. A pure function, so each rule has a test.
import type { CandidateInfo } from "./candidates.ts";
import { PeerFailure } from "./failure.ts";
import type { TurnTransport } from "./ice-config.ts";
import type { Mapping } from "./nat-probe.ts";
import { TLS_WORDS, type TurnProbeResult } from "./turn-probe.ts";

/** How far the run got: each phase starts when the previous one succeeded. */
export type Phase = "waiting-for-peer" | "negotiating" | "ice" | "dtls" | "data-channel" | "exchange";

export type PairState = "frozen" | "waiting" | "in-progress" | "succeeded" | "failed";

export interface PairReport {
  readonly local: CandidateInfo;
  readonly remote: CandidateInfo;
  readonly state: PairState;
}

export interface Observation {
  readonly phase: Phase;
  /** What stopped the run. */
  readonly trigger: "timeout" | "ice-failed";
  readonly waitedMs: number;
  readonly role: "offerer" | "answerer";
  readonly room: string;
  readonly remotePeerId?: string;
  readonly local: readonly CandidateInfo[];
  readonly remote: readonly CandidateInfo[];
  readonly pairs: readonly PairReport[];
  readonly stun?: string;
  readonly turn?: { readonly url: string; readonly transport: TurnTransport };
  /** What the TURN server said to ice-test's own allocation request, if it has answered yet. */
  readonly turnProbe?: TurnProbeResult;
  readonly relayOnly: boolean;
  readonly localGatheringComplete: boolean;
  readonly remoteEndOfCandidates: boolean;
  readonly pongs?: { readonly received: number; readonly expected: number };
  /** This side's NAT mapping, measured before ICE. */
  readonly nat?: { readonly mapping: Mapping };
}

export function diagnose(o: Observation): PeerFailure {
  const seconds = `${(o.waitedMs / 1000).toFixed(1)} s`;
  switch (o.phase) {
    case "waiting-for-peer":
      if (o.role === "answerer") {
        return fail("no-peer", `No offer arrived in room "${o.room}" within ${seconds}`, [
          "Start the other side with --role offerer and the same --room and --signaling-addr; an offerer that failed early (see its report) sends none",
        ]);
      }
      return fail("no-peer", `No other peer joined room "${o.room}" within ${seconds}`, [
        "Start the other side with the same --room and --signaling-addr",
      ]);
    case "negotiating":
      return fail("no-answer", `Sent an offer to ${o.remotePeerId ?? "the peer"} but got no answer within ${seconds}`, [
        "Is the other side running with --role answerer? Two offerers never meet",
      ]);
    case "ice":
      return diagnoseIce(o, seconds);
    case "dtls":
      return fail("dtls-failed", `ICE connected but the DTLS handshake did not finish within ${seconds}`, [
        "A middlebox may drop large or fragmented UDP packets (the certificate flight), or the fingerprints did not match",
      ]);
    case "data-channel":
      return fail("data-channel-failed", `DTLS connected but the data channel did not open within ${seconds}`, [
        "The SCTP association over DTLS did not come up; check both peers' logs",
      ]);
    case "exchange":
      return fail(
        "exchange-incomplete",
        `The data channel opened but only ${o.pongs?.received ?? 0} of ${o.pongs?.expected ?? 0} pings came back within ${seconds}`,
        ["Packets are being lost on the selected path; try again or raise --timeout"],
      );
  }
}

function diagnoseIce(o: Observation, seconds: string): PeerFailure {
  const localRelay = o.local.some((c) => c.type === "relay");
  const localSrflx = o.local.some((c) => c.type === "srflx");
  const remoteSrflx = o.remote.some((c) => c.type === "srflx" || c.type === "prflx");
  const failedPairs = o.pairs.filter((p) => p.state === "failed").length;
  // "0 of N failed" is no finding: say that the checks were still running.
  const tried =
    o.pairs.length === 0 ? "" : failedPairs === 0 ? ` (${o.pairs.length} candidate pairs still being checked, none failed yet)` : ` (${failedPairs} of ${o.pairs.length} candidate pairs failed)`;

  if (o.local.length === 0) {
    if (o.relayOnly && o.turn) return turnRefused(o, " and --relay-only allows nothing else");
    return fail("no-local-candidates", "This peer gathered no ICE candidates at all", [
      "No usable network interface was found (under Deno, werift needs --allow-sys=networkInterfaces)",
    ]);
  }
  if (o.remote.length === 0) {
    return fail("no-remote-candidates", `The other peer sent no ICE candidates within ${seconds}`, [
      "Look at the other peer's report: it may have no usable interface, or a relay-only setup whose TURN server refused it",
    ]);
  }
  if (o.turn && !localRelay && o.localGatheringComplete) {
    return turnRefused(o, o.relayOnly ? " and --relay-only allows nothing else" : tried);
  }
  if (o.stun && !localSrflx && !o.relayOnly && o.localGatheringComplete && o.local.every((c) => isPrivate(c.address))) {
    return fail("udp-blocked", `No connection${tried}, and the STUN server ${o.stun} never answered: outbound UDP looks blocked`, [
      "A firewall is probably dropping UDP; use TURN over TCP or TLS: --with-turn with turn:HOST:443?transport=tcp or turns:HOST:443",
      "Or the STUN server is down or unreachable from this network",
    ]);
  }
  if (localSrflx && !remoteSrflx && o.remoteEndOfCandidates && !o.remote.some((c) => c.type === "relay") && o.remote.every((c) => isPrivate(c.address))) {
    return fail(
      "peer-unreachable",
      `The other peer offered only private addresses${tried}: it learned no public address from STUN, so UDP is probably blocked on its side`,
      ["Its own report should say udp-blocked; TURN over TCP or TLS on its side would get through (--with-turn)"],
    );
  }
  if (localSrflx && remoteSrflx && !localRelay) {
    return fail("nat-traversal-failed", `Both peers are behind NAT and every direct path failed${tried}: ${natFinding(o.nat?.mapping)}`, [
      "Hole punching cannot cross this pair of networks; a TURN relay can: add --with-turn",
    ]);
  }
  if (o.trigger === "ice-failed") {
    return fail("ice-failed", `Every candidate pair failed${tried}`, [
      "The peers cannot reach each other's addresses; a firewall drops the checks, or a TURN relay is needed (--with-turn)",
    ]);
  }
  const waitingFor = o.remoteEndOfCandidates ? "" : " (the other peer had not finished gathering)";
  return fail("ice-timeout", `ICE checks did not succeed within ${seconds}${tried}${waitingFor}`, [
    "The checks got no answers: a firewall may drop UDP between the peers; try --with-turn",
  ]);
}

function turnRefused(o: Observation, detail: string): PeerFailure {
  const turn = o.turn!;
  const transportHint =
    turn.transport === "udp" ? "If UDP is blocked here, try turn:HOST:PORT?transport=tcp" : `Check that ${turn.transport.toUpperCase()} to the TURN server is allowed`;
  const probe = o.turnProbe;
  if (probe?.outcome === "refused") {
    return fail("turn-refused", `The TURN server ${turn.url} refused the allocation: ${probe.code} ${probe.reason}${detail}`, [
      probe.code === 401 ? "Wrong or expired credentials: check --turn-user and TURN_PASSWORD (REST credentials expire)" : "The TURN server's policy refused this client",
    ]);
  }
  if (probe?.outcome === "error" && probe.tls) {
    return fail(`turn-tls-${probe.tls}`, `The TURN server ${turn.url}'s TLS certificate is ${TLS_WORDS[probe.tls]}: ${probe.message}${detail}`, [
      probe.tls === "untrusted" ? "Trust its private CA with --turn-ca FILE" : probe.tls === "expired" ? "Renew the TURN server's certificate" : "Use the name in its certificate in the turns: URL, or fix the certificate",
    ]);
  }
  if (probe?.outcome === "no-answer" || probe?.outcome === "error") {
    return fail("turn-unreachable", `The TURN server ${turn.url} did not answer over ${turn.transport.toUpperCase()}${detail}`, [
      transportHint,
      "Or the TURN server is down, or the URL's host and port are wrong",
    ]);
  }
  return fail("turn-refused", `The TURN server ${turn.url} gave no relay candidate${detail}`, [
    "The TURN server refused the allocation (wrong or expired credentials: check --turn-user and TURN_PASSWORD) or is unreachable",
    transportHint,
  ]);
}

/** What this side's own NAT measurement says; the other side's evidence completes it in the joint verdict. */
function natFinding(mapping: Mapping | undefined): string {
  if (mapping === "address-and-port-dependent" || mapping === "address-dependent") {
    return `this peer's NAT is symmetric (${mapping} mapping): it rewrites ports per destination, so hole punching fails`;
  }
  if (mapping === "endpoint-independent" || mapping === "no-nat") {
    return `this peer's NAT keeps one mapping for every destination (${mapping}); the other side's NAT may be symmetric, or a firewall drops inbound UDP`;
  }
  return "this peer's NAT was not measured: at least one NAT may be symmetric (its mapping changes per destination), or a firewall drops inbound UDP";
}

function fail(reason: string, message: string, hints: string[]): PeerFailure {
  return new PeerFailure("connection", reason, message, { hints });
}

/** Addresses that cannot be reached from the internet without a mapping. */
export function isPrivate(address: string): boolean {
  if (address.includes(":")) return /^(fe80:|fc|fd|::1$)/i.test(address);
  const [a = 0, b = 0] = address.split(".").map(Number);
  return a === 10 || a === 127 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127) || (a === 169 && b === 254);
}
