// One verdict for the pair, from both peers' evidence (EvidenceReport): each side's NAT by name,
// what decided the outcome and whose evidence showed it, and the other side's own reason. A cause
// is named only when some evidence shows it; otherwise the verdict says what is known and what to
// try next. A pure function, so each rule has a test.
import type { EvidenceReport } from "../gen/icetest/signaling/v1/signaling.ts";
import { filteringOf, hasCandidate, mappingOf } from "./evidence.ts";
import { natName, type Filtering, type Mapping } from "./nat-probe.ts";

export interface Side {
  readonly name: string;
  readonly report: EvidenceReport;
}

export interface SideView {
  readonly name: string;
  readonly nat: string;
  readonly mapping: Mapping;
  readonly filtering: Filtering;
  readonly connected: boolean;
  readonly reason: string;
  readonly message: string;
}

export interface JointVerdict {
  readonly connected: boolean;
  /** The joint verdict in one line. */
  readonly text: string;
  /** A stable reason for scripts: the deciding rule. */
  readonly reason: string;
  /** Whose evidence decided it: a peer name, "both", or "this peer only" when the other sent none. */
  readonly decidedBy: string;
  readonly sides: readonly SideView[];
  /** What the side that did not decide said on its own. */
  readonly otherSide?: string;
  /** What the other peer itself concluded ("bob: udp-blocked: …"), on a failure, when it sent evidence. */
  readonly remoteSaid?: string;
  readonly remoteReported: boolean;
  /** What slowed a run down, and its timings in round trips of the selected pair. */
  readonly notes?: readonly string[];
}

const WEAK_REASONS = new Set(["", "peer-left", "interrupted"]);

export function jointVerdict(self: Side, remote: Side | undefined): JointVerdict {
  const sides = [self, ...(remote ? [remote] : [])];
  const views = sides.map(view);
  const natPart = views.map((v) => `${v.name}: ${natPhrase(v)}`).join("; ");
  const base = { sides: views, remoteReported: remote !== undefined };
  const connected = self.report.connected && (remote?.report.connected ?? true);
  if (connected) {
    return { ...base, connected, reason: "connected", decidedBy: remote ? "both" : self.name, text: `${natPart}; connected` };
  }
  const decided = decide(sides, views);
  const other = sides.find((s) => s.name !== decided.by && decided.by !== "both");
  const otherSide = other && !WEAK_REASONS.has(other.report.reason) ? `${other.name} said: ${other.report.reason}: ${other.report.message}` : other ? `${other.name} said: ${other.report.message || other.report.reason || "nothing"}` : undefined;
  const missing = remote ? "" : " (the other peer sent no evidence: an older ice-test, or it stopped early)";
  const remoteSaid = remote ? `${remote.name}: ${remote.report.connected ? "connected" : `${remote.report.reason || "unknown"}: ${remote.report.message || "no message"}`}` : undefined;
  return {
    ...base,
    connected,
    reason: decided.reason,
    decidedBy: decided.by,
    text: `${natPart}; ${decided.text}${missing}`,
    ...(otherSide ? { otherSide } : {}),
    ...(remoteSaid ? { remoteSaid } : {}),
  };
}

interface Decision {
  readonly reason: string;
  readonly text: string;
  /** A side's name, or "both". */
  readonly by: string;
}

/** The rules, strongest evidence first. */
function decide(sides: readonly Side[], views: readonly SideView[]): Decision {
  return symmetricNat(sides, views) ?? turnCertificate(sides) ?? turnFailure(sides) ?? stunSilentBothSides(sides) ?? udpBlocked(sides) ?? firstReason(sides);
}

function symmetricNat(sides: readonly Side[], views: readonly SideView[]): Decision | undefined {
  const symmetric = views.filter((v) => v.mapping === "address-dependent" || v.mapping === "address-and-port-dependent");
  if (symmetric.length === 0 || sides.some((s) => hasCandidate(s.report, "relay"))) return undefined;
  const others = views.filter((v) => !symmetric.includes(v));
  // A symmetric NAT can still meet a NAT that lets any source in (or no NAT); not one that filters
  // by port. Without the other side's evidence its NAT is unknown.
  const alone = views.length < 2;
  const certain = !alone && others.every((v) => v.filtering === "address-and-port-dependent" || v.mapping === "address-dependent" || v.mapping === "address-and-port-dependent");
  const worked = sides.flatMap((s) => s.report.servers).find((a) => a.outcome === "allocated");
  const owners = symmetric.map((v) => `${v.name}'s`).join(" and ");
  const subject = symmetric.length > 1 ? `${owners} NATs break` : `${owners} NAT breaks`;
  const unknown = alone ? "the other peer's NAT unknown" : `${others.map((v) => v.name).join(", ")}'s filtering unknown`;
  const how = certain ? "a direct path is impossible" : `a direct path is unlikely (${unknown})`;
  const fix = worked ? `use TURN — ${worked.url} worked` : "use TURN: --with-turn";
  return { reason: "symmetric-nat", by: symmetric.length > 1 ? "both" : symmetric[0]!.name, text: `${subject} hole punching: ${how}: ${fix}` };
}

