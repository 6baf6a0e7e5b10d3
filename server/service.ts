// The gRPC handlers of SignalingService: decode (grpc-js did), validate, call the broker, and map
// any failure to a status in one place (toServiceError). Each handler answers exactly once.
import type { handleUnaryCall, Metadata, ServerErrorResponse, ServerUnaryCall } from "@grpc/grpc-js";
import {
  SdpType,
  type ClientInfo,
  type IceServer,
  type LeaveRequest,
  type LeaveResponse,
  type RegisterRequest,
  type RegisterResponse,
  type SendMessageRequest,
  type SendMessageResponse,
  type Signal,
  type SignalingServiceServer,
  type SubscribeResponse,
} from "../gen/icetest/signaling/v1/signaling.ts";
import { Access } from "./auth.ts";
import { toPeerInfo, type Broker, type PeerRecord, type Subscription } from "./broker.ts";
import { toServiceError, unavailable } from "./errors.ts";
import { logLine, type Log, type LogFields } from "./log.ts";
import { SubscribeStream, type StreamTiming, type SubscribeCall } from "./subscribe-stream.ts";
import { toTimestamp } from "./timestamp.ts";
import { checkUtf8 } from "./utf8.ts";
import { requireToken, validateRegister, validateSend } from "./validate.ts";

export interface SignalingServiceOptions {
  broker: Broker;
  /** The ICE servers for a peer that dialled `authority` (the call's :authority). */
  iceServers: (authority: string, peer: PeerRecord) => IceServer[];
  log: Log;
  /** API keys and tokens; open when left out. */
  access?: Access;
  /** Heartbeats and stall detection of Subscribe streams; none when left out. */
  timing?: StreamTiming;
}

export class SignalingService {
  private readonly broker: Broker;
  private readonly iceServers: SignalingServiceOptions["iceServers"];
  private readonly log: Log;
  private readonly access: Access;
  private readonly timing: StreamTiming | undefined;
  private readonly streams = new Set<SubscribeStream>();
  private closing = false;

  /** What grpc-js calls; plain functions, since grpc-js calls them without `this`. */
  readonly handlers: SignalingServiceServer = {
    register: this.unary((call) => this.register(call)),
    sendMessage: this.unary((call) => this.sendMessage(call)),
    leave: this.unary((call) => this.leave(call)),
    subscribe: (call) => {
      this.subscribe(call).catch((err: unknown) => this.unexpected(call.getPath(), err));
    },
  };

  constructor(options: SignalingServiceOptions) {
    this.broker = options.broker;
    this.iceServers = options.iceServers;
    this.log = options.log;
    this.access = options.access ?? new Access();
    this.timing = options.timing;
  }

  get openStreams(): number {
    return this.streams.size;
  }

  /** Refuses new calls and ends every open Subscribe stream with UNAVAILABLE. */
  close(): void {
    this.closing = true;
    for (const stream of this.streams) stream.end("shutdown", shuttingDown());
  }

  private async register(call: ServerUnaryCall<RegisterRequest, RegisterResponse>): Promise<RegisterResponse> {
    const { room, peerId, client } = validateRegister(call.request);
    await this.access.checkRoom(call.metadata, room);
    const { peer, token, others } = await this.broker.register(room, peerId, client, { address: clientAddress(call.getPeer()) });
    this.note("register", { room, peer: peer.peerId, client: describeClient(client), from: call.getPeer() });
    return {
      peerId: peer.peerId,
      sessionToken: token,
      iceServers: this.iceServers(call.getHost(), peer),
      peers: others.map(toPeerInfo),
      room,
    };
  }

  private async sendMessage(call: ServerUnaryCall<SendMessageRequest, SendMessageResponse>): Promise<SendMessageResponse> {
    const from = await this.authenticate(call.request.sessionToken);
    const { toPeerId, signal } = validateSend(call.request, from.peerId);
    const { sequence } = await this.broker.send(from, toPeerId, signal);
    this.note("send", { room: from.room, from: from.peerId, to: toPeerId, kind: describeSignal(signal), seq: sequence });
    return { sequence };
  }

