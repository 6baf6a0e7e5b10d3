// The Broker for one server process: rooms, sessions and mailboxes in maps, limits as counters.
//
// A session lives from Register until Leave, expiry or close(). It expires when it has had no open
// subscription for `limits.sessionGraceMs`: after Register (a peer that never subscribes) and
// whenever its stream goes away, so a client that lost its connection has that long to resume.
import { randomBytes, randomInt, randomUUID } from "node:crypto";
import type { ClientInfo, Signal } from "../gen/icetest/signaling/v1/signaling.ts";
import {
  toPeerInfo,
  type Broker,
  type BrokerStats,
  type LeaveReason,
  type Origin,
  type PeerRecord,
  type Registration,
  type SubscribeOptions,
  type Subscription,
} from "./broker.ts";
import { encodeEvent } from "./encoded-event.ts";
import { aborted, alreadyExists, notFound, resourceExhausted, unauthenticated, unavailable } from "./errors.ts";
import { DEFAULT_BROKER_LIMITS, definedOnly, describeLimit, type BrokerLimits } from "./limits.ts";
import { Mailbox, type MailboxEvent, type Tally } from "./mailbox.ts";
import { TokenBucket } from "./token-bucket.ts";

export interface MemoryBrokerOptions {
  /** Any limit left out takes its default. */
  limits?: Partial<BrokerLimits>;
  /** Shorthands of limits.sessionGraceMs and limits.peerEvents, as before limits existed. */
  sessionGraceMs?: number;
  maxQueue?: number;
  /** Told after a peer expired and the others were told. */
  onExpire?: (peer: PeerRecord) => void;
}

interface Session {
  readonly peer: PeerRecord;
  readonly token: string;
  readonly address: string;
  readonly mailbox: Mailbox;
  readonly sends: TokenBucket;
  expiry: NodeJS.Timeout | undefined;
}

type Room = Map<string, Session>;

const PEER_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

export class MemoryBroker implements Broker {
  readonly limits: BrokerLimits;
  private readonly onExpire: (peer: PeerRecord) => void;
  /** Room name → peer id → session; a Map keeps the order of arrival. */
  private readonly rooms = new Map<string, Room>();
  private readonly sessions = new Map<string, Session>();
  private readonly perAddress = new Map<string, number>();
  private readonly tally: Tally = { events: 0, bytes: 0 };
  private closed = false;

  constructor(options: MemoryBrokerOptions = {}) {
    this.limits = {
      ...DEFAULT_BROKER_LIMITS,
      ...(options.sessionGraceMs !== undefined ? { sessionGraceMs: options.sessionGraceMs } : {}),
      ...(options.maxQueue !== undefined ? { peerEvents: options.maxQueue } : {}),
      ...definedOnly(options.limits ?? {}),
    };
    this.onExpire = options.onExpire ?? (() => {});
  }

  async register(roomName: string, peerId: string | undefined, client: ClientInfo, origin: Origin): Promise<Registration> {
    this.ensureOpen();
    const room = this.rooms.get(roomName) ?? new Map<string, Session>();
    const id = peerId ?? freshPeerId(room);
    if (room.has(id)) {
      throw alreadyExists(`Peer id "${id}" is already taken in room "${roomName}": choose another or leave peer_id empty`);
    }
    this.checkRegistration(roomName, room, origin.address);
    const peer: PeerRecord = { room: roomName, peerId: id, client, joinedAt: new Date(), sessionId: randomUUID() };
    const joined: MailboxEvent = { $case: "peerJoined", value: { peer: toPeerInfo(peer) } };
    const others = [...room.values()];
    this.checkRoomEvents(roomName, others, eventBytes(joined));
    const session = this.createSession(peer, origin.address);
    room.set(id, session);
    this.rooms.set(roomName, room);
    this.sessions.set(session.token, session);
    this.perAddress.set(origin.address, (this.perAddress.get(origin.address) ?? 0) + 1);
    this.startExpiry(session);
    postAll(others, joined);
    return { peer, token: session.token, others: others.map((other) => other.peer) };
  }

  async authenticate(token: string): Promise<PeerRecord> {
    this.ensureOpen();
    const session = this.sessions.get(token);
    if (!session) throw unauthenticated("Unknown or expired session token");
    return session.peer;
  }

  async send(from: PeerRecord, toPeerId: string, signal: Signal): Promise<{ sequence: bigint }> {
    const sender = this.sessionOf(from);
    const recipient = this.rooms.get(from.room)?.get(toPeerId);
    if (!recipient) throw notFound(`Cannot send to peer "${toPeerId}": no such peer in room "${from.room}"`);
    if (!sender.sends.take()) {
      throw resourceExhausted(
        `Peer "${from.peerId}" sends too fast: ${describeLimit("sendRate", this.limits.sendRate)}, bursts of ${describeLimit("sendBurst", this.limits.sendBurst)}; slow down and retry`,
      );
    }
    const event: MailboxEvent = { $case: "message", value: { fromPeerId: from.peerId, signal } };
    const encoded = encodeEvent(event);
    const bytes = heldBytes(encoded);
    this.checkRoomFor(recipient, bytes, `Cannot send to peer "${toPeerId}"`);
    return { sequence: recipient.mailbox.post(event, bytes, encoded) };
  }

