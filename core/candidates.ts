// ICE candidates as a person reads them: type, protocol, address, port, priority, related address.
import { Candidate } from "werift";

export interface CandidateInfo {
  readonly type: string;
  readonly protocol: string;
  readonly address: string;
  readonly port: number;
  readonly priority: number;
  readonly foundation: string;
  /** 1 = RTP (the only one a data channel uses), 2 = RTCP. */
  readonly component?: number;
  readonly relatedAddress?: string;
  readonly relatedPort?: number;
  readonly tcpType?: string;
}

/** Parses "candidate:…" (with or without "a="); undefined when it is not a candidate. */
export function parseCandidate(text: string): CandidateInfo | undefined {
  const sdp = text.replace(/^a=/, "").replace(/^candidate:/, "");
  try {
    return fromWerift(Candidate.fromSdp(sdp));
  } catch {
    return undefined;
  }
}

export function fromWerift(candidate: Candidate): CandidateInfo {
  return {
    type: candidate.type,
    protocol: candidate.transport.toLowerCase(),
    address: candidate.host,
    port: candidate.port,
    priority: candidate.priority,
    foundation: candidate.foundation,
    component: candidate.component,
    ...(candidate.relatedAddress !== undefined ? { relatedAddress: candidate.relatedAddress } : {}),
    ...(candidate.relatedPort !== undefined ? { relatedPort: candidate.relatedPort } : {}),
    ...(candidate.tcptype !== undefined ? { tcpType: candidate.tcptype } : {}),
  };
}

export function describeCandidate(c: CandidateInfo): string {
  const related = c.relatedAddress ? ` via ${c.relatedAddress}:${c.relatedPort ?? 0}` : "";
  // A server-reflexive address equal to its base means the STUN server saw us unchanged.
  const unmapped = c.type === "srflx" && c.address === c.relatedAddress && c.port === c.relatedPort ? " (no NAT on the way to STUN)" : "";
  return `${c.type.padEnd(5)} ${c.protocol} ${formatAddress(c.address, c.port)}${related} prio ${c.priority}${unmapped}`;
}

export function formatAddress(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * A candidate line with the fields the WebRTC samples' trickle-ICE page shows: component,
 * foundation, protocol, address, port, and the priority split into its three parts (RFC 8445
 * §5.1.2.1: type preference << 24 | local preference << 8 | 256 - component).
 */
export function describeCandidateLine(c: CandidateInfo): string {
  const related = c.relatedAddress ? ` via ${formatAddress(c.relatedAddress, c.relatedPort ?? 0)}` : "";
  const tcp = c.tcpType ? ` tcptype ${c.tcpType}` : "";
  const [type, local, component] = priorityParts(c.priority);
  return `${c.type.padEnd(5)} component ${c.component ?? 1} foundation ${c.foundation} ${c.protocol}${tcp} ${formatAddress(c.address, c.port)}${related} priority ${type} | ${local} | ${component}`;
}

/** [type preference, local preference, component preference] of an ICE priority. */
export function priorityParts(priority: number): [number, number, number] {
  return [Math.floor(priority / 2 ** 24) & 0xff, Math.floor(priority / 2 ** 8) & 0xffff, priority & 0xff];
}
