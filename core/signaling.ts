// The peer's side of the signaling contract: register, one Subscribe stream, ordered sends, leave.
// Every gRPC failure becomes one PeerFailure("signaling") with a sentence a person can act on.
import { Metadata, status, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import {
  SignalingServiceClient,
  type ClientInfo,
  type RegisterResponse,
  type Signal,
  type SubscribeResponse,
} from "../gen/icetest/signaling/v1/signaling.ts";
import { PeerFailure } from "./failure.ts";
import type { SignalingTarget } from "./options.ts";
import { explainConnectionFailure, isConnectionFailure, rpcFailure } from "./signaling-errors.ts";
import { channelSecurity } from "./signaling-tls.ts";

const CALL_DEADLINE_MS = 10_000;

export interface SignalingConnection {
  readonly target: SignalingTarget;
  /** PEM of the CA to trust instead of the system's. */
  readonly ca?: string;
  readonly tlsServerName?: string;
}

export class SignalingChannel {
  private readonly client: SignalingServiceClient;
  private readonly target: SignalingTarget;
  private readonly connection: SignalingConnection;
  private token = "";
  private stream: ClientReadableStream<SubscribeResponse> | undefined;
  /** Sends go out one at a time so the recipient sees them in the order we made them. */
  private sendChain: Promise<unknown> = Promise.resolve();

  constructor(connection: SignalingConnection) {
    this.target = connection.target;
    this.connection = connection;
    const security = channelSecurity(connection.target, connection);
    const options: Record<string, string | number> = {
      "grpc.keepalive_time_ms": 20_000,
      "grpc.keepalive_timeout_ms": 10_000,
      ...security.options,
    };
    this.client = new SignalingServiceClient(connection.target.address, security.credentials, options);
  }

  async register(room: string, peerId: string | undefined, client: ClientInfo): Promise<RegisterResponse> {
    const response = await this.unary<RegisterResponse>("Register", (callback) =>
      this.client.register({ room, peerId: peerId ?? "", client }, new Metadata(), { deadline: deadline() }, callback),
    ).catch(async (failure: PeerFailure) => {
      // The first call is where a wrong address, scheme or certificate shows: find out which.
      const err = failure.cause as ServiceError;
      throw isConnectionFailure(err) ? await explainConnectionFailure(this.target, this.connection, err) : failure;
    });
    this.token = response.sessionToken;
    return response;
  }

  /**
   * Opens the stream. `onEvent` sees every event in order; `onEnd` is told once, with a failure
   * unless the stream was closed by us.
   */
  subscribe(onEvent: (event: SubscribeResponse) => void, onEnd: (failure?: PeerFailure) => void): void {
    const stream = this.client.subscribe({ sessionToken: this.token });
    this.stream = stream;
    let ended = false;
    const end = (failure?: PeerFailure) => {
      if (ended) return;
      ended = true;
      onEnd(failure);
    };
    stream.on("data", onEvent);
    stream.on("error", (err: ServiceError) => {
      end(err.code === status.CANCELLED && this.stream === undefined ? undefined : this.failure("Subscribe", err));
    });
    stream.on("end", () => end(this.stream === undefined ? undefined : this.closedByServer()));
  }

  /** Queues one signal; the returned promise settles when the server has accepted it. */
  send(toPeerId: string, signal: Signal): Promise<void> {
    const sent = this.sendChain.then(() =>
      this.unary<unknown>("SendMessage", (callback) =>
        this.client.sendMessage({ sessionToken: this.token, toPeerId, signal }, new Metadata(), { deadline: deadline() }, callback),
      ),
    );
    this.sendChain = sent.catch(() => undefined);
    return sent.then(() => undefined);
  }

  /** Leaves the room and closes everything; never throws, since it runs on the way out. */
  async close(): Promise<void> {
    await this.sendChain;
    const stream = this.stream;
    this.stream = undefined;
    stream?.cancel();
    if (this.token) {
      await this.unary("Leave", (callback) =>
        this.client.leave({ sessionToken: this.token }, new Metadata(), { deadline: Date.now() + 2000 }, callback),
      ).catch(() => undefined);
    }
    this.client.close();
  }

  private unary<T>(method: string, call: (callback: (err: ServiceError | null, value?: T) => void) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      call((err, value) => (err ? reject(this.failure(method, err)) : resolve(value as T)));
    });
  }

  private closedByServer(): PeerFailure {
    return new PeerFailure("signaling", "signaling-closed", `Signaling server ${this.target.url} closed the Subscribe stream`);
  }

  private failure(method: string, err: ServiceError): PeerFailure {
    return rpcFailure(this.target, method, err);
  }
}

function deadline(): number {
  return Date.now() + CALL_DEADLINE_MS;
}
