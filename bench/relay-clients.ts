// The clients that drive a relay (ours or the minimal one: same protocol) and the echo baseline,
// each on its own HTTP/2 connection as two peers on two machines would be.
import * as grpc from "@grpc/grpc-js";
import {
  SendMessageRequest,
  SignalingServiceClient,
  type Signal,
  type SubscribeResponse,
} from "../gen/icetest/signaling/v1/signaling.ts";
import { ECHO_PATH } from "./minimal-servers.ts";

/** What werift trickles on loopback, with the fields a browser adds. */
export const CANDIDATE_SIGNAL: Signal = {
  kind: {
    $case: "candidate",
    value: {
      candidate: "candidate:3376104430 1 udp 2130706431 127.0.0.1 51234 typ host generation 0 ufrag 8hXk network-cost 999",
      sdpMid: "0",
      sdpMLineIndex: 0,
      usernameFragment: "8hXk",
    },
  },
};

/** A session token as our server makes them: 32 random bytes, base64url. */
const TOKEN_LIKE = "x".repeat(43);

/** A client with a connection of its own (grpc-js shares connections between equal clients). */
const OWN_CONNECTION: grpc.ClientOptions = { "grpc.use_local_subchannel_pool": 1 };

export function signalingClient(address: string): SignalingServiceClient {
  return new SignalingServiceClient(address, grpc.credentials.createInsecure(), OWN_CONNECTION);
}

export interface RelayPair {
  /** Sends one candidate from A to B; resolves with ms from the call until B's stream yielded it, once A has its answer too. */
  relay(): Promise<number>;
  /** Sends one candidate; resolves when A has its answer (B's arrival is counted, not awaited). */
  send(): Promise<void>;
  /** Resolves when B has received `count` messages in all. */
  arrived(count: number): Promise<void>;
  close(): void;
}

/** Registers A and B in `room` (B on `addressB`, another instance, if given), opens both Subscribe streams and waits until they are open. */
export async function openPair(address: string, room: string, addressB = address): Promise<RelayPair> {
  const a = signalingClient(address);
  const b = signalingClient(addressB);
  const bob = await call<{ sessionToken: string; peerId: string }>((cb) => b.register({ room, peerId: "bob", client: undefined }, cb));
  const alice = await call<{ sessionToken: string }>((cb) => a.register({ room, peerId: "alice", client: undefined }, cb));
  const streams = [a.subscribe({ sessionToken: alice.sessionToken }), b.subscribe({ sessionToken: bob.sessionToken })];
  await Promise.all(streams.map(opened));
  let received = 0;
  let waiter: { count: number; resolve: () => void } | undefined;
  streams[1]!.on("data", (event: SubscribeResponse) => {
    if (event.event?.$case !== "message") return;
    received++;
    if (waiter && received >= waiter.count) {
      const { resolve } = waiter;
      waiter = undefined;
      resolve();
    }
  });
  const arrived = (count: number) =>
    received >= count ? Promise.resolve() : new Promise<void>((resolve) => (waiter = { count, resolve }));
  const request = { sessionToken: alice.sessionToken, toPeerId: bob.peerId, signal: CANDIDATE_SIGNAL };
  const send = () => call<unknown>((cb) => a.sendMessage(request, cb)).then(() => undefined);
  return {
    send,
    arrived,
    async relay() {
      const start = performance.now();
      const arrival = arrived(received + 1).then(() => performance.now() - start);
      const [latency] = await Promise.all([arrival, send()]);
      return latency;
    },
    close() {
      for (const stream of streams) {
        stream.on("error", () => {}); // CANCELLED, which is what we asked for
        stream.cancel();
      }
      a.close();
      b.close();
    },
  };
}

/** Resolves when the stream yields its first event (`subscribed`). */
export function opened(stream: grpc.ClientReadableStream<SubscribeResponse>): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.once("data", () => resolve());
    stream.once("error", reject);
  });
}

export interface EchoClient {
  /** One unary echo of a SendMessage-sized payload; resolves with its round trip in ms. */
  echo(): Promise<number>;
  close(): void;
}

export function echoClient(address: string): EchoClient {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), OWN_CONNECTION);
  // The same bytes SendMessage carries, so both move the same payload.
  const payload = Buffer.from(SendMessageRequest.encode({ sessionToken: TOKEN_LIKE, toPeerId: "bob", signal: CANDIDATE_SIGNAL }).finish());
  const identity = (bytes: Buffer) => bytes;
  return {
    echo() {
      const start = performance.now();
      return call<Buffer>((cb) => client.makeUnaryRequest(ECHO_PATH, identity, identity, payload, cb)).then(() => performance.now() - start);
    },
    close: () => client.close(),
  };
}

function call<T>(start: (callback: (err: grpc.ServiceError | null, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => start((err, value) => (err ? reject(err) : resolve(value as T))));
}

/** Runs `op` `count` times with at most `window` in flight. */
export async function pipeline(count: number, window: number, op: () => Promise<unknown>): Promise<void> {
  let started = 0;
  const lane = async () => {
    while (started < count) {
      started++;
      await op();
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, count) }, lane));
}
