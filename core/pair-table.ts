// Every candidate pair werift checked, as a table row: both candidates, the state, how many
// connectivity checks went out and how many were answered, the round trip, and why it failed.
// werift counts requests, retransmissions and responses per pair; it does not keep the error
// code of a refused check, so "refused or timed out" is told apart only by whether answers came.
// Once a pair is nominated werift marks every waiting and frozen pair "failed" (RFC 8445 §8.1.2
// says remove them): such a pair, never checked, is reported as not checked, not as a failure, so a
// successful run shows only failures that happened.
import { CandidatePairState, type RTCPeerConnection } from "werift";
import { formatAddress } from "./candidates.ts";

export interface PairRow {
  readonly local: string;
  readonly remote: string;
  readonly state: "frozen" | "waiting" | "in-progress" | "succeeded" | "failed" | "not-checked";
  readonly checksSent: number;
  readonly checksAnswered: number;
  /** The last STUN round trip on this pair, ms; undefined when none was measured. */
  readonly rttMs?: number;
  readonly nominated: boolean;
  /** Why it failed, when it did. */
  readonly failure?: string;
  /** Why it was never checked, when it was not. */
  readonly skipped?: string;
}

const STATES: Record<CandidatePairState, PairRow["state"]> = {
  [CandidatePairState.FROZEN]: "frozen",
  [CandidatePairState.WAITING]: "waiting",
  [CandidatePairState.IN_PROGRESS]: "in-progress",
  [CandidatePairState.SUCCEEDED]: "succeeded",
  [CandidatePairState.FAILED]: "failed",
};

/** At most this many rows go into a report: a host with many interfaces makes hundreds. */
export const MAX_PAIR_ROWS = 64;

export function pairTable(pc: RTCPeerConnection | undefined): PairRow[] {
  const agent = pc?.iceTransports[0]?.connection;
  const pairs = agent?.checkList ?? [];
  const selected = Boolean(agent?.nominated) || pairs.some((p) => p.nominated);
  return pairs.slice(0, MAX_PAIR_ROWS).map((pair) => {
    const checksSent = pair.requestsSent + pair.retransmissionsSent;
    const checksAnswered = pair.responsesReceived;
    const unchecked = STATES[pair.state] === "failed" && checksSent === 0;
    const state = unchecked ? "not-checked" : STATES[pair.state];
    const skipped = !unchecked ? undefined : selected ? "another pair was selected first" : "ICE ended before its turn";
    const failure = state !== "failed" ? undefined : checksAnswered === 0 ? "no answer (timeout)" : "answered, then refused or answered from another address";
    return {
      local: endpoint(pair.localCandidate),
      remote: endpoint(pair.remoteCandidate),
      state,
      checksSent,
      checksAnswered,
      ...(pair.rtt !== undefined ? { rttMs: Math.round(pair.rtt * 100_000) / 100 } : {}),
      nominated: pair.nominated,
      ...(failure ? { failure } : {}),
      ...(skipped ? { skipped } : {}),
    };
  });
}

function endpoint(c: { type: string; transport: string; host: string; port: number }): string {
  return `${c.type} ${c.transport.toLowerCase()} ${formatAddress(c.host, c.port)}`;
}

export function describePairTable(rows: readonly PairRow[]): string[] {
  if (rows.length === 0) return ["  (no candidate pairs)"];
  return rows.map((r) => {
    const rtt = r.rttMs !== undefined ? `, rtt ${r.rttMs.toFixed(1)} ms` : "";
    if (r.state === "not-checked") return `  ${r.local}  ->  ${r.remote}  not checked${r.skipped ? `: ${r.skipped}` : ""}`;
    const why = r.failure ? `: ${r.failure}` : "";
    return `  ${r.local}  ->  ${r.remote}  ${r.state}${r.nominated ? " (selected)" : ""}, ${r.checksAnswered}/${r.checksSent} checks answered${rtt}${why}`;
  });
}