  private async leave(call: ServerUnaryCall<LeaveRequest, LeaveResponse>): Promise<LeaveResponse> {
    const peer = await this.authenticate(call.request.sessionToken);
    await this.broker.leave(peer, "left");
    this.note("leave", { room: peer.room, peer: peer.peerId, reason: "left" });
    return {};
  }

  private async subscribe(call: SubscribeCall): Promise<void> {
    const opened = await this.openSubscription(call);
    if (!opened) return;
    const { peer, subscription } = opened;
    const stream = new SubscribeStream(call, subscription, (err) => this.unexpected(call.getPath(), err), this.timing);
    this.streams.add(stream);
    // close() may have run while the broker was answering.
    if (this.closing) stream.end("shutdown", shuttingDown());
    this.note("subscribe", { room: peer.room, peer: peer.peerId, from: call.getPeer() });
    const reason = await stream.run(subscribedEvent(peer, subscription.others));
    this.streams.delete(stream);
    this.note("unsubscribe", { room: peer.room, peer: peer.peerId, reason });
  }

  /** The caller's subscription, or undefined once the call has been failed with the reason. */
  private async openSubscription(call: SubscribeCall): Promise<{ peer: PeerRecord; subscription: Subscription } | undefined> {
    try {
      this.ensureOpen();
      this.checkCall(call);
      const peer = await this.authenticate(call.request.sessionToken);
      return { peer, subscription: await this.broker.subscribe(peer, { resumeAfter: call.request.resumeAfterSequence }) };
    } catch (err) {
      call.emit("error", this.statusOf(call, err));
      return undefined;
    }
  }

  /** Wraps a handler so it answers once: its result, or its failure mapped to a status. */
  private unary<Req, Res>(handle: (call: ServerUnaryCall<Req, Res>) => Promise<Res>): handleUnaryCall<Req, Res> {
    return (call, callback) => {
      const answer = async () => {
        this.ensureOpen();
        this.checkCall(call);
        return handle(call);
      };
      // then(ok, fail) rather than then().catch(fail): a throw inside callback must not call it
      // again; the last catch only keeps such a throw from becoming an unhandled rejection.
      answer()
        .then(
          (response) => callback(null, response),
          (err: unknown) => callback(this.statusOf(call, err)),
        )
        .catch((err: unknown) => this.unexpected(call.getPath(), err));
    };
  }

  /** What every call must pass before its own checks: an API key, well-formed strings. */
  private checkCall(call: { metadata: Metadata; request: unknown }): void {
    this.access.checkApiKey(call.metadata);
    checkUtf8(call.request);
  }

  private statusOf(call: { getPath(): string }, err: unknown): ServerErrorResponse {
    return toServiceError(err, (unexpected) => this.unexpected(call.getPath(), unexpected));
  }

  private authenticate(token: string): Promise<PeerRecord> {
    return this.broker.authenticate(requireToken(token));
  }

  private ensureOpen(): void {
    if (this.closing) throw shuttingDown();
  }

  private note(event: string, fields: LogFields): void {
    this.log(logLine(event, fields));
  }

  private unexpected(method: string, err: unknown): void {
    const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
    this.note("internal-error", { method, error: detail });
  }
}

function shuttingDown() {
  return unavailable("Server is shutting down");
}

function subscribedEvent(peer: PeerRecord, others: readonly PeerRecord[]): SubscribeResponse {
  return {
    sequence: 0n,
    serverTime: toTimestamp(new Date()),
    event: { $case: "subscribed", value: { peerId: peer.peerId, peers: others.map(toPeerInfo) } },
  };
}

/** The IP address of grpc-js's "host:port" or "[v6]:port" peer string. */
export function clientAddress(peer: string): string {
  const match = /^\[(.*)\]:\d+$/.exec(peer) ?? /^(.*):\d+$/.exec(peer);
  return match?.[1] ?? peer;
}

function describeClient(client: ClientInfo): string {
  return [client.name, client.version, client.runtime].filter((part) => part !== "").join(" ");
}

/** The kind of a signal, for the log: never its content. */
function describeSignal(signal: Signal): string {
  const kind = signal.kind;
  if (kind?.$case !== "description") return kind?.$case ?? "none";
  return SdpType[kind.value.type]?.replace("SDP_TYPE_", "").toLowerCase() ?? "description";
}
