// The Broker owns rooms, peers, sessions and mailboxes. The gRPC layer only validates, calls it and
// writes what it returns. Every method is async so a broker shared between server processes
// (Redis, say) can implement the same interface; the in-memory one is memory-broker.ts.
//
// Failures are SignalingErrors carrying the status the client should see:
//   register     ALREADY_EXISTS   the peer id is taken in that room
//   authenticate UNAUTHENTICATED  "Unknown or expired session token"
//   send         NOT_FOUND        the recipient is not in the sender's room
//                RESOURCE_EXHAUSTED the recipient's queue holds maxQueue undelivered events
//   subscribe    a Subscription replaced by a newer one ends with ABORTED
//   any method   UNAVAILABLE      after close()
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
 * period. "shutdown": it was served by a server process that shut down (a shared broker tells the
 * peers of the other processes; the in-memory broker ends every stream instead).
 */
export type LeaveReason = "left" | "expired" | "shutdown";

/**
 * The caller's events: those queued before subscribe() first, then live ones, in sequence order.
 * The source hands out an event only when asked for the next one, so events stay queued (and
 * count against the queue limit) while the consumer waits for its stream to drain.
 *
 * It ends (done) when the peer leaves or close() is called, and throws a SignalingError when a
 * newer subscription replaces it (ABORTED) or the broker closes (UNAVAILABLE).
 */
export interface Subscription extends AsyncIterable<SubscribeResponse> {
  /** The room's other peers when the subscription opened. */
  readonly others: readonly PeerRecord[];
  /** Stops delivery; the peer's grace period starts. Idempotent. */
  close(): void;
}

export interface Broker {
  /** Joins `room`; an undefined peerId lets the broker choose one. */
  register(room: string, peerId: string | undefined, client: ClientInfo): Promise<Registration>;
  authenticate(token: string): Promise<PeerRecord>;
  /** Queues `signal` for `toPeerId`; the sequence is the one the recipient will see. */
  send(from: PeerRecord, toPeerId: string, signal: Signal): Promise<{ sequence: bigint }>;
  subscribe(peer: PeerRecord): Promise<Subscription>;
  /** Removes the peer and tells the others. Idempotent: leaving twice is not an error. */
  leave(peer: PeerRecord, reason: LeaveReason): Promise<void>;
  /** Ends every subscription with UNAVAILABLE and drops all state; later calls fail UNAVAILABLE. */
  close(): Promise<void>;
}

export function toPeerInfo(peer: PeerRecord): PeerInfo {
  return { peerId: peer.peerId, client: peer.client, joinedAt: toTimestamp(peer.joinedAt) };
}
