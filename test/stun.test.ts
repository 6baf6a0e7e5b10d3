// The STUN responder over real UDP: Binding requests encoded with werift's codec get the sender's
// address back; junk is ignored and the responder keeps answering.
import dgram from "node:dgram";
import { once } from "node:events";
import t from "tap";
import { classes, Message, methods, parseMessage } from "werift";
import { answer, startStunResponder } from "../server/stun.ts";
import { startTestServer, type Teardown } from "./fixtures/server.ts";

const DEADLINE_MS = 2_000;

async function clientSocket(t: Teardown, type: dgram.SocketType = "udp4"): Promise<dgram.Socket> {
  const socket = dgram.createSocket(type);
  t.teardown(() => socket.close());
  socket.bind(0, type === "udp4" ? "127.0.0.1" : "::1");
  await once(socket, "listening");
  return socket;
}

/** Sends `datagrams` in order and returns the first reply, which must come within the deadline. */
async function firstReply(socket: dgram.Socket, port: number, host: string, ...datagrams: Buffer[]): Promise<Message> {
  const reply = once(socket, "message", { signal: AbortSignal.timeout(DEADLINE_MS) });
  for (const datagram of datagrams) socket.send(datagram, port, host);
  const [data] = (await reply) as [Buffer];
  const message = parseMessage(data);
  if (!message) throw new Error("the reply is not a valid STUN message");
  return message;
}

function bindingRequest(): Message {
  return new Message(methods.BINDING, classes.REQUEST).addFingerprint();
}

t.test("a Binding request gets XOR-MAPPED-ADDRESS equal to the client's address and port", async (t) => {
  const server = await startTestServer(t);
  const socket = await clientSocket(t);
  const request = bindingRequest();
  const response = await firstReply(socket, server.stunPort!, "127.0.0.1", request.bytes);
  t.equal(response.messageClass, classes.RESPONSE, "a success response");
  t.equal(response.messageMethod, methods.BINDING, "to Binding");
  t.equal(response.transactionIdHex, request.transactionIdHex, "with the request's transaction id");
  t.same(response.getAttributeValue("XOR-MAPPED-ADDRESS"), ["127.0.0.1", socket.address().port], "carrying the client's own address and port");
  t.ok(response.getAttributeValue("FINGERPRINT") !== undefined, "and a FINGERPRINT (parseMessage verified it)");
});

t.test("junk is ignored without a reply, and the responder keeps answering", async (t) => {
  const responder = await startStunResponder({ host: "127.0.0.1", port: 0 });
  t.teardown(() => responder.close());
  const socket = await clientSocket(t);
  const valid = bindingRequest();
  const truncated = valid.bytes.subarray(0, 19);
  const badLength = Buffer.from(valid.bytes);
  badLength.writeUInt16BE(400, 2); // says 400 bytes of attributes follow; they do not
  const badFingerprint = Buffer.from(valid.bytes);
  badFingerprint[badFingerprint.length - 1]! ^= 0xff;
  const indication = new Message(methods.BINDING, classes.INDICATION).bytes;
  const response = new Message(methods.BINDING, classes.RESPONSE).bytes;
  const junk = [Buffer.from("hello, not STUN"), Buffer.alloc(0), truncated, badLength, badFingerprint, indication, response];
  // Replies come back in order: if any junk were answered, its reply would come first.
  const reply = await firstReply(socket, responder.port, "127.0.0.1", ...junk, valid.bytes);
  t.equal(reply.transactionIdHex, valid.transactionIdHex, "the first reply answers the valid request: all junk was dropped");
  t.equal(reply.messageClass, classes.RESPONSE, "and it is a success");
});

t.test("requests it cannot honour get the RFC's error responses", async (t) => {
  const responder = await startStunResponder({ host: "127.0.0.1", port: 0 });
  t.teardown(() => responder.close());
  const socket = await clientSocket(t);

  const allocate = new Message(methods.ALLOCATE, classes.REQUEST);
  const refused = await firstReply(socket, responder.port, "127.0.0.1", allocate.bytes);
  t.equal(refused.messageClass, classes.ERROR, "a TURN Allocate gets an error response");
  t.equal(refused.getAttributeValue("ERROR-CODE")?.[0], 400, "400 Bad Request: this is not a TURN server");

  const unknown = bindingRequest().appendRawAttribute(0x7ff1, Buffer.from([1, 2, 3, 4]));
  const rejected = await firstReply(socket, responder.port, "127.0.0.1", unknown.bytes);
  t.equal(rejected.getAttributeValue("ERROR-CODE")?.[0], 420, "an unknown comprehension-required attribute gets 420");
  t.same(rejected.getAttributeValue("UNKNOWN-ATTRIBUTES"), [0x7ff1], "naming the attribute");

  const optional = bindingRequest().appendRawAttribute(0xc0de, Buffer.from("ok"));
  const accepted = await firstReply(socket, responder.port, "127.0.0.1", optional.bytes);
  t.equal(accepted.messageClass, classes.RESPONSE, "an unknown comprehension-optional attribute is ignored");
});

t.test("IPv6: a responder on ::1 answers with the IPv6 address", async (t) => {
  const responder = await startStunResponder({ host: "::1", port: 0 });
  t.teardown(() => responder.close());
  const socket = await clientSocket(t, "udp6");
  const reply = await firstReply(socket, responder.port, "::1", bindingRequest().bytes);
  t.same(reply.getAttributeValue("XOR-MAPPED-ADDRESS"), ["::1", socket.address().port], "XOR-MAPPED-ADDRESS is the IPv6 source");
});

t.test("a responder on 0.0.0.0 also answers IPv6 on the same port", async (t) => {
  const responder = await startStunResponder({ host: "0.0.0.0", port: 0 });
  t.teardown(() => responder.close());
  const v4 = await firstReply(await clientSocket(t), responder.port, "127.0.0.1", bindingRequest().bytes);
  t.equal(v4.messageClass, classes.RESPONSE, "IPv4 is answered");
  const socket6 = await clientSocket(t, "udp6");
  const v6 = await firstReply(socket6, responder.port, "::1", bindingRequest().bytes);
  t.same(v6.getAttributeValue("XOR-MAPPED-ADDRESS"), ["::1", socket6.address().port], "IPv6 is answered on the same port");
});

t.test("an IPv4 client seen through a dual-stack socket gets its IPv4 address", async (t) => {
  const request = bindingRequest();
  const reply = parseMessage(answer(request.bytes, { address: "::ffff:192.0.2.7", port: 4242 })!);
  t.same(reply?.getAttributeValue("XOR-MAPPED-ADDRESS"), ["192.0.2.7", 4242], "the ::ffff: mapping is removed");
});
