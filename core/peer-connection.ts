// The werift RTCPeerConnection, with every state change it can tell reported, and the facts that
// werift keeps inside its ICE agent (candidate pairs, the nominated pair) read out in our terms.
import { CandidatePairState, RTCDtlsTransport, RTCPeerConnection, type CandidatePair } from "werift";
import { describeCandidate, fromWerift, type CandidateInfo } from "./candidates.ts";
import { rehearseDataChannel, rehearseDtls, rehearseNegotiation } from "./rehearsal.ts";
import type { PairReport, PairState } from "./diagnose.ts";
import type { IceSetup } from "./ice-config.ts";
import type { Report } from "./report.ts";

export interface SelectedPair {
  readonly local: CandidateInfo & { readonly relayProtocol?: string };
  readonly remote: CandidateInfo;
  /** The STUN round trip werift measured on this pair, when it has one. */
  readonly iceRttMs?: number;
}

export type StateListener = (kind: "ice" | "connection" | "dtls" | "sctp", state: string) => void;

/**
 * werift makes its DTLS certificate the first time a description is created, and its
 * description and handshake code runs cold the first time: all of it on the critical path, right
 * after the peer is found. It keeps one certificate per process, so making it while we register
 * and wait for the other peer takes it off, and the rehearsals warm the code. A failure here shows
 * again, with its context, when the description is created or the real handshake runs.
 */
export function prepareToConnect(): void {
  RTCDtlsTransport.SetupCertificate()
    .then(() => rehearseNegotiation())
    .then(() => rehearseDtls())
    .then(() => rehearseDataChannel())
    .catch(() => undefined);
}

export function createPeerConnection(setup: IceSetup, report: Report, onState: StateListener): RTCPeerConnection {
  const pc = new RTCPeerConnection(setup.config);
  pc.signalingStateChange.subscribe((state) => report.step("signaling-state", `signaling state ${state}`, { state }));
  pc.iceGatheringStateChange.subscribe((state) => report.step("ice-gathering-state", `ICE gathering ${state}`, { state }));
  pc.iceConnectionStateChange.subscribe((state) => {
    report.step("ice-connection-state", `ICE connection ${state}${weriftCaveat(state)}`, { state });
    onState("ice", state);
  });
  pc.connectionStateChange.subscribe((state) => {
    report.step("connection-state", `peer connection ${state}`, { state });
    onState("connection", state);
  });
  return pc;
}

/** werift's ICE states do not mean what the WebRTC spec says they mean; say so where it matters. */
function weriftCaveat(state: string): string {
  if (state === "completed") return " (werift: gathering done, not a result)";
  return "";
}

/** DTLS and SCTP transports exist only once a description is set, so their states are wired then. */
export function watchTransports(pc: RTCPeerConnection, report: Report, onState: StateListener): void {
  for (const dtls of pc.dtlsTransports) {
    dtls.onStateChange.subscribe((state) => {
      report.step("dtls-state", `DTLS ${state}`, { state });
      onState("dtls", state);
    });
  }
  const sctp = pc.sctpTransport?.sctp;
  if (!sctp) return;
  for (const state of ["connecting", "connected", "closed"] as const) {
    sctp.stateChanged[state].subscribe(() => {
      report.step("sctp-state", `SCTP ${state}`, { state });
      onState("sctp", state);
    });
  }
}

function iceAgent(pc: RTCPeerConnection) {
  return pc.iceTransports[0]?.connection;
}

const PAIR_STATES: Record<CandidatePairState, PairState> = {
  [CandidatePairState.FROZEN]: "frozen",
  [CandidatePairState.WAITING]: "waiting",
  [CandidatePairState.IN_PROGRESS]: "in-progress",
  [CandidatePairState.SUCCEEDED]: "succeeded",
  [CandidatePairState.FAILED]: "failed",
};

export function candidatePairs(pc: RTCPeerConnection): PairReport[] {
  return (iceAgent(pc)?.checkList ?? []).map((pair) => ({
    local: fromWerift(pair.localCandidate),
    remote: fromWerift(pair.remoteCandidate),
    state: PAIR_STATES[pair.state],
  }));
}

/**
 * werift's "failed" is final: its agent has stopped checking (the patched werift no longer fails
 * while its own gathering or a remote mDNS lookup is still running). But while any pair exists it
 * never says "failed": the state stays "checking". That case is decided here: both sides finished
 * gathering and no pair is left that could succeed (which includes having no pair at all, e.g. a
 * relay-only peer whose TURN server said no).
 */
export function iceHasFailed(pc: RTCPeerConnection, remoteEndOfCandidates: boolean): boolean {
  if (pc.iceConnectionState === "failed") return true;
  const agent = iceAgent(pc);
  if (!agent || !agent.localCandidatesEnd || !remoteEndOfCandidates) return false;
  return agent.checkList.every((pair) => pair.state === CandidatePairState.FAILED);
}

export function selectedPair(pc: RTCPeerConnection, setup: IceSetup): SelectedPair | undefined {
  const agent = iceAgent(pc);
  if (!agent) return undefined;
  const pair: CandidatePair | undefined =
    agent.nominated ?? agent.checkList.find((p) => p.nominated || p.remoteNominated) ?? agent.checkList.find((p) => p.state === CandidatePairState.SUCCEEDED);
  if (!pair) return undefined;
  const local = fromWerift(pair.localCandidate);
  return {
    // werift labels relay candidates "udp" even over TURN/TCP: say which transport reached TURN.
    local: local.type === "relay" && setup.turn ? { ...local, relayProtocol: setup.turn.transport } : local,
    remote: fromWerift(pair.remoteCandidate),
    ...(pair.rtt !== undefined ? { iceRttMs: Math.round(pair.rtt * 100000) / 100 } : {}),
  };
}

export function describePair(pair: SelectedPair): string {
  const relay = pair.local.relayProtocol ? ` (relayed over TURN/${pair.local.relayProtocol})` : "";
  return `${describeCandidate(pair.local)}  <->  ${describeCandidate(pair.remote)}${relay}`;
}
