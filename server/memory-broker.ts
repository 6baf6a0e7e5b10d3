// The Broker for one server process: rooms, sessions and mailboxes in maps.
//
// A session lives from Register until Leave, expiry or close(). It expires when it has had no open
// subscription for `sessionGraceMs`: after Register (a peer that never subscribes) and whenever
// its stream goes away, so a client that lost its connection has that long to subscribe again.
import { randomBytes, randomInt, randomUUID } from "node:crypto";
import type { ClientInfo, Signal } from "../gen/icetest/signaling/v1/signaling.ts";
import type { BrokerStats, BrokerStatsSource } from "./broker-stats.ts";
import { toPeerInfo, type Broker, type LeaveReason, type PeerRecord, type Registration, type Subscription } from "./broker.ts";
import { aborted, alreadyExists, notFound, resourceExhausted, unauthenticated, unavailable } from "./errors.ts";
import { Mailbox, type MailboxEvent } from "./mailbox.ts";

export const DEFAULT_SESSION_GRACE_MS = 30_000;
/** Room for a whole trickle (offer, answer, a few dozen candidates) many times over. */
export const DEFAULT_MAX_QUEUE = 1000;

export interface MemoryBrokerOptions {
  sessionGraceMs?: number;
  /** Undelivered messages a recipient may hold before senders get RESOURCE_EXHAUSTED. */
  maxQueue?: number;
  /** Told after a peer expired and the others were told. */
  onExpire?: (peer: PeerRecord) => void;
}

interface Session {
  readonly peer: PeerRecord;
  readonly token: string;
  readonly mailbox: Mailbox;
  expiry: NodeJS.Timeout | undefined;
}

type Room = Map<string, Session>;

const PEER_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

export class MemoryBroker implements Broker, BrokerStatsSource {
  private readonly sessionGraceMs: number;
  private readonly maxQueue: number;
  private readonly onExpire: (peer: PeerRecord) => void;
  /** Room name → peer id → session; a Map keeps the order of arrival. */
  private readonly rooms = new Map<string, Room>();
  private readonly sessions = new Map<string, Session>();
  private closed = false;

  constructor(options: MemoryBrokerOptions = {}) {
    this.sessionGraceMs = options.sessionGraceMs ?? DEFAULT_SESSION_GRACE_MS;
    this.maxQueue = options.maxQueue ?? DEFAULT_MAX_QUEUE;
    this.onExpire = options.onExpire ?? (() => {});
  }

  async register(roomName: string, peerId: string | undefined, client: ClientInfo): Promise<Registration> {
    this.ensureOpen();
    const room = this.rooms.get(roomName) ?? new Map<string, Session>();
    const id = peerId ?? freshPeerId(room);
    if (room.has(id)) {
      throw alreadyExists(`Peer id "${id}" is already taken in room "${roomName}": choose another or leave peer_id empty`);
    }
    const others = [...room.values()];
    const session = this.createSession({ room: roomName, peerId: id, client, joinedAt: new Date(), sessionId: randomUUID() });
    room.set(id, session);
    this.rooms.set(roomName, room);
    this.sessions.set(session.token, session);
    this.startExpiry(session);
    postAll(others, { $case: "peerJoined", value: { peer: toPeerInfo(session.peer) } });
    return { peer: session.peer, token: session.token, others: others.map((other) => other.peer) };
  }

  async authenticate(token: string): Promise<PeerRecord> {
    this.ensureOpen();
    const session = this.sessions.get(token);
    if (!session) throw unauthenticated("Unknown or expired session token");
    return session.peer;
  }

  async send(from: PeerRecord, toPeerId: string, signal: Signal): Promise<{ sequence: bigint }> {
    this.sessionOf(from);
    const recipient = this.rooms.get(from.room)?.get(toPeerId);
    if (!recipient) throw notFound(`Cannot send to peer "${toPeerId}": no such peer in room "${from.room}"`);
    if (recipient.mailbox.isFull) {
      throw resourceExhausted(
        `Cannot send to peer "${toPeerId}": its queue already holds ${this.maxQueue} undelivered events (it is not reading its Subscribe stream)`,
      );
    }
    const sequence = recipient.mailbox.post({ $case: "message", value: { fromPeerId: from.peerId, signal } });
    return { sequence };
  }

