// Invalid UTF-8 in a string field is INVALID_ARGUMENT naming the field, and so is a request that
// is not protobuf at all. The generated decoders replace bad bytes with U+FFFD without a word, and
// a decoder that throws becomes INTERNAL in grpc-js, so the request is checked on its raw bytes by
// a deserializer of ours, which marks the decoded request; the handler then refuses it (checkUtf8).
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { isAscii } from "node:buffer";
import { SignalingServiceService } from "../gen/icetest/signaling/v1/signaling.ts";
import { invalidArgument } from "./errors.ts";

/** Field number → a string field's name, or a nested message's name and fields. */
type Schema = { readonly [field: number]: string | readonly [string, Schema] };

const CLIENT_INFO: Schema = { 1: "name", 2: "version", 3: "runtime" };
const SIGNAL: Schema = {
  1: ["description", { 2: "sdp" }],
  2: ["candidate", { 1: "candidate", 2: "sdp_mid", 4: "username_fragment" }],
  3: ["end_of_candidates", { 1: "username_fragment" }],
  4: ["bye", { 1: "reason" }],
  5: "text",
};
const REQUESTS: Record<keyof typeof SignalingServiceService, Schema> = {
  register: { 1: "room", 2: "peer_id", 3: ["client", CLIENT_INFO] },
  sendMessage: { 1: "session_token", 2: "to_peer_id", 3: ["signal", SIGNAL] },
  subscribe: { 1: "session_token" },
  leave: { 1: "session_token" },
};

const INVALID_REQUEST = Symbol("why the request is invalid");
const strict = new TextDecoder("utf-8", { fatal: true });

/** The service definition with deserializers that mark requests holding invalid UTF-8. */
export function withUtf8Check(): typeof SignalingServiceService {
  const checked = { ...SignalingServiceService } as Record<string, unknown>;
  for (const [method, definition] of Object.entries(SignalingServiceService)) {
    const schema = REQUESTS[method as keyof typeof SignalingServiceService];
    const decode = definition.requestDeserialize as (value: Buffer) => object;
    checked[method] = {
      ...definition,
      requestDeserialize: (value: Buffer) => {
        let request: object;
        try {
          request = decode(value);
        } catch (err) {
          return marked({}, `Malformed request: it is not a valid ${method} message (${(err as Error).message})`);
        }
        // Nearly every request is ASCII through and through (tokens, ids, SDP, candidates): then
        // no string in it can be invalid, and the walk through its fields is not needed.
        if (isAscii(value)) return request;
        const field = invalidField(value, schema);
        return field ? marked(request, `Invalid ${field}: it is not valid UTF-8`) : request;
      },
    };
  }
  return checked as typeof SignalingServiceService;
}

/** Throws INVALID_ARGUMENT when the request was marked by the deserializer. */
export function checkUtf8(request: unknown): void {
  if (typeof request !== "object" || request === null) return;
  const problem = (request as { [INVALID_REQUEST]?: string })[INVALID_REQUEST];
  if (problem) throw invalidArgument(problem);
}

function marked(request: object, problem: string): object {
  return Object.defineProperty(request, INVALID_REQUEST, { value: problem });
}

/** The dotted name of the first string field that is not valid UTF-8, if any. */
export function invalidField(bytes: Uint8Array, schema: Schema, prefix = ""): string | undefined {
  try {
    const reader = new BinaryReader(bytes);
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      const known = schema[field];
      if (known === undefined || wireType !== WireType.LengthDelimited) {
        reader.skip(wireType, field);
        continue;
      }
      const value = reader.bytes();
      const found = typeof known === "string" ? utf8Error(value, prefix + known) : invalidField(value, known[1], `${prefix}${known[0]}.`);
      if (found) return found;
    }
  } catch {
    // A malformed message is the decoder's to refuse; it already has.
  }
  return undefined;
}

function utf8Error(value: Uint8Array, name: string): string | undefined {
  try {
    strict.decode(value);
    return undefined;
  } catch {
    return name;
  }
}
