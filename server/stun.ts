// A STUN Binding responder (RFC 5389 / 8489) so peers can learn their public address from the
// signaling server itself. The wire format is werift's codec; this file only decides what to answer.
//
// It answers Binding requests with XOR-MAPPED-ADDRESS and FINGERPRINT, refuses other methods and
// unknown comprehension-required attributes with the RFC's error responses, and drops everything
// else (other classes, non-STUN datagrams, malformed or bad-fingerprint messages) silently.
import dgram from "node:dgram";
import { isIP } from "node:net";
import { classes, isComprehensionRequiredAttribute, Message, methods, parseMessage } from "werift";
import { logLine, type Log } from "./log.ts";

export interface StunResponderOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  log?: Log;
}

export interface StunResponder {
  /** The bound UDP port. */
  readonly port: number;
  close(): Promise<void>;
}

/** RFC 5780's CHANGE-REQUEST: werift parses it, but one address cannot honour it. */
const CHANGE_REQUEST = 0x0003;

export async function startStunResponder(options: StunResponderOptions): Promise<StunResponder> {
  const log = options.log ?? (() => {});
  // A "::" socket is dual-stack and serves IPv4 clients too.
  const primary = await bindSocket(socketTypeFor(options.host), options.host, options.port, false, log);
  const port = primary.address().port;
  const sockets = [primary];
  // Listening on every IPv4 address: answer IPv6 clients too when this machine has IPv6.
  if (options.host === "0.0.0.0") {
    const v6 = await bindSocket("udp6", "::", port, true, log).catch(() => undefined);
    if (v6) sockets.push(v6);
  }
  return { port, close: () => closeAll(sockets) };
}

/** The answer to one datagram, or undefined to stay silent. Exported for unit tests. */
export function answer(data: Buffer, from: { address: string; port: number }): Buffer | undefined {
  const request = parseMessage(data);
  if (!request || request.messageClass !== classes.REQUEST) return undefined;
  if (request.messageMethod !== methods.BINDING) {
    return errorResponse(request, 400, "Bad Request: this server answers Binding only").bytes;
  }
  const unknown = unknownAttributes(request);
  if (unknown.length > 0) {
    return errorResponse(request, 420, "Unknown Attribute").setAttribute("UNKNOWN-ATTRIBUTES", unknown).addFingerprint().bytes;
  }
  return new Message(methods.BINDING, classes.RESPONSE, request.transactionId)
    .setAttribute("XOR-MAPPED-ADDRESS", [unmapIPv4(from.address), from.port])
    .addFingerprint().bytes;
}

function errorResponse(request: Message, code: number, reason: string): Message {
  return new Message(request.messageMethod, classes.ERROR, request.transactionId).setAttribute("ERROR-CODE", [code, reason]);
}

function unknownAttributes(request: Message): number[] {
  const unknown = request.unknownAttributeTypes.filter(isComprehensionRequiredAttribute);
  if (request.attributesKeys.includes("CHANGE-REQUEST")) unknown.push(CHANGE_REQUEST);
  return unknown;
}

/** A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d; they expect their IPv4 address. */
function unmapIPv4(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped?.[1] ?? address;
}

function socketTypeFor(host: string): dgram.SocketType {
  return isIP(host) === 6 ? "udp6" : "udp4";
}

function bindSocket(type: dgram.SocketType, host: string, port: number, ipv6Only: boolean, log: Log): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type, ipv6Only });
  return new Promise((resolve, reject) => {
    const onBindError = (err: Error) => {
      socket.close();
      reject(err);
    };
    socket.once("error", onBindError);
    socket.bind(port, host, () => {
      socket.off("error", onBindError);
      socket.on("error", (err) => log(logLine("stun-error", { error: err.message })));
      socket.on("message", (data, from) => respond(socket, data, from, log));
      resolve(socket);
    });
  });
}

function respond(socket: dgram.Socket, data: Buffer, from: dgram.RemoteInfo, log: Log): void {
  let reply: Buffer | undefined;
  try {
    reply = answer(data, from);
  } catch (err) {
    // werift's parser guards its bounds, but a datagram from the internet must never crash us.
    log(logLine("stun-drop", { from: `${from.address}:${from.port}`, error: (err as Error).message }));
    return;
  }
  if (!reply) return;
  socket.send(reply, from.port, from.address, (err) => {
    if (err) log(logLine("stun-error", { to: `${from.address}:${from.port}`, error: err.message }));
  });
}

function closeAll(sockets: dgram.Socket[]): Promise<void> {
  return Promise.all(sockets.map((socket) => new Promise<void>((resolve) => socket.close(() => resolve())))).then(() => {});
}
