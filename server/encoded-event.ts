// How the server encodes what it sends. One BinaryWriter serves the whole process: a writer per
// message allocates a buffer, grows it and slices it, most of an encode's cost. And each event is
// encoded once: the brokers need its bytes anyway (the byte budgets count them, Redis carries
// them), so a response may hold its event's encoding, and the Subscribe stream's serializer writes
// the sequence and time in front of those bytes instead of encoding the whole event again for each
// write. Protobuf fields may come in any order, so this is the same message.
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import {
  LeaveResponse,
  RegisterResponse,
  SendMessageResponse,
  SignalingServiceService,
  SubscribeResponse,
  type MessageFns,
} from "../gen/icetest/signaling/v1/signaling.ts";

export type ResponseEvent = NonNullable<SubscribeResponse["event"]>;

const encodings = new WeakMap<SubscribeResponse, Uint8Array>();
let writer = new BinaryWriter();

/** `message` encoded; the bytes are its own (no view into a shared buffer). */
export function encodeMessage<T>(type: Pick<MessageFns<T>, "encode">, message: T, after?: Uint8Array): Buffer {
  let bytes: Uint8Array;
  try {
    const written = type.encode(message, writer);
    bytes = (after ? written.raw(after) : written).finish();
  } catch (err) {
    // A throw mid-message (a value out of range) leaves the writer half-way: start afresh.
    writer = new BinaryWriter();
    throw err;
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The `event` field of a SubscribeResponse, encoded. */
export function encodeEvent(event: ResponseEvent): Buffer {
  return encodeMessage(SubscribeResponse, { sequence: 0n, event });
}

/** `response`, marked as having `encoded` (from encodeEvent) for its event. */
export function withEncodedEvent(response: SubscribeResponse, encoded: Uint8Array): SubscribeResponse {
  encodings.set(response, encoded);
  return response;
}

/** The service definition with response serializers that use the shared writer and events' encodings. */
export function withFastEncoding(service: typeof SignalingServiceService): typeof SignalingServiceService {
  return {
    register: { ...service.register, responseSerialize: (response: RegisterResponse) => encodeMessage(RegisterResponse, response) },
    sendMessage: { ...service.sendMessage, responseSerialize: (response: SendMessageResponse) => encodeMessage(SendMessageResponse, response) },
    subscribe: { ...service.subscribe, responseSerialize: serializeEvent },
    leave: { ...service.leave, responseSerialize: (response: LeaveResponse) => encodeMessage(LeaveResponse, response) },
  };
}

function serializeEvent(response: SubscribeResponse): Buffer {
  const encoded = encodings.get(response);
  if (!encoded) return encodeMessage(SubscribeResponse, response);
  return encodeMessage(SubscribeResponse, { sequence: response.sequence, serverTime: response.serverTime }, encoded);
}
