// Request validation: every rule of the contract that can be checked without state. Each failure
// is a SignalingError whose message names the field, shows the bad value and says what is allowed.
//
// Size limits are INVALID_ARGUMENT, not RESOURCE_EXHAUSTED: an oversize SDP is wrong whatever the
// server's state, so retrying can never succeed, and RESOURCE_EXHAUSTED is kept for the one case a
// client should back off and retry (the recipient's queue is full).
import {
  EvidenceReport,
  SdpType,
  type ClientInfo,
  type IceCandidate,
  type RegisterRequest,
  type SendMessageRequest,
  type SessionDescription,
  type Signal,
} from "../gen/icetest/signaling/v1/signaling.ts";
import { invalidArgument, unauthenticated } from "./errors.ts";

export const MAX_ID_LENGTH = 64;
export const MAX_SDP_BYTES = 64 * 1024;
export const MAX_TEXT_BYTES = 64 * 1024;
export const MAX_CANDIDATE_BYTES = 2 * 1024;
/** An end-of-run evidence report, encoded: candidates, servers, NAT and up to 64 pairs fit easily. */
export const MAX_REPORT_BYTES = 16 * 1024;
/** Client info, bye reasons, mids and ufrags: short labels, never payloads. */
export const MAX_LABEL_LENGTH = 256;

const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
const ID_RULE = "use 1 to 64 characters from A-Z, a-z, 0-9, '.', '_' and '-'";
const SIGNAL_KINDS = "description, candidate, end_of_candidates, bye, text, report";
const SDP_TYPES = "SDP_TYPE_OFFER, SDP_TYPE_ANSWER, SDP_TYPE_PRANSWER or SDP_TYPE_ROLLBACK";

export interface ValidRegister {
  room: string;
  /** Undefined when the server should choose one. */
  peerId: string | undefined;
  client: ClientInfo;
}

export interface ValidSend {
  toPeerId: string;
  signal: Signal;
}

export function validateRegister(request: RegisterRequest): ValidRegister {
  return {
    room: validateId("room", request.room),
    peerId: request.peerId === "" ? undefined : validateId("peer_id", request.peerId),
    client: validateClient(request.client),
  };
}

/** A token must be present; whether it is known is the broker's business. */
export function requireToken(token: string): string {
  if (token === "") throw unauthenticated("Missing session token: call Register first and pass its session_token");
  return token;
}

export function validateSend(request: SendMessageRequest, fromPeerId: string): ValidSend {
  const toPeerId = validateId("to_peer_id", request.toPeerId);
  if (toPeerId === fromPeerId) throw invalidArgument(`Cannot send to peer "${toPeerId}": that is the sender itself`);
  return { toPeerId, signal: validateSignal(request.signal) };
}

export function validateId(field: string, value: string): string {
  if (value === "") throw invalidArgument(`Missing ${field}: ${ID_RULE}`);
  if (!ID_PATTERN.test(value)) throw invalidArgument(`Invalid ${field} ${quote(value)}: ${ID_RULE}`);
  return value;
}

/** Returns the signal to relay, normalized where the contract tolerates variants. */
export function validateSignal(signal: Signal | undefined): Signal {
  const kind = signal?.kind;
  if (!signal) throw invalidArgument(`Missing signal: set one of ${SIGNAL_KINDS}`);
  if (!kind) throw invalidArgument(`Signal is empty: set one of ${SIGNAL_KINDS}`);
  switch (kind.$case) {
    case "description":
      return { kind: { $case: "description", value: validateDescription(kind.value) } };
    case "candidate":
      return { kind: { $case: "candidate", value: validateCandidate(kind.value) } };
    case "endOfCandidates":
      checkLabel("end_of_candidates.username_fragment", kind.value.usernameFragment);
      return signal;
    case "bye":
      checkLabel("bye.reason", kind.value.reason);
      return signal;
    case "text":
      checkBytes("Text", kind.value, MAX_TEXT_BYTES);
      return signal;
    case "report":
      checkReport(kind.value);
      return signal;
  }
}

