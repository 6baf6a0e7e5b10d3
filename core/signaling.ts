// The peer's side of the signaling contract: register, one Subscribe stream, ordered sends, leave.
// Every gRPC failure becomes one PeerFailure("signaling") with a sentence a person can act on.
import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import {
  SignalingServiceClient,
  type ClientInfo,
  type RegisterResponse,
  type Signal,
  type SubscribeResponse,
} from "../gen/icetest/signaling/v1/signaling.ts";
import { PeerFailure } from "./failure.ts";
import type { SignalingTarget } from "./options.ts";
import { ResumableStream, type ResumeHooks } from "./resume.ts";
import { explainConnectionFailure, isConnectionFailure, rpcFailure } from "./signaling-errors.ts";
import { channelSecurity } from "./signaling-tls.ts";

const CALL_DEADLINE_MS = 10_000;

export interface SignalingConnection {
  readonly target: SignalingTarget;
  /** PEM of the CA to trust instead of the system's. */
  readonly ca?: string;
  readonly tlsServerName?: string;
  /** Sent as x-api-key on every call. */
  readonly apiKey?: string;
  /** A JWT sent as "authorization: Bearer" on Register. */
  readonly token?: string;
}

/** What the stream reports besides events: breaks and resumes, for the report. */
export type StreamNotes = Pick<ResumeHooks, "onBreak" | "onResumed">;

export class SignalingChannel {
  /** The instances we may use (one unless --signaling-addr listed several), one client each. */
  private readonly targets: readonly SignalingTarget[];
  private readonly clients: readonly SignalingServiceClient[];
  /** The instance every call goes to; it moves on when that one stops answering. */
  private current = 0;
  private readonly connection: SignalingConnection;
  private token = "";
  private stream: ResumableStream | undefined;
  /** Sends go out one at a time so the recipient sees them in the order we made them. */
  private sendChain: Promise<unknown> = Promise.resolve();

  constructor(connection: SignalingConnection) {
    this.targets = [connection.target, ...(connection.target.failover ?? [])];
    this.connection = connection;
    this.clients = this.targets.map((target) => {
      const security = channelSecurity(target, connection);
      const options: Record<string, string | number> = {
        "grpc.keepalive_time_ms": 20_000,
        "grpc.keepalive_timeout_ms": 10_000,
        ...security.options,
      };
      return new SignalingServiceClient(target.address, security.credentials, options);
    });
  }

  private get target(): SignalingTarget {
    return this.targets[this.current]!;
  }

  private get client(): SignalingServiceClient {
    return this.clients[this.current]!;
  }

  /** Registers on the first instance that answers. */
  async register(room: string, peerId: string | undefined, client: ClientInfo): Promise<RegisterResponse> {
    let first: ServiceError | undefined;
    for (;;) {
      try {
        const response = await this.unary<RegisterResponse>("Register", (callback) =>
          this.client.register({ room, peerId: peerId ?? "", client }, this.metadata(true), { deadline: deadline() }, callback),
        );
        this.token = response.sessionToken;
        return response;
      } catch (failure) {
        const err = (failure as PeerFailure).cause as ServiceError;
        if (!isConnectionFailure(err)) throw failure;
        first ??= err;
        if (this.current + 1 < this.targets.length) {
          this.current++;
          continue;
        }
        // The first call is where a wrong address, scheme or certificate shows: find out which.
        this.current = 0;
        throw await explainConnectionFailure(this.target, this.connection, first);
      }
    }
  }

  /**
   * Opens the stream, resuming it when it breaks (core/resume.ts). `onEvent` sees every event once,
   * in order; `onEnd` is told once, with a failure unless the stream was closed by us.
   */
  subscribe(onEvent: (event: SubscribeResponse) => void, onEnd: (failure?: PeerFailure) => void, notes: StreamNotes = {}): void {
    let on = this.current;
    const stream = new ResumableStream({
      open: (resumeAfter) => {
        on = this.current;
        return this.client.subscribe({ sessionToken: this.token, resumeAfterSequence: resumeAfter }, this.metadata(false));
      },
      onEvent,
      onEnd,
      failure: (err) => this.failure("Subscribe", err),
      closedByServer: () => this.closedByServer(),
      onUnreachable: () => this.moveOn(on),
      ...notes,
    });
    this.stream = stream;
    stream.start();
  }

  /** Queues one signal; the returned promise settles when the server has accepted it. */
  send(toPeerId: string, signal: Signal): Promise<void> {
    const sent = this.sendChain.then(() => this.sendAnywhere(toPeerId, signal));
    this.sendChain = sent.catch(() => undefined);
    return sent.then(() => undefined);
  }

  /**
   * A send that never left (no connection to the instance) is repeated on the next instance; one
   * that may have arrived is not, since it could then be delivered twice.
   */
  private async sendAnywhere(toPeerId: string, signal: Signal): Promise<void> {
    for (let tried = 1; ; tried++) {
      const on = this.current;
      try {
        await this.unary<unknown>("SendMessage", (callback) =>
          this.client.sendMessage({ sessionToken: this.token, toPeerId, signal }, this.metadata(false), { deadline: deadline() }, callback),
        );
        return;
      } catch (failure) {
        if (tried >= this.targets.length || !neverSent((failure as PeerFailure).cause as ServiceError)) throw failure;
        this.moveOn(on);
      }
    }
  }

  /** Leaves the room and closes everything; never throws, since it runs on the way out. */
  async close(): Promise<void> {
    await this.sendChain;
    const stream = this.stream;
    this.stream = undefined;
    stream?.close();
    if (this.token) {
      await this.unary("Leave", (callback) =>
        this.client.leave({ sessionToken: this.token }, this.metadata(false), { deadline: Date.now() + 2000 }, callback),
      ).catch(() => undefined);
    }
    this.clients.forEach((client) => client.close());
  }

  /**
   * The next instance after the one that failed (round robin): sessions are shared, so the token is
   * valid there too. A failure seen late, after another call moved on already, moves nothing.
   */
  private moveOn(failed: number): void {
    if (this.current === failed) this.current = (failed + 1) % this.targets.length;
  }

  /** The API key on every call; the token only where rooms are entered. */
  private metadata(register: boolean): Metadata {
    const metadata = new Metadata();
    if (this.connection.apiKey) metadata.set("x-api-key", this.connection.apiKey);
    if (register && this.connection.token) metadata.set("authorization", `Bearer ${this.connection.token}`);
    return metadata;
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

/** grpc-js's words for a call it failed before sending: no connection to the instance at all. */
function neverSent(err: ServiceError): boolean {
  return err.code === status.UNAVAILABLE && /No connection established/.test(err.details);
}

function deadline(): number {
  return Date.now() + CALL_DEADLINE_MS;
}
