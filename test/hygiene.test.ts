// Input hygiene: invalid UTF-8 in any string field is INVALID_ARGUMENT naming the field (the
// generated decoder would have replaced it silently), and peers print no control character that
// came from elsewhere.
import { credentials, Client, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import t from "tap";
import { RegisterRequest, SendMessageRequest } from "../gen/icetest/signaling/v1/signaling.ts";
import { Report } from "../core/report.ts";
import { escapeJsonControls, sanitize } from "../core/sanitize.ts";
import { invalidField } from "../server/utf8.ts";
import { uniqueRoom } from "./fixtures/peers.ts";
import { startTestServer } from "./fixtures/server.ts";

const BAD = "\u{10FFFF}";
/** Encodes with a marker string, then swaps the marker's bytes for bytes that are not UTF-8. */
function withInvalidUtf8(encoded: Uint8Array): Buffer {
  const bytes = Buffer.from(encoded);
  const marker = Buffer.from(BAD, "utf8");
  const at = bytes.indexOf(marker);
  if (at < 0) throw new Error("marker not found");
  bytes.set([0xc3, 0x28, 0xa0, 0xa1], at);
  return bytes;
}

t.test("invalid UTF-8 in a string field is INVALID_ARGUMENT naming the field", async (t) => {
  const server = await startTestServer(t);
  const raw = new Client(server.address, credentials.createInsecure());
  t.teardown(() => raw.close());
  const call = (method: string, bytes: Buffer) =>
    new Promise<ServiceError | null>((resolve) =>
      raw.makeUnaryRequest(`/icetest.signaling.v1.SignalingService/${method}`, (b: Buffer) => b, (b: Buffer) => b, bytes, new Metadata(), (err) => resolve(err)),
    );
  const cases: [string, string, Buffer][] = [
    ["Register", "room", withInvalidUtf8(RegisterRequest.encode({ room: BAD, peerId: "", client: undefined }).finish())],
    ["Register", "client.runtime", withInvalidUtf8(RegisterRequest.encode({ room: "lab", peerId: "", client: { name: "x", version: "1", runtime: BAD } }).finish())],
    ["SendMessage", "signal.text", withInvalidUtf8(SendMessageRequest.encode({ sessionToken: "t", toPeerId: "bob", signal: { kind: { $case: "text", value: `hi ${BAD}` } } }).finish())],
    ["SendMessage", "signal.candidate.sdp_mid", withInvalidUtf8(SendMessageRequest.encode({ sessionToken: "t", toPeerId: "bob", signal: { kind: { $case: "candidate", value: { candidate: "candidate:1", sdpMid: BAD } } } }).finish())],
    ["SendMessage", "signal.bye.reason", withInvalidUtf8(SendMessageRequest.encode({ sessionToken: "t", toPeerId: "bob", signal: { kind: { $case: "bye", value: { reason: BAD } } } }).finish())],
  ];
  for (const [method, field, bytes] of cases) {
    const err = await call(method, bytes);
    t.equal(err?.code, status.INVALID_ARGUMENT, `${method} with bad ${field}: INVALID_ARGUMENT`);
    t.equal(err?.details, `Invalid ${field}: it is not valid UTF-8`, `the message names ${field}`);
  }
  const garbage = await call("Register", Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]));
  t.equal(garbage?.code, status.INVALID_ARGUMENT, "bytes that are not protobuf: INVALID_ARGUMENT, not INTERNAL");
  const valid = await call("Register", Buffer.from(RegisterRequest.encode({ room: uniqueRoom(), peerId: "ünïcødé-is-not-an-id", client: { name: "ok ✓", version: "1", runtime: "r" } }).finish()));
  t.equal(valid?.code, status.INVALID_ARGUMENT, "valid UTF-8 passes the check and reaches validation");
  t.match(valid?.details, /Invalid peer_id/, "which judges the value, not its encoding");
  t.equal(invalidField(Buffer.from(RegisterRequest.encode({ room: "lab", peerId: "", client: { name: "✓", version: "", runtime: "" } }).finish()), { 1: "room", 3: ["client", { 1: "name" }] }), undefined, "multi-byte UTF-8 is valid");
});

t.test("control characters from elsewhere are shown as escapes, in text and in JSON", async (t) => {
  t.equal(sanitize("hi\x1b[2J\x07 there\r\nforged line"), "hi\\x1b[2J\\x07 there\\x0d\\x0aforged line", "C0 controls, ESC and newlines become visible escapes");
  t.equal(sanitize("a\u009bb\u202ec"), "a\\x9bb\\u202ec", "C1 controls and bidi overrides too");
  t.equal(sanitize("plain ✓ ünïcødé"), "plain ✓ ünïcødé", "printable text passes unchanged");
  const lines: string[] = [];
  new Report((line) => lines.push(line), false).step("text-received", "text from bob: \x1b]0;pwned\x07hello", {});
  t.notMatch(lines[0], /\x1b|\x07/, "a report line never carries the raw escape sequence");
  t.match(lines[0], /text from bob: \\x1b\]0;pwned\\x07hello/, "it shows it escaped");
  const json: string[] = [];
  new Report((line) => json.push(line), true).step("text-received", "", { text: "x\u009by\x1bz" });
  t.notMatch(json[0], /[\u0000-\u001f\u007f-\u009f]/, "a JSON line holds no raw control character");
  t.equal((JSON.parse(json[0]!) as { text: string }).text, "x\u009by\x1bz", "and still parses to the exact value");
  t.equal(escapeJsonControls('"\u2066"'), '"\\u2066"', "bidi isolates are escaped in JSON");
});
