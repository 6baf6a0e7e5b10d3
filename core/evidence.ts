// One peer's evidence at the end of a run, in the signaling contract's terms (EvidenceReport):
// built from what the session saw, and read back into the names the verdict uses.
import { NatFiltering, NatMapping, type EvidenceReport, type ServerAnswer } from "../gen/icetest/signaling/v1/signaling.ts";
import type { CandidateInfo } from "./candidates.ts";
import type { Filtering, Mapping, NatProbeResult } from "./nat-probe.ts";
import type { PairRow } from "./pair-table.ts";
import type { TurnProbeResult } from "./turn-probe.ts";

export interface EvidenceInput {
  readonly connected: boolean;
  readonly reason: string;
  readonly message: string;
  readonly phase: string;
  readonly local: readonly CandidateInfo[];
  readonly stun?: string;
  readonly nat?: NatProbeResult;
  readonly turn?: { readonly url: string };
  readonly turnProbe?: TurnProbeResult;
  readonly pairs: readonly PairRow[];
}

const MAPPINGS: Record<Mapping, NatMapping> = {
  unknown: NatMapping.NAT_MAPPING_UNSPECIFIED,
  "no-nat": NatMapping.NAT_MAPPING_NO_NAT,
  "endpoint-independent": NatMapping.NAT_MAPPING_ENDPOINT_INDEPENDENT,
  "address-dependent": NatMapping.NAT_MAPPING_ADDRESS_DEPENDENT,
  "address-and-port-dependent": NatMapping.NAT_MAPPING_ADDRESS_AND_PORT_DEPENDENT,
};

const FILTERINGS: Record<Filtering, NatFiltering> = {
  unknown: NatFiltering.NAT_FILTERING_UNSPECIFIED,
  "address-dependent-or-less": NatFiltering.NAT_FILTERING_ADDRESS_DEPENDENT_OR_LESS,
  "address-and-port-dependent": NatFiltering.NAT_FILTERING_ADDRESS_AND_PORT_DEPENDENT,
};

/** Strings are cut so a report always fits the server's 16 KiB limit. */
const MAX_TEXT = 400;

export function buildEvidence(input: EvidenceInput): EvidenceReport {
  const counts = new Map<string, number>();
  for (const c of input.local) counts.set(c.type, (counts.get(c.type) ?? 0) + 1);
  return {
    connected: input.connected,
    reason: input.reason,
    message: cut(input.message),
    phase: input.phase,
    candidates: [...counts].map(([type, count]) => ({ type, count })),
    servers: servers(input),
    ...(input.nat
      ? {
          nat: {
            mapping: MAPPINGS[input.nat.mapping],
            filtering: FILTERINGS[input.nat.filtering],
            mappedAddress: input.nat.mappedAddress ?? "",
            serverAddresses: input.nat.serverAddresses,
            detail: cut(input.nat.answers.map((a) => `${a.asked}: ${a.mapped ?? a.outcome}`).join("; ")),
          },
        }
      : {}),
    pairs: input.pairs.map((p) => ({
      local: p.local,
      remote: p.remote,
      state: p.state,
      checksSent: p.checksSent,
      checksAnswered: p.checksAnswered,
      rttMs: p.rttMs ?? 0,
      failure: p.failure ?? "",
    })),
  };
}

function servers(input: EvidenceInput): ServerAnswer[] {
  const answers: ServerAnswer[] = [];
  const first = input.nat?.answers[0];
  if (input.stun && first) {
    answers.push({ url: input.stun, outcome: first.outcome === "answered" ? "answered" : first.outcome, detail: first.mapped ?? first.from ?? "" });
  }
  const probe = input.turnProbe;
  if (input.turn && probe) {
    const outcome = probe.outcome === "error" && probe.tls ? `tls-${probe.tls}` : probe.outcome;
    const detail = probe.outcome === "allocated" ? probe.relayedAddress : probe.outcome === "refused" ? `${probe.code} ${probe.reason}` : probe.outcome === "error" ? probe.message : "";
    answers.push({ url: input.turn.url, outcome, detail: cut(detail) });
  }
  return answers;
}

export function mappingOf(report: EvidenceReport): Mapping {
  const found = Object.entries(MAPPINGS).find(([, value]) => value === report.nat?.mapping);
  return (found?.[0] as Mapping | undefined) ?? "unknown";
}

export function filteringOf(report: EvidenceReport): Filtering {
  const found = Object.entries(FILTERINGS).find(([, value]) => value === report.nat?.filtering);
  return (found?.[0] as Filtering | undefined) ?? "unknown";
}

export function hasCandidate(report: EvidenceReport, type: string): boolean {
  return report.candidates.some((c) => c.type === type && c.count > 0);
}

function cut(text: string): string {
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text;
}
