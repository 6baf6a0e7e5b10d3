// Each event is encoded once. The brokers need its bytes anyway (the byte budgets count them, Redis
// carries them), so a response may hold its event's encoding, and the Subscribe stream's
// serializer writes the sequence and time in front of those bytes instead of encoding the whole
// event again for each write. Protobuf fields may come in any order, so this is the same message.
import { SignalingServiceService, SubscribeResponse } from "../gen/icetest/signaling/v1/signaling.ts";

export type ResponseEvent = NonNullable<SubscribeResponse["event"]>;

const encodings = new WeakMap<SubscribeResponse, Uint8Array>();

/** The `event` field of a SubscribeResponse, encoded. */
export function encodeEvent(event: ResponseEvent): Uint8Array {
  return SubscribeResponse.encode({ sequence: 0n, event }).finish();
}

/** `response`, marked as having `encoded` (from encodeEvent) for its event. */
export function withEncodedEvent(response: SubscribeResponse, encoded: Uint8Array): SubscribeResponse {
  encodings.set(response, encoded);
  return response;
}

/** The service definition with a Subscribe serializer that uses events' encodings. */
export function withEncodedEvents(service: typeof SignalingServiceService): typeof SignalingServiceService {
  return { ...service, subscribe: { ...service.subscribe, responseSerialize: serializeResponse } };
}

function serializeResponse(response: SubscribeResponse): Buffer {
  const encoded = encodings.get(response);
  const bytes = encoded
    ? SubscribeResponse.encode({ sequence: response.sequence, serverTime: response.serverTime }).raw(encoded).finish()
    : SubscribeResponse.encode(response).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
