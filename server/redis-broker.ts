// The Broker shared by several server processes through one Redis: peers registered on different
// instances meet, with the guarantees of the in-memory broker (gap-free per-recipient sequences,
// budgets, resume, expiry, takeover, leave reasons).
//
// Why streams plus pub/sub: every event goes into the recipient's Redis stream (ordered, kept for
// replay: what makes resume and a takeover on another instance lose nothing) and, in the same Lua
// script, onto the recipient's pub/sub channel (what makes delivery fast without one blocking XREAD
// connection per subscriber). redis-subscription.ts merges the two by sequence number, so each
// event is handed out exactly once. State changes are Lua scripts (redis-scripts.ts): atomic on
// every instance. Instance liveness and expiry are in redis-liveness.ts.
import { randomBytes, randomInt, randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { SubscribeResponse, type ClientInfo, type Signal } from "../gen/icetest/signaling/v1/signaling.ts";
import { toPeerInfo, type Broker, type BrokerStats, type LeaveReason, type Origin, type PeerRecord, type Registration, type SubscribeOptions, type Subscription } from "./broker.ts";
import { encodeEvent, withEncodedEvent } from "./encoded-event.ts";
import { aborted, alreadyExists, notFound, outOfRange, resourceExhausted, SignalingError, unauthenticated, unavailable } from "./errors.ts";
import { DEFAULT_BROKER_LIMITS, describeLimit, type BrokerLimits } from "./limits.ts";
import { connectRedis, fromRedisError, openRedis, redact } from "./redis-connection.ts";
import { RedisLiveness } from "./redis-liveness.ts";
import { defineScripts, type ScriptedRedis } from "./redis-scripts.ts";
import { RedisSubscription } from "./redis-subscription.ts";
import { toTimestamp } from "./timestamp.ts";

export const DEFAULT_REDIS_PREFIX = "ice-test:";

export interface RedisBrokerOptions {
  /** redis://[:password@]host:port[/db] */
  url: string;
  /** Key prefix: instances with the same Redis and prefix share rooms. */
  prefix?: string;
  limits?: Partial<BrokerLimits>;
  /** Told after a peer expired (on the instance that noticed) and the others were told. */
  onExpire?: (peer: PeerRecord, reason: LeaveReason) => void;
  /** Lines about Redis's state (lost, back), for the server's log. */
  onRedisState?: (state: string, detail?: string) => void;
  /** How often this instance says it is alive (default 1 s); it counts as dead after 5 of these. */
  heartbeatMs?: number;
}

interface AckState {
  /** The ack not sent yet. */
  latest: { epoch: number; sequence: number } | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Settles when the last ack sent has been answered (or failed). */
  sent: Promise<void>;
}

type Member = [sid: string, peer: string, client: string, joined: string, roomq?: number];

/** Tokens remembered per instance; the oldest go first (they are looked up again when used). */
const TOKEN_CACHE = 50_000;
/** How long an ack may wait for more events to cover. */
const ACK_DELAY_MS = 10;
const PEER_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const CLOSING = "Server is shutting down";

export class RedisBroker implements Broker {
  readonly instanceId = randomUUID();
  private readonly limits: BrokerLimits;
  private readonly prefix: string;
  private readonly url: string;
  private readonly redis: ScriptedRedis;
  private readonly subscriber: Redis;
  private readonly liveness: RedisLiveness;
  /** Session id → the subscription this instance serves for it. */
  private readonly local = new Map<string, RedisSubscription>();
  /**
   * Streams this instance ended (session id → epoch): when it shuts down, the server ends its
   * streams before closing the broker, and those peers, unless they resume elsewhere, left
   * because of the shutdown. Forgotten after a grace period.
   */
  private readonly released = new Map<string, number>();
  /** Session ids with a subscribe() under way on this instance. */
  private readonly opening = new Map<string, number>();
  /**
   * Tokens this instance has seen → their registration, so that a SendMessage costs one round trip
   * to Redis, not two. A hit may be stale (the session left or expired, possibly through another
   * instance), which is harmless wherever the next script checks the session itself (send,
   * subscribe); leave() and authenticate() answer as if it had been looked up (see `unverified`).
   */
  private readonly sessions = new Map<string, PeerRecord>();
  /** Session id → its token in `sessions`, to forget it when the session goes. */
  private readonly tokens = new Map<string, string>();
  /** Records authenticate() answered from `sessions` without asking Redis. */
  private readonly unverified = new WeakSet<PeerRecord>();
  private closed = false;

  static async connect(options: RedisBrokerOptions): Promise<RedisBroker> {
    const broker = new RedisBroker(options);
    try {
      await Promise.all([connectRedis(broker.redis, options.url), connectRedis(broker.subscriber, options.url)]);
      await broker.liveness.start();
    } catch (err) {
      broker.redis.disconnect();
      broker.subscriber.disconnect();
      throw fromRedisError(options.url, err);
    }
    return broker;
  }

  private constructor(options: RedisBrokerOptions) {
    this.limits = { ...DEFAULT_BROKER_LIMITS, ...options.limits };
    this.prefix = options.prefix ?? DEFAULT_REDIS_PREFIX;
    this.url = options.url;
    const onState = options.onRedisState ?? (() => {});
    this.redis = defineScripts(openRedis(options.url, `ice-test-${this.instanceId}`, onState));
    this.subscriber = openRedis(options.url, `ice-test-${this.instanceId}-sub`, () => {});
    this.subscriber.on("messageBuffer", (channel: Buffer, message: Buffer) => this.onChannel(channel, message));
    // Back after an outage: read what pub/sub may have dropped, re-send acks that failed.
    this.subscriber.on("ready", () => this.local.forEach((sub) => sub.catchUp()));
    this.redis.on("ready", () => this.local.forEach((sub) => sub.reack()));
    this.liveness = new RedisLiveness({
      redis: this.redis,
      prefix: this.prefix,
      instanceId: this.instanceId,
      graceMs: this.limits.sessionGraceMs,
      heartbeatMs: options.heartbeatMs ?? 1_000,
      leavePayload: (peerId, reason) => encodeEvent({ $case: "peerLeft", value: { peerId, reason } }),
      onExpire: (peer, reason) => {
        this.forget(peer.sessionId);
        options.onExpire?.(peer, reason);
      },
      claimAll: () => [...this.local.entries()].map(([sid, sub]) => [sid, sub.epoch] as const),
    });
  }

  async register(room: string, peerId: string | undefined, client: ClientInfo, origin: Origin): Promise<Registration> {
    return this.call(async () => {
      for (;;) {
        const id = peerId ?? freshPeerId();
        const peer: PeerRecord = { room, peerId: id, client, joinedAt: new Date(), sessionId: randomUUID() };
        const token = randomBytes(32).toString("base64url");
        const now = Date.now();
        const payload = encodeEvent({ $case: "peerJoined", value: { peer: toPeerInfo(peer) } });
        const { limits } = this;
        const reply = (await this.redis.icRegister(
          ...[this.prefix, room, id, peer.sessionId, token, JSON.stringify(client), peer.joinedAt.getTime(), now + limits.sessionGraceMs],
          ...[payload, now, origin.address, limits.peersPerRoom, limits.registrationsPerAddress, limits.registrations, limits.roomEvents],
          ...[limits.peerEvents, limits.peerBytes, limits.totalBytes],
        )) as [string, ...unknown[]];
        const [outcome] = reply;
        if (outcome === "OK") {
          this.liveness.expiryAt(now + limits.sessionGraceMs);
          this.remember(token, peer);
          return { peer, token, others: (reply[1] as Member[]).map((m) => toRecord(room, m)) };
        }
        if (outcome !== "TAKEN") throw this.refused(reply, `Cannot join room "${room}" now`, room, origin.address);
        if (peerId !== undefined) {
          throw alreadyExists(`Peer id "${id}" is already taken in room "${room}": choose another or leave peer_id empty`);
        }
      }
    });
  }

  async authenticate(token: string): Promise<PeerRecord> {
    if (this.closed) throw unavailable(CLOSING);
    const known = this.sessions.get(token);
    if (known) {
      const record = { ...known };
      this.unverified.add(record);
      return record;
    }
    return this.call(async () => {
      const reply = (await this.redis.icAuthenticate(this.prefix, token)) as [string, string, string, string, string] | null;
      if (!reply) throw unauthenticated("Unknown or expired session token");
      const [sid, room, peer, client, joined] = reply;
      const record = toRecord(room, [sid, peer, client, joined]);
      this.remember(token, record);
      return record;
    });
  }

  async send(from: PeerRecord, toPeerId: string, signal: Signal): Promise<{ sequence: bigint }> {
    return this.call(async () => {
      const { limits } = this;
      const payload = encodeEvent({ $case: "message", value: { fromPeerId: from.peerId, signal } });
      const reply = (await this.redis.icSend(
        ...[this.prefix, from.sessionId, from.room, toPeerId, payload, Date.now()],
        ...[limits.peerEvents, limits.peerBytes, limits.totalBytes, limits.sendRate, limits.sendBurst],
      )) as [string, ...number[]];
      switch (reply[0]) {
        case "OK":
          return { sequence: BigInt(reply[1]!) };
        case "UNAUTH":
          this.forget(from.sessionId);
          throw unauthenticated("Unknown or expired session token");
        case "NOTFOUND":
          throw notFound(`Cannot send to peer "${toPeerId}": no such peer in room "${from.room}"`);
        case "sendRate":
          throw resourceExhausted(
            `Peer "${from.peerId}" sends too fast: ${describeLimit("sendRate", limits.sendRate)}, bursts of ${describeLimit("sendBurst", limits.sendBurst)}; slow down and retry`,
          );
        default:
          throw this.refused(reply, `Cannot send to peer "${toPeerId}"`, from.room, "");
      }
    });
  }

  async subscribe(peer: PeerRecord, options: SubscribeOptions = {}): Promise<Subscription> {
    return this.call(async () => {
      // What the previous stream handed out counts before the resume point is checked.
      await this.acked(peer.sessionId);
      const channel = this.channelOf(peer.sessionId);
      // Listen first: an event published while the script runs then arrives here or in the read.
      await this.subscriber.subscribe(channel);
      let reply: [string, ...unknown[]] | null;
      // The previous local subscription ends when this call returns, not when our own "R" arrives:
      // its consumer may be waiting on it, and the caller can only handle the failure after that.
      this.opening.set(peer.sessionId, (this.opening.get(peer.sessionId) ?? 0) + 1);
      try {
        const resume = options.resumeAfter === undefined ? "" : options.resumeAfter.toString();
        reply = (await this.redis.icSubscribe(this.prefix, peer.sessionId, this.instanceId, resume)) as [string, ...unknown[]] | null;
      } catch (err) {
        if (!this.local.has(peer.sessionId)) void this.subscriber.unsubscribe(channel).catch(() => {});
        throw err;
      } finally {
        const opening = this.opening.get(peer.sessionId)! - 1;
        if (opening === 0) this.opening.delete(peer.sessionId);
        else this.opening.set(peer.sessionId, opening);
      }
      if (!reply || reply[0] === "RANGE") {
        if (!this.local.has(peer.sessionId)) void this.subscriber.unsubscribe(channel).catch(() => {});
        if (!reply) {
          this.forget(peer.sessionId);
          throw unauthenticated("Unknown or expired session token");
        }
        const [, first, last] = reply as [string, number, number];
        const why = options.resumeAfter! > BigInt(last) ? `the last event issued is ${last}` : `events before ${first} are no longer held`;
        throw outOfRange(`Cannot resume after sequence ${options.resumeAfter}: ${why}; register again`);
      }
      const [, epoch, start, members] = reply as [string, number, number, Member[]];
      const subscription: RedisSubscription = new RedisSubscription(peer.peerId, epoch, start, members.map((m) => toRecord(peer.room, m)), {
        read: (from, count) => this.read(peer.sessionId, from, count),
        ack: (sequence) => this.ack(peer.sessionId, epoch, sequence),
        ended: (released) => this.ended(peer.sessionId, subscription, released),
      });
      const previous = this.local.get(peer.sessionId);
      this.local.set(peer.sessionId, subscription);
      previous?.fail(replaced(peer.peerId));
      subscription.catchUp();
      return subscription;
    });
  }

  async leave(peer: PeerRecord, reason: LeaveReason): Promise<void> {
    return this.call(async () => {
      const payload = encodeEvent({ $case: "peerLeft", value: { peerId: peer.peerId, reason } });
      const removed = await this.redis.icLeave(this.prefix, peer.sessionId, reason, payload, Date.now(), 0);
      this.forget(peer.sessionId);
      // Looked up in Redis, this record's token would have been refused.
      if (removed !== 1 && this.unverified.has(peer)) throw unauthenticated("Unknown or expired session token");
    });
  }

  async stats(): Promise<BrokerStats> {
    return this.call(async () => {
      const [rooms, peers, heldEvents, heldBytes] = (await this.redis.icStats(this.prefix)) as number[];
      return { rooms: rooms!, peers: peers!, heldEvents: heldEvents!, heldBytes: heldBytes! };
    });
  }

  /**
   * Ends this instance's subscriptions with UNAVAILABLE. Its peers keep their sessions for the
   * grace period, so they can resume on another instance; those that do not leave with reason
   * "shutdown". The shared state stays: other instances go on.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.sendWaitingAcks();
    this.closed = true;
    await this.liveness.stop([...this.released]).catch(() => {});
    this.redis.disconnect();
    this.subscriber.disconnect();
    this.sessions.clear();
    this.tokens.clear();
    // Last, so that whoever awaits close() can still catch what the consumers now see.
    const closing = unavailable(CLOSING);
    for (const subscription of [...this.local.values()]) subscription.fail(closing);
    this.local.clear();
  }

  private async read(sid: string, from: number, count: number): Promise<{ sequence: number; event: SubscribeResponse }[]> {
    const entries = (await this.redis.xrangeBuffer(`${this.prefix}mbox:${sid}`, `${from}-0`, "+", "COUNT", count)) as [Buffer, Buffer[]][];
    return entries.map(([id, fields]) => {
      const sequence = Number(id.toString().split("-")[0]);
      return { sequence, event: decode(sequence, Number(fields[3]!.toString()), fields[1]!) };
    });
  }

  /**
   * Acks wait up to ACK_DELAY_MS, so that one script covers all the events handed out meanwhile
   * (one per message would cost Redis and this instance a script each). Every other command of
   * this instance sends the waiting ones first (see call()), so Redis sees them before a send or
   * a registration that needs the room they free, as if they had gone at once. `acked(sid)`
   * resolves when none is pending for that session.
   */
  private ack(sid: string, epoch: number, sequence: number): void {
    let state = this.acks.get(sid);
    if (!state) {
      state = { latest: undefined, timer: undefined, sent: Promise.resolve() };
      this.acks.set(sid, state);
    }
    state.latest = { epoch, sequence };
    if (state.timer) return;
    state.timer = setTimeout(() => this.sendAck(sid), ACK_DELAY_MS);
    state.timer.unref();
    this.waitingAcks.add(sid);
  }

  private sendAck(sid: string): void {
    const state = this.acks.get(sid);
    this.waitingAcks.delete(sid);
    if (!state?.latest) return;
    clearTimeout(state.timer);
    state.timer = undefined;
    const { epoch, sequence } = state.latest;
    state.latest = undefined;
    if (this.closed) return;
    const sent: Promise<void> = this.redis.icAck(this.prefix, sid, epoch, sequence, this.limits.retainEvents).then(
      () => {},
      () => {},
    );
    state.sent = sent;
    void sent.then(() => {
      if (this.acks.get(sid) === state && state.sent === sent && !state.latest) this.acks.delete(sid);
    });
  }

  private sendWaitingAcks(): void {
    for (const sid of this.waitingAcks) this.sendAck(sid);
  }

  private acked(sid: string): Promise<void> {
    this.sendAck(sid);
    return this.acks.get(sid)?.sent ?? Promise.resolve();
  }

  private readonly acks = new Map<string, AckState>();
  /** Sessions whose ack waits for its timer. */
  private readonly waitingAcks = new Set<string>();

  private ended(sid: string, subscription: RedisSubscription, released: boolean): void {
    if (this.local.get(sid) !== subscription) return;
    this.local.delete(sid);
    // Before the release: the next stream, here or elsewhere, starts after what this one handed out.
    this.sendAck(sid);
    void this.subscriber.unsubscribe(this.channelOf(sid)).catch(() => {});
    if (!released || this.closed) return;
    const deadline = Date.now() + this.limits.sessionGraceMs;
    this.released.set(sid, subscription.epoch);
    this.redis
      .icRelease(this.prefix, sid, this.instanceId, subscription.epoch, deadline)
      .then(() => this.liveness.expiryAt(deadline))
      .then(() => setTimeout(() => this.released.delete(sid), this.limits.sessionGraceMs).unref())
      .catch(() => {});
  }

  private onChannel(channel: Buffer, message: Buffer): void {
    const sid = channel.subarray(this.prefix.length + 3).toString();
    const subscription = this.local.get(sid);
    if (!subscription) return;
    const kind = String.fromCharCode(message[0]!);
    if (kind === "E") {
      const firstColon = message.indexOf(58, 1);
      const secondColon = message.indexOf(58, firstColon + 1);
      const sequence = Number(message.subarray(1, firstColon).toString());
      const millis = Number(message.subarray(firstColon + 1, secondColon).toString());
      subscription.push(sequence, decode(sequence, millis, message.subarray(secondColon + 1)));
    } else if (kind === "R") {
      if (this.opening.has(sid)) return;
      if (Number(message.subarray(1).toString()) > subscription.epoch) subscription.fail(replaced(subscription.peerId));
    } else if (kind === "X") {
      this.forget(sid);
      subscription.gone();
    }
  }

  private remember(token: string, peer: PeerRecord): void {
    if (this.sessions.size >= TOKEN_CACHE) {
      const [oldest, record] = this.sessions.entries().next().value!;
      this.sessions.delete(oldest);
      this.tokens.delete(record.sessionId);
    }
    this.sessions.set(token, peer);
    this.tokens.set(peer.sessionId, token);
  }

  private forget(sid: string): void {
    const token = this.tokens.get(sid);
    if (token === undefined) return;
    this.tokens.delete(sid);
    this.sessions.delete(token);
  }

  private channelOf(sid: string): string {
    return `${this.prefix}ch:${sid}`;
  }

  /** Runs a broker call: UNAVAILABLE after close() or while Redis is away. */
  private async call<T>(run: () => Promise<T>): Promise<T> {
    if (this.closed) throw unavailable(CLOSING);
    this.sendWaitingAcks();
    try {
      return await run();
    } catch (err) {
      throw fromRedisError(this.url, err);
    }
  }

  /** A budget refusal from a script, in the in-memory broker's words. */
  private refused([limit, ...details]: readonly unknown[], refuse: string, room: string, address: string): SignalingError {
    const { limits } = this;
    switch (limit) {
      case "peersPerRoom":
        return resourceExhausted(`Room "${room}" is full: ${describeLimit("peersPerRoom", limits.peersPerRoom)} peers`);
      case "registrationsPerAddress":
        return resourceExhausted(
          `Too many registrations from ${address}: ${describeLimit("registrationsPerAddress", limits.registrationsPerAddress)}; leave rooms you no longer use`,
        );
      case "registrations":
        return resourceExhausted(`The server holds as many registrations as it allows: ${describeLimit("registrations", limits.registrations)}; try again later`);
      case "roomEvents":
        return resourceExhausted(`${refuse}: a peer there has not read its room events (${describeLimit("roomEvents", limits.roomEvents)}); try again later`);
      case "totalBytes":
        return resourceExhausted(`${refuse}: the server holds ${details[0]} bytes of undelivered events (${describeLimit("totalBytes", limits.totalBytes)}); try again later`);
      case "peerEvents":
      case "peerBytes":
        return resourceExhausted(
          `${refuse}: its queue holds ${details[0]} undelivered events of ${details[1]} bytes (${describeLimit(limit, limits[limit])}); it is not reading its Subscribe stream`,
        );
      default:
        throw new Error(`Unexpected reply from the broker's Redis script: ${String(limit)}`);
    }
  }

  /** For logs: where this broker keeps its state. */
  describe(): string {
    return `redis ${redact(this.url)} prefix "${this.prefix}" instance ${this.instanceId}`;
  }
}

function replaced(peerId: string): SignalingError {
  return aborted(`Subscription replaced by a newer Subscribe for peer "${peerId}"`);
}

function toRecord(room: string, [sid, peerId, client, joined]: Member): PeerRecord {
  return { room, peerId, client: JSON.parse(client) as ClientInfo, joinedAt: new Date(Number(joined)), sessionId: sid };
}


function decode(sequence: number, millis: number, payload: Buffer): SubscribeResponse {
  const { event } = SubscribeResponse.decode(payload);
  return withEncodedEvent({ sequence: BigInt(sequence), serverTime: toTimestamp(new Date(millis)), event }, payload);
}

function freshPeerId(): string {
  let suffix = "";
  for (let i = 0; i < 6; i++) suffix += PEER_ID_ALPHABET[randomInt(PEER_ID_ALPHABET.length)];
  return `peer-${suffix}`;
}
