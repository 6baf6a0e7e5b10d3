// The Broker owns rooms, peers, sessions, mailboxes and every budget that bounds them. The gRPC
// layer only validates, calls it and writes what it returns. Every method is async so a broker
// shared between server processes (Redis, say) can implement the same interface; the in-memory one
// is memory-broker.ts. Nothing here may depend on how the state is stored.
//
// Failures are SignalingErrors carrying the status the client should see. Every limit refusal is
// RESOURCE_EXHAUSTED with a message naming what was exceeded and the limit's value (and the flag
// that sets it, from LIMIT_FLAGS), so an operator can tell which one a client hit:
//   register     ALREADY_EXISTS      the peer id is taken in that room
//                RESOURCE_EXHAUSTED  the room holds limits.peersPerRoom peers; the address holds
//                                    limits.registrationsPerAddress registrations; the server holds
//                                    limits.registrations; a member of the room already holds
//                                    limits.roomEvents undelivered room events (the joiner is
//                                    refused, so a flood of joins cannot bury anyone's messages)
//   authenticate UNAUTHENTICATED     "Unknown or expired session token"; a shared broker may answer
//                                    from its own memory for a session another process has just
//                                    removed: then the method the record is given to fails
//                                    UNAUTHENTICATED instead (leave too)
//   send         NOT_FOUND           the recipient is not in the sender's room
//                RESOURCE_EXHAUSTED  the sender exceeded limits.sendRate (token bucket of
//                                    limits.sendBurst); the recipient would hold more than
//                                    limits.peerEvents events or limits.peerBytes bytes; the server
//                                    would hold more than limits.totalBytes bytes
//   subscribe    OUT_OF_RANGE        resumeAfter names events no longer held, or never issued
//                a Subscription replaced by a newer one ends with ABORTED
//   any method   UNAVAILABLE         after close()
//
// Budgets. A peer's mailbox holds its undelivered events and, for resume, the events it was last
// handed (retained). Both count against the per-peer budget (limits.peerEvents events,
// limits.peerBytes bytes, bytes = encoded SubscribeResponse size) and the server-wide budget
// (limits.totalBytes). Retained events are the first to go: an event is dropped from retention
// when it is older than the limits.retainEvents most recent handed-out ones, when room is needed
// for a new event of the same peer, and when a resume point acknowledges it. Room events
// (peer_joined, peer_left) count too, but a recipient holds at most limits.roomEvents undelivered
// ones; peer_left is never refused (it is bounded by the room's size), peer_joined is refused at
// the registration that would cause it. Fan-out of a room event costs O(room size).
//
// Liveness. A session expires (leaves with reason "expired", the others get peer_left) when it has
// had no open subscription for limits.sessionGraceMs: after Register, and whenever its stream goes
// away. The gRPC layer ends a stream whose client stopped answering (keepalive, heartbeats).
//
// Takeover. subscribe() for a peer that already has a subscription ends the old one at once: its
// iterator throws ABORTED ("replaced by a newer Subscribe") and its `ended` promise resolves with
// that error, even if its consumer is not waiting for an event (blocked on flow control).
import type { ClientInfo, PeerInfo, Signal, SubscribeResponse } from "../gen/icetest/signaling/v1/signaling.ts";
import { toTimestamp } from "./timestamp.ts";

/** One registration of one peer. A peer id registered again later is a different PeerRecord. */
export interface PeerRecord {
  readonly room: string;
  readonly peerId: string;
  readonly client: ClientInfo;
  readonly joinedAt: Date;
  /** Opaque and unique per registration (not the token): tells a stale record from a new one. */
  readonly sessionId: string;
}

export interface Registration {
  readonly peer: PeerRecord;
  /** The secret that names this registration in later calls. */
  readonly token: string;
  /** The room's other peers, in order of arrival. */
  readonly others: readonly PeerRecord[];
}

/**
 * "left": the peer called Leave. "expired": it had no open stream for longer than the grace
 * period (it died, stopped answering or lost its connection). "shutdown": it was served by a server
 * process that shut down (a shared broker tells the peers of the other processes; the in-memory
 * broker ends every stream instead).
 */
export type LeaveReason = "left" | "expired" | "shutdown";

/** Where a registration comes from, for the per-address limit. */
export interface Origin {
  /** The client's IP address (no port), as the server saw it. */
  readonly address: string;
}

export interface SubscribeOptions {
  /**
   * The last sequence the client processed. Defined: the subscription starts with every held event
   * after it (retained ones first, then undelivered), exactly once and in order, and events up to
   * it are dropped from retention; OUT_OF_RANGE when the event after it is no longer held or the
   * sequence was never issued. Undefined: it starts with the undelivered events, as before resume.
   */
  readonly resumeAfter?: bigint;
}

/**
 * The caller's events: those queued before subscribe() first, then live ones, in sequence order.
 * The source hands out an event only when asked for the next one, so events stay queued (and
 * count against the budgets) while the consumer waits for its stream to drain. An event handed
 * out is retained for resume (see Budgets above).
 *
 * It ends (done) when the peer leaves or close() is called, and throws a SignalingError when a
 * newer subscription replaces it (ABORTED) or the broker closes (UNAVAILABLE).
 */
export interface Subscription extends AsyncIterable<SubscribeResponse> {
  /** The room's other peers when the subscription opened. */
  readonly others: readonly PeerRecord[];
  /**
   * Resolves once the subscription has ended, however it ended: with the error its iterator
   * throws (ABORTED when replaced, UNAVAILABLE when the broker closed), or undefined (the peer
   * left, or close() was called). Lets a consumer blocked on its stream's flow control end at once.
   */
  readonly ended: Promise<Error | undefined>;
  /** Stops delivery; the peer's grace period starts. Idempotent. */
  close(): void;
}

/** What the broker holds, for logs and metrics. */
export interface BrokerStats {
  readonly rooms: number;
  readonly peers: number;
  /** Undelivered plus retained events, over all peers. */
  readonly heldEvents: number;
  /** Their bytes: what limits.totalBytes bounds. */
  readonly heldBytes: number;
}

export interface Broker {
  /** Joins `room`; an undefined peerId lets the broker choose one. */
  register(room: string, peerId: string | undefined, client: ClientInfo, origin: Origin): Promise<Registration>;
  authenticate(token: string): Promise<PeerRecord>;
  /** Queues `signal` for `toPeerId`; the sequence is the one the recipient will see. */
  send(from: PeerRecord, toPeerId: string, signal: Signal): Promise<{ sequence: bigint }>;
  subscribe(peer: PeerRecord, options?: SubscribeOptions): Promise<Subscription>;
  /** Removes the peer and tells the others. Idempotent: leaving twice is not an error. */
  leave(peer: PeerRecord, reason: LeaveReason): Promise<void>;
  stats(): Promise<BrokerStats>;
  /** Ends every subscription with UNAVAILABLE and drops all state; later calls fail UNAVAILABLE. */
  close(): Promise<void>;
}

export function toPeerInfo(peer: PeerRecord): PeerInfo {
  return { peerId: peer.peerId, client: peer.client, joinedAt: toTimestamp(peer.joinedAt) };
}