  async subscribe(peer: PeerRecord, options: SubscribeOptions = {}): Promise<Subscription> {
    const session = this.sessionOf(peer);
    const reader = session.mailbox.attach(aborted(`Subscription replaced by a newer Subscribe for peer "${peer.peerId}"`), options.resumeAfter);
    this.stopExpiry(session);
    const others = [...this.roomOf(peer).values()].filter((other) => other !== session).map((other) => other.peer);
    return {
      others,
      ended: reader.ended,
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

  async stats(): Promise<BrokerStats> {
    return { rooms: this.rooms.size, peers: this.sessions.size, heldEvents: this.tally.events, heldBytes: this.tally.bytes };
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
    this.perAddress.clear();
  }

  private checkRegistration(roomName: string, room: Room, address: string): void {
    const { peersPerRoom, registrationsPerAddress, registrations } = this.limits;
    if (room.size >= peersPerRoom) {
      throw resourceExhausted(`Room "${roomName}" is full: ${describeLimit("peersPerRoom", peersPerRoom)} peers`);
    }
    if ((this.perAddress.get(address) ?? 0) >= registrationsPerAddress) {
      throw resourceExhausted(
        `Too many registrations from ${address}: ${describeLimit("registrationsPerAddress", registrationsPerAddress)}; leave rooms you no longer use`,
      );
    }
    if (this.sessions.size >= registrations) {
      throw resourceExhausted(`The server holds as many registrations as it allows: ${describeLimit("registrations", registrations)}; try again later`);
    }
  }

  /**
   * A join is refused, rather than queued, when a member could not take its peer_joined: room
   * churn then stops at the stranger who causes it, and members' own messages keep their room.
   */
  private checkRoomEvents(roomName: string, members: readonly Session[], bytes: number): void {
    const refuse = `Cannot join room "${roomName}" now`;
    for (const member of members) {
      if (member.mailbox.pendingRoomEvents >= this.limits.roomEvents) {
        throw resourceExhausted(
          `${refuse}: a peer there has not read its room events (${describeLimit("roomEvents", this.limits.roomEvents)}); try again later`,
        );
      }
      this.checkRoomFor(member, bytes, refuse);
    }
  }

  /** Makes room for one event of `bytes` in `recipient`'s mailbox, or refuses naming the limit. */
  private checkRoomFor(recipient: Session, bytes: number, refuse: string): void {
    const { peerEvents, peerBytes, totalBytes } = this.limits;
    const mailbox = recipient.mailbox;
    if (!mailbox.makeRoom(1, bytes, peerEvents, peerBytes)) {
      const limit = mailbox.size + 1 > peerEvents ? describeLimit("peerEvents", peerEvents) : describeLimit("peerBytes", peerBytes);
      throw resourceExhausted(
        `${refuse}: its queue holds ${mailbox.undelivered} undelivered events of ${mailbox.bytes} bytes (${limit}); it is not reading its Subscribe stream`,
      );
    }
    if (this.tally.bytes + bytes > totalBytes) {
      throw resourceExhausted(`${refuse}: the server holds ${this.tally.bytes} bytes of undelivered events (${describeLimit("totalBytes", totalBytes)}); try again later`);
    }
  }

  private createSession(peer: PeerRecord, address: string): Session {
    // The mailbox reports when its stream goes away: that starts the grace period.
    const session: Session = {
      peer,
      address,
      token: randomBytes(32).toString("base64url"),
      mailbox: new Mailbox(this.limits.retainEvents, this.tally, () => this.startExpiry(session)),
      sends: new TokenBucket(this.limits.sendRate, this.limits.sendBurst),
      expiry: undefined,
    };
    return session;
  }

  private remove(session: Session, reason: LeaveReason): void {
    const { room: roomName, peerId } = session.peer;
    this.stopExpiry(session);
    this.sessions.delete(session.token);
    const left = (this.perAddress.get(session.address) ?? 1) - 1;
    if (left > 0) this.perAddress.set(session.address, left);
    else this.perAddress.delete(session.address);
    const room = this.roomOf(session.peer);
    room.delete(peerId);
    if (room.size === 0) this.rooms.delete(roomName);
    session.mailbox.close();
    postAll(room.values(), { $case: "peerLeft", value: { peerId, reason } });
  }

  private startExpiry(session: Session): void {
    if (this.closed || !this.sessions.has(session.token)) return;
    this.stopExpiry(session);
    session.expiry = setTimeout(() => this.expire(session), this.limits.sessionGraceMs);
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
 * Room events are posted without a budget check: a peer_joined was checked at the registration
 * that caused it, and peer_left cannot be refused (there is no sender to refuse, and a gap would
 * break the sequence); at most one per member of a bounded room is pending.
 */
function postAll(sessions: Iterable<Session>, event: MailboxEvent): void {
  const encoded = encodeEvent(event);
  const bytes = heldBytes(encoded);
  for (const session of sessions) session.mailbox.post(event, bytes, encoded);
}

/** The size of an event on the wire, framing aside: what the byte budgets count. */
function heldBytes(encoded: Uint8Array): number {
  // Sequence and server time add at most 24 bytes; counting them exactly is not worth an encode each.
  return encoded.length + 24;
}

function eventBytes(event: MailboxEvent): number {
  return heldBytes(encodeEvent(event));
}

function freshPeerId(room: Room): string {
  for (;;) {
    let suffix = "";
    for (let i = 0; i < 6; i++) suffix += PEER_ID_ALPHABET[randomInt(PEER_ID_ALPHABET.length)];
    const id = `peer-${suffix}`;
    if (!room.has(id)) return id;
  }
}
