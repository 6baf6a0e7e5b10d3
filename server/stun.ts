// A STUN Binding responder (RFC 5389 / 8489) so peers can learn their public address from the
// signaling server itself. The wire format is werift's codec; this file only decides what to answer.
//
// It answers Binding requests with XOR-MAPPED-ADDRESS and FINGERPRINT, refuses other methods and
// unknown comprehension-required attributes with the RFC's error responses, and drops everything
// else (other classes, non-STUN datagrams, malformed or bad-fingerprint messages) silently.
//
// With an alternate port it answers there too, and honours RFC 5780's CHANGE-REQUEST "change
// port" by answering from the other port: peers compare the addresses both ports see to classify
// their NAT's mapping, and whether the other port's answer gets in tells its filtering.
import dgram from "node:dgram";
import { isIP } from "node:net";
import { classes, isComprehensionRequiredAttribute, Message, methods, parseMessage } from "werift";
import { logLine, type Log } from "./log.ts";

export interface StunResponderOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** A second port answering the same way (0 picks a free one); undefined or null: none. */
  altPort?: number | null;
  log?: Log;
}

export interface StunResponder {
  /** The bound UDP port. */
  readonly port: number;
  /** The bound alternate port, or null. */
  readonly altPort: number | null;
  close(): Promise<void>;
}

/** RFC 5780's CHANGE-REQUEST attribute and its flags. */
const CHANGE_REQUEST = 0x0003;
const CHANGE_IP = 0x04;
const CHANGE_PORT = 0x02;

/** Where a reply goes out: the port the request came in on, or the other one. */
export interface Reply {
  readonly bytes: Buffer;
  readonly fromOtherPort: boolean;
}

export async function startStunResponder(options: StunResponderOptions): Promise<StunResponder> {
  const log = options.log ?? (() => {});
  const primary = await bindPort(options.host, options.port, log);
  const alternate =
    options.altPort === undefined || options.altPort === null
      ? undefined
      : await bindPort(options.host, options.altPort, log).catch(async (err: unknown) => {
          await closeAll(primary.sockets);
          throw err;
        });
  const serve = (own: BoundPort, other: BoundPort | undefined) => {
    for (const socket of own.sockets) {
      socket.on("message", (data, from) => respond(socket, other?.sockets.find((s) => s.address().family === socket.address().family), data, from, log));
    }
  };
  serve(primary, alternate);
  if (alternate) serve(alternate, primary);
  const sockets = [...primary.sockets, ...(alternate?.sockets ?? [])];
  return { port: primary.port, altPort: alternate?.port ?? null, close: () => closeAll(sockets) };
}

interface BoundPort {
  readonly port: number;
  readonly sockets: dgram.Socket[];
}

async function bindPort(host: string, port: number, log: Log): Promise<BoundPort> {
  // A "::" socket is dual-stack and serves IPv4 clients too.
  const first = await bindSocket(socketTypeFor(host), host, port, false, log);
  const bound = first.address().port;
  const sockets = [first];
  // Listening on every IPv4 address: answer IPv6 clients too when this machine has IPv6.
  if (host === "0.0.0.0") {
    const v6 = await bindSocket("udp6", "::", bound, true, log).catch(() => undefined);
    if (v6) sockets.push(v6);
  }
  return { port: bound, sockets };
}

/**
 * The answer to one datagram, or undefined to stay silent. `canChangePort`: an alternate port
 * exists, so CHANGE-REQUEST's "change port" can be honoured. Exported for unit tests.
 */
export function answer(data: Buffer, from: { address: string; port: number }, canChangePort = false): Buffer | undefined {
  return reply(data, from, canChangePort)?.bytes;
}

export function reply(data: Buffer, from: { address: string; port: number }, canChangePort: boolean): Reply | undefined {
  const request = parseMessage(data);
  if (!request || request.messageClass !== classes.REQUEST) return undefined;
  if (request.messageMethod !== methods.BINDING) {
    return { bytes: errorResponse(request, 400, "Bad Request: this server answers Binding only").bytes, fromOtherPort: false };
  }
  const change = (request.getAttributeValue("CHANGE-REQUEST") as number | undefined) ?? 0;
  const unknown = unknownAttributes(request, change, canChangePort);
  if (unknown.length > 0) {
    const bytes = errorResponse(request, 420, "Unknown Attribute").setAttribute("UNKNOWN-ATTRIBUTES", unknown).addFingerprint().bytes;
    return { bytes, fromOtherPort: false };
  }
  const bytes = new Message(methods.BINDING, classes.RESPONSE, request.transactionId)
    .setAttribute("XOR-MAPPED-ADDRESS", [unmapIPv4(from.address), from.port])
    .addFingerprint().bytes;
  return { bytes, fromOtherPort: (change & CHANGE_PORT) !== 0 };
}

function errorResponse(request: Message, code: number, reason: string): Message {
  return new Message(request.messageMethod, classes.ERROR, request.transactionId).setAttribute("ERROR-CODE", [code, reason]);
}

/** A CHANGE-REQUEST this responder cannot honour (a second IP, or no second port) counts as unknown, as RFC 5780 §6.1 says. */
function unknownAttributes(request: Message, change: number, canChangePort: boolean): number[] {
  const unknown = request.unknownAttributeTypes.filter(isComprehensionRequiredAttribute);
  const honoured = (change & CHANGE_IP) === 0 && (canChangePort || (change & CHANGE_PORT) === 0);
  if (request.attributesKeys.includes("CHANGE-REQUEST") && !honoured) unknown.push(CHANGE_REQUEST);
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
      resolve(socket);
    });
  });
}

function respond(socket: dgram.Socket, other: dgram.Socket | undefined, data: Buffer, from: dgram.RemoteInfo, log: Log): void {
  let answered: Reply | undefined;
  try {
    answered = reply(data, from, other !== undefined);
  } catch (err) {
    // werift's parser guards its bounds, but a datagram from the internet must never crash us.
    log(logLine("stun-drop", { from: `${from.address}:${from.port}`, error: (err as Error).message }));
    return;
  }
  if (!answered) return;
  const out = answered.fromOtherPort && other ? other : socket;
  out.send(answered.bytes, from.port, from.address, (err) => {
    if (err) log(logLine("stun-error", { to: `${from.address}:${from.port}`, error: err.message }));
  });
}

function closeAll(sockets: dgram.Socket[]): Promise<void> {
  return Promise.all(sockets.map((socket) => new Promise<void>((resolve) => socket.close(() => resolve())))).then(() => {});
}