function turnCertificate(sides: readonly Side[]): Decision | undefined {
  for (const side of sides) {
    const bad = side.report.servers.find((a) => a.outcome.startsWith("tls-"));
    if (!bad) continue;
    const what = { "tls-untrusted": "is not trusted (self-signed or from an unknown CA)", "tls-expired": "has expired or is not yet valid", "tls-wrong-name": "is for another name" }[bad.outcome] ?? "was refused";
    return {
      reason: `turn-${bad.outcome}`,
      by: side.name,
      text: `${side.name}'s TURN server ${bad.url}: its certificate ${what} (${bad.detail}); pass the CA with --turn-ca FILE, or fix the certificate`,
    };
  }
  return undefined;
}

function turnFailure(sides: readonly Side[]): Decision | undefined {
  const side = sides.find((s) => s.report.reason === "turn-refused" || s.report.reason === "turn-unreachable");
  return side ? { reason: side.report.reason, by: side.name, text: side.report.message } : undefined;
}

/** Neither side heard the same STUN server: the server, not both networks, is the likely cause. */
function stunSilentBothSides(sides: readonly Side[]): Decision | undefined {
  if (sides.length < 2) return undefined;
  const silent = sides.map((s) => s.report.servers.find((a) => a.url.startsWith("stun") && a.outcome === "no-answer"));
  if (!silent.every(Boolean) || new Set(silent.map((a) => a!.url)).size !== 1 || sides.some((s) => hasCandidate(s.report, "srflx"))) return undefined;
  return {
    reason: "stun-unreachable",
    by: "both",
    text: `neither peer got an answer from the STUN server ${silent[0]!.url}: that server is probably down or unreachable (not both networks); check it, or try another with --stun`,
  };
}

function udpBlocked(sides: readonly Side[]): Decision | undefined {
  const heard = sides.filter((s) => s.report.servers.some((a) => a.url.startsWith("stun") && a.outcome === "answered"));
  const deaf = sides.find((s) => s.report.servers.some((a) => a.url.startsWith("stun") && a.outcome === "no-answer"));
  if (!deaf || heard.length === 0) return undefined;
  return {
    reason: "udp-blocked",
    by: deaf.name,
    text: `${deaf.name} got no STUN answer where ${heard.map((s) => s.name).join(", ")} did: outbound UDP looks blocked on ${deaf.name}'s network; TURN over TCP or TLS (turn:HOST:443?transport=tcp, turns:HOST:443) gets through`,
  };
}

function firstReason(sides: readonly Side[]): Decision {
  const strong = sides.find((s) => !WEAK_REASONS.has(s.report.reason)) ?? sides[0]!;
  const text = strong.report.message || "no cause could be named from the evidence; run both sides with --json and compare their pair tables, or try --with-turn";
  return { reason: strong.report.reason || "unknown", by: strong.name, text };
}

function view(side: Side): SideView {
  const mapping = mappingOf(side.report);
  const filtering = filteringOf(side.report);
  return { name: side.name, nat: natName(mapping, filtering), mapping, filtering, connected: side.report.connected, reason: side.report.reason, message: side.report.message };
}

function natPhrase(v: SideView): string {
  if (v.mapping === "address-and-port-dependent") return "NAT rewrites ports per destination (address-and-port-dependent mapping)";
  if (v.mapping === "address-dependent") return "NAT maps per destination address (address-dependent mapping)";
  if (v.mapping === "unknown") return "NAT not measured (no STUN answer)";
  return v.nat;
}

export function describeVerdict(v: JointVerdict): string[] {
  const lines = [`verdict        ${v.text}`, `decided by     ${v.decidedBy === "both" ? "both sides' evidence" : `${v.decidedBy}'s evidence`}`];
  if (v.otherSide) lines.push(`other side     ${v.otherSide}`);
  if (v.remoteSaid && !v.otherSide?.startsWith(`${v.remoteSaid.split(":")[0]} said:`)) lines.push(`peer's reason  ${v.remoteSaid}`);
  for (const note of v.notes ?? []) lines.push(`note           ${note}`);
  return lines;
}