  async subscribe(peer: PeerRecord): Promise<Subscription> {
    const session = this.sessionOf(peer);
    this.stopExpiry(session);
    const reader = session.mailbox.attach(aborted(`Subscription replaced by a newer Subscribe for peer "${peer.peerId}"`));
    const others = [...this.roomOf(peer).values()].filter((other) => other !== session).map((other) => other.peer);
    return {
      others,
      close: () => reader.end(),
      [Symbol.asyncIterator]: () => reader,
    };
  }

  async leave(peer: PeerRecord, reason: LeaveReason): Promise<void> {
    this.ensureOpen();
    const session = this.rooms.get(peer.room)?.get(peer.peerId);
    if (session?.peer.sessionId !== peer.sessionId) return;
    this.remove(session, reason);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const shuttingDown = unavailable("Server is shutting down");
    for (const session of this.sessions.values()) {
      this.stopExpiry(session);
      session.mailbox.close(shuttingDown);
    }
    this.sessions.clear();
    this.rooms.clear();
  }

  stats(): BrokerStats {
    let queuedEvents = 0;
    let queuedBytes = 0;
    for (const session of this.sessions.values()) {
      queuedEvents += session.mailbox.size;
      queuedBytes += session.mailbox.queuedBytes;
    }
    return { peers: this.sessions.size, rooms: this.rooms.size, queuedEvents, queuedBytes };
  }

  private createSession(peer: PeerRecord): Session {
    // The mailbox reports when its stream goes away: that starts the grace period.
    const session: Session = {
      peer,
      token: randomBytes(32).toString("base64url"),
      mailbox: new Mailbox(this.maxQueue, () => this.startExpiry(session)),
      expiry: undefined,
    };
    return session;
  }

  private remove(session: Session, reason: LeaveReason): void {
    const { room: roomName, peerId } = session.peer;
    this.stopExpiry(session);
    this.sessions.delete(session.token);
    const room = this.roomOf(session.peer);
    room.delete(peerId);
    if (room.size === 0) this.rooms.delete(roomName);
    session.mailbox.close();
    postAll(room.values(), { $case: "peerLeft", value: { peerId, reason } });
  }

  private startExpiry(session: Session): void {
    if (this.closed || !this.sessions.has(session.token)) return;
    this.stopExpiry(session);
    session.expiry = setTimeout(() => this.expire(session), this.sessionGraceMs);
    // A peer that went away must not keep the process alive.
    session.expiry.unref();
  }

  private stopExpiry(session: Session): void {
    clearTimeout(session.expiry);
    session.expiry = undefined;
  }

  private expire(session: Session): void {
    session.expiry = undefined;
    if (!this.sessions.has(session.token)) return;
    this.remove(session, "expired");
    this.onExpire(session.peer);
  }

  /** The live session of `peer`, or UNAUTHENTICATED when it left, expired or was replaced. */
  private sessionOf(peer: PeerRecord): Session {
    this.ensureOpen();
    const session = this.rooms.get(peer.room)?.get(peer.peerId);
    if (session?.peer.sessionId !== peer.sessionId) throw unauthenticated("Unknown or expired session token");
    return session;
  }

  private roomOf(peer: PeerRecord): Room {
    return this.rooms.get(peer.room) ?? new Map();
  }

  private ensureOpen(): void {
    if (this.closed) throw unavailable("Server is shutting down");
  }
}

/**
 * Room events ignore the queue limit: there is no sender to refuse, and dropping one would leave a
 * gap in the sequence. They grow only with room churn, and a peer without a stream expires.
 */
function postAll(sessions: Iterable<Session>, event: MailboxEvent): void {
  for (const session of sessions) session.mailbox.post(event);
}

function freshPeerId(room: Room): string {
  for (;;) {
    let suffix = "";
    for (let i = 0; i < 6; i++) suffix += PEER_ID_ALPHABET[randomInt(PEER_ID_ALPHABET.length)];
    const id = `peer-${suffix}`;
    if (!room.has(id)) return id;
  }
}
