// The last thing a run prints: did it connect, over which pair, how fast, and if not, why.
import { describeCandidate, type CandidateInfo } from "./candidates.ts";
import type { TurnTransport } from "./ice-config.ts";
import type { NatProbeResult } from "./nat-probe.ts";
import { describePairTable, type PairRow } from "./pair-table.ts";
import { describePair, type SelectedPair } from "./peer-connection.ts";
import { describeVerdict, type JointVerdict } from "./verdict.ts";

/** Milliseconds since start at which each step finished. */
export interface Timings {
  register?: number;
  subscribed?: number;
  peerFound?: number;
  offer?: number;
  answer?: number;
  iceConnected?: number;
  dtlsConnected?: number;
  channelOpen?: number;
  done?: number;
  total?: number;
}

export interface Summary {
  readonly connected: boolean;
  /** Ctrl-C or SIGTERM ended the run (connected may still be true). */
  readonly interrupted?: boolean;
  readonly role: string;
  readonly runtime: string;
  readonly room: string;
  readonly peerId: string | null;
  readonly remotePeerId: string | null;
  readonly selectedPair: SelectedPair | null;
  readonly rttMs: { readonly min: number; readonly avg: number; readonly max: number; readonly count: number } | null;
  readonly messages: { readonly sent: number; readonly received: number };
  readonly timingsMs: Timings;
  readonly candidates: { readonly local: readonly CandidateInfo[]; readonly remote: readonly CandidateInfo[] };
  /** This side's NAT, measured before ICE. */
  readonly nat?: NatProbeResult | null;
  /** Every candidate pair werift checked. */
  readonly pairs?: readonly PairRow[];
  /** One verdict for the pair, from both sides' evidence (null when there was no other peer). */
  readonly verdict?: JointVerdict | null;
  readonly iceServers: {
    readonly stun: string | null;
    readonly turn: { readonly url: string; readonly username: string; readonly transport: TurnTransport } | null;
    readonly relayOnly: boolean;
  };
  readonly error?: {
    readonly kind: string;
    /** This side's own diagnosis: stable codes for scripts. */
    readonly reason: string;
    readonly message: string;
    readonly hints: readonly string[];
    /** The joint verdict's text and whose evidence decided it, when there was a verdict. */
    readonly verdict?: string;
    readonly decidedBy?: string;
    /** The other peer's own reason, when it sent evidence. */
    readonly remoteSaid?: string;
  };
  readonly exitCode: number;
}

const TIMING_LABELS: [keyof Timings, string][] = [
  ["register", "registered"],
  ["peerFound", "peer found"],
  ["offer", "offer"],
  ["answer", "answer"],
  ["iceConnected", "ICE connected"],
  ["dtlsConnected", "DTLS connected"],
  ["channelOpen", "channel open"],
  ["total", "total"],
];

export function describeSummary(s: Summary): string[] {
  const lines = ["", "── summary ──────────────────────────────────────────────"];
  const row = (label: string, value: string) => lines.push(`${label.padEnd(15)}${value}`);
  const who = `${s.role} ${s.peerId ?? "?"} ↔ ${s.remotePeerId ?? "nobody"} in room ${s.room}, ${s.runtime}`;
  row("connected", `${s.connected ? "YES" : "NO"}${s.interrupted ? ", interrupted" : ""}  (${who})`);
  if (s.selectedPair) row("selected pair", describePair(s.selectedPair));
  if (s.rttMs) row("round trip", `min ${s.rttMs.min.toFixed(2)} ms, avg ${s.rttMs.avg.toFixed(2)} ms, max ${s.rttMs.max.toFixed(2)} ms over ${s.rttMs.count} pings`);
  const timings = TIMING_LABELS.filter(([key]) => s.timingsMs[key] !== undefined).map(([key, label]) => `${label} ${Math.round(s.timingsMs[key]!)}`);
  row("timings (ms)", timings.join(", "));
  row("candidates", `${s.candidates.local.length} local (${countByType(s.candidates.local)}), ${s.candidates.remote.length} remote (${countByType(s.candidates.remote)})`);
  if (!s.connected) {
    for (const c of s.candidates.local) row("  local", describeCandidate(c));
    for (const c of s.candidates.remote) row("  remote", describeCandidate(c));
  }
  if (s.pairs && (!s.connected || s.pairs.length <= 8)) lines.push("candidate pairs", ...describePairTable(s.pairs));
  if (s.verdict) lines.push(...describeVerdict(s.verdict));
  if (s.error) {
    row("reason", `${s.error.reason}: ${s.error.message}`);
    for (const hint of s.error.hints) row("hint", hint);
  }
  return lines;
}

function countByType(candidates: readonly CandidateInfo[]): string {
  const counts = new Map<string, number>();
  for (const c of candidates) counts.set(c.type, (counts.get(c.type) ?? 0) + 1);
  return [...counts].map(([type, n]) => `${n} ${type}`).join(", ") || "none";
}
