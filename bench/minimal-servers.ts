// The baselines: the least a grpc-js server can do for each thing ours does. Same grpc-js, same
// generated codecs, same loopback, same process setup: what remains in a ratio is our own code
// (validation, broker, mailbox, stream pump, logging) plus anything it makes grpc-js do extra.
import * as grpc from "@grpc/grpc-js";
import {
  SignalingServiceService,
  type SignalingServiceServer,
  type SubscribeRequest,
  type SubscribeResponse,
} from "../gen/icetest/signaling/v1/signaling.ts";

export const ECHO_PATH = "/bench.Echo/Echo";

const identity = (bytes: Buffer): Buffer => bytes;

/** One unary method that answers with the request's bytes: no decoding, no encoding. */
export const ECHO_SERVICE: grpc.ServiceDefinition = {
  echo: {
    path: ECHO_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

export const echoHandlers: grpc.UntypedServiceImplementation = {
  echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, call.request),
};

/**
 * SignalingService cut to the bone: the session token is the peer id, Subscribe parks the call in a
 * map, SendMessage looks the recipient up and writes to its stream. No validation, rooms, queue,
 * backpressure or log. Speaks the same protocol as ours, so the same client drives both.
 */
export class MinimalRelay {
  private readonly streams = new Map<string, grpc.ServerWritableStream<SubscribeRequest, SubscribeResponse>>();
  private sequence = 0n;

  readonly handlers: SignalingServiceServer = {
    register: (call, callback) =>
      callback(null, { peerId: call.request.peerId, sessionToken: call.request.peerId, iceServers: [], peers: [], room: call.request.room }),
    subscribe: (call) => {
      const id = call.request.sessionToken;
      this.streams.set(id, call);
      const gone = () => {
        if (this.streams.get(id) === call) this.streams.delete(id);
      };
      call.on("cancelled", gone);
      call.on("error", gone);
      call.write({ sequence: 0n, event: { $case: "subscribed", value: { peerId: id, peers: [] } } });
    },
    sendMessage: (call, callback) => {
      const { sessionToken, toPeerId, signal } = call.request;
      const stream = this.streams.get(toPeerId);
      if (!stream) return callback({ code: grpc.status.NOT_FOUND, details: `No stream for "${toPeerId}"` });
      const sequence = ++this.sequence;
      stream.write({ sequence, event: { $case: "message", value: { fromPeerId: sessionToken, signal } } });
      callback(null, { sequence });
    },
    leave: (_call, callback) => callback(null, {}),
  };

  get openStreams(): number {
    return this.streams.size;
  }

  /** Ends every parked stream, so tryShutdown can finish. */
  close(): void {
    for (const stream of this.streams.values()) stream.end();
    this.streams.clear();
  }
}

export interface MinimalServer {
  readonly port: number;
  shutdown(): Promise<void>;
}

/** A server with both baselines (echo and minimal relay) on 127.0.0.1, on a free port. */
export async function startMinimalServer(): Promise<MinimalServer> {
  const server = new grpc.Server();
  const relay = new MinimalRelay();
  server.addService(ECHO_SERVICE, echoHandlers);
  server.addService(SignalingServiceService, relay.handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  return {
    port,
    shutdown: () =>
      new Promise<void>((resolve) => {
        relay.close();
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2_000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