/** A report is only relayed, never read by the server: its size is all that can hurt. */
function checkReport(report: EvidenceReport): void {
  const bytes = EvidenceReport.encode(report).finish().length;
  if (bytes > MAX_REPORT_BYTES) throw invalidArgument(`Report is too large: ${bytes} bytes, the limit is ${MAX_REPORT_BYTES} (${MAX_REPORT_BYTES / 1024} KiB)`);
}

function validateDescription(description: SessionDescription): SessionDescription {
  const { type, sdp } = description;
  if (type === SdpType.SDP_TYPE_UNSPECIFIED) throw invalidArgument(`Description type is not set: use ${SDP_TYPES}`);
  if (!isKnownSdpType(type)) throw invalidArgument(`Unknown description type ${type}: use ${SDP_TYPES}`);
  if (type === SdpType.SDP_TYPE_ROLLBACK) {
    if (sdp !== "") throw invalidArgument("A rollback carries no SDP: leave sdp empty");
    return description;
  }
  const name = SdpType[type].replace("SDP_TYPE_", "").toLowerCase();
  if (sdp === "") throw invalidArgument(`Missing SDP in ${name}: sdp is required for every type but rollback`);
  checkBytes("SDP", sdp, MAX_SDP_BYTES);
  if (!sdp.startsWith("v=0")) throw invalidArgument(`Malformed SDP in ${name}: it must start with "v=0", got ${quote(sdp)}`);
  return description;
}

function isKnownSdpType(type: number): type is SdpType {
  return type >= SdpType.SDP_TYPE_OFFER && type <= SdpType.SDP_TYPE_ROLLBACK;
}

function validateCandidate(candidate: IceCandidate): IceCandidate {
  const text = candidate.candidate;
  if (text === "") {
    throw invalidArgument("Candidate is empty: to say that gathering is complete, send end_of_candidates instead");
  }
  checkBytes("Candidate", text, MAX_CANDIDATE_BYTES);
  // Receivers' addIceCandidate wants the bare attribute; strip the tolerated SDP-line prefix once here.
  const bare = text.startsWith("a=") ? text.slice(2) : text;
  if (!bare.startsWith("candidate:")) throw invalidArgument(`Malformed candidate ${quote(text)}: it must start with "candidate:"`);
  if (/[\r\n]/.test(bare)) throw invalidArgument(`Malformed candidate ${quote(text)}: it must be a single line`);
  checkLabel("candidate.sdp_mid", candidate.sdpMid ?? "");
  checkLabel("candidate.username_fragment", candidate.usernameFragment ?? "");
  return { ...candidate, candidate: bare };
}

function validateClient(client: ClientInfo | undefined): ClientInfo {
  const info = { name: client?.name ?? "", version: client?.version ?? "", runtime: client?.runtime ?? "" };
  checkLabel("client.name", info.name);
  checkLabel("client.version", info.version);
  checkLabel("client.runtime", info.runtime);
  return info;
}

function checkLabel(field: string, value: string): void {
  if (value.length > MAX_LABEL_LENGTH) {
    throw invalidArgument(`Invalid ${field}: ${value.length} characters, the limit is ${MAX_LABEL_LENGTH}`);
  }
}

function checkBytes(what: string, value: string, limit: number): void {
  // Cheap pre-check: UTF-8 needs at least one byte per UTF-16 unit, at most three.
  if (value.length * 3 <= limit) return;
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes > limit) throw invalidArgument(`${what} is too large: ${bytes} bytes, the limit is ${limit} (${limit / 1024} KiB)`);
}

/** Quotes a client's value for a message, cut short so an error never echoes a whole payload. */
function quote(value: string, max = 40): string {
  return JSON.stringify(value.length > max ? `${value.slice(0, max)}…` : value);
}
