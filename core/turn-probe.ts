// Asks the TURN server for an allocation, the way werift will, and says at once whether it answers
// and whether it takes the credentials. werift cannot tell: it drops the server's 401 because that
// error response carries no MESSAGE-INTEGRITY, retransmits for ~12.7 s, and then simply gathers no
// relay candidate. The STUN wire format is werift's; only the exchange is written here.
import { Buffer } from "node:buffer";
import { createSocket } from "node:dgram";
import { connect as connectTcp, isIP, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";
import { Message, classes, makeIntegrityKey, methods, parseMessage } from "werift";
import type { TurnTransport } from "./ice-config.ts";

export type TurnProbeResult =
  | { readonly outcome: "allocated"; readonly relayedAddress: string; readonly ms: number }
  | { readonly outcome: "refused"; readonly code: number; readonly reason: string; readonly ms: number }
  | { readonly outcome: "no-answer"; readonly ms: number }
  | { readonly outcome: "error"; readonly message: string; readonly ms: number; readonly tls?: TlsProblem };

/** What is wrong with a TURN server's certificate, read from the TLS error. */
export type TlsProblem = "untrusted" | "expired" | "wrong-name";

export interface TurnTarget {
  readonly url: string;
  readonly username: string;
  readonly password: string;
  readonly transport: TurnTransport;
  /** PEM of a private CA to trust for TURN over TLS (--turn-ca). */
  readonly ca?: string;
}

/** REQUESTED-TRANSPORT: UDP (17) in the top byte, as RFC 8656 and werift encode it. */
const UDP_TRANSPORT = 17 << 24;
const FIRST_RTO_MS = 250;

export async function probeTurn(target: TurnTarget, limitMs = 5000): Promise<TurnProbeResult> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  let exchange: Exchange | undefined;
  try {
    const [host, port] = hostAndPort(target.url);
    exchange = await openExchange(target.transport, host, port, limitMs, target.ca);
    const first = await exchange.request(allocate(), limitMs);
    if (!first) return { outcome: "no-answer", ms: ms() };
    const challenge = errorOf(first);
    if (!challenge) return allocated(first, ms());
    const realm = first.getAttributeValue("REALM") as string | undefined;
    const nonce = first.getAttributeValue("NONCE") as Buffer | undefined;
    if (challenge.code !== 401 || !realm || !nonce) return { outcome: "refused", ...challenge, ms: ms() };
    const key = makeIntegrityKey(target.username, realm, target.password);
    const second = await exchange.request(allocate({ username: target.username, realm, nonce, key }), limitMs);
    if (!second) return { outcome: "no-answer", ms: ms() };
    const refusal = errorOf(second);
    if (refusal) return { outcome: "refused", ...refusal, ms: ms() };
    const result = allocated(second, ms());
    // Give the allocation back at once: the probe must not hold a relay port for its lifetime.
    await exchange.request(release(target.username, realm, nonce, key), 1000).catch(() => undefined);
    return result;
  } catch (err) {
    const tls = tlsProblem(err);
    return { outcome: "error", message: err instanceof Error ? err.message : String(err), ms: ms(), ...(tls ? { tls } : {}) };
  } finally {
    exchange?.close();
  }
}

export function describeProbe(url: string, result: TurnProbeResult): string {
  switch (result.outcome) {
    case "allocated":
      return `TURN server ${url} accepted the credentials (relay address ${result.relayedAddress}, ${result.ms} ms)`;
    case "refused":
      return `TURN server ${url} REFUSED the allocation: ${result.code} ${result.reason}`;
    case "no-answer":
      return `TURN server ${url} did not answer within ${result.ms} ms`;
    case "error":
      if (result.tls) return `TURN server ${url}: its TLS certificate is ${TLS_WORDS[result.tls]} (${result.message})`;
      return `TURN server ${url} could not be asked: ${result.message}`;
  }
}

export const TLS_WORDS: Record<TlsProblem, string> = {
  untrusted: "not trusted (self-signed or from an unknown CA)",
  expired: "expired or not yet valid",
  "wrong-name": "for another name",
};

/** Node's TLS error codes, and Deno's and OpenSSL's words for the same. Exported for unit tests. */
export function tlsProblem(err: unknown): TlsProblem | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  const text = `${typeof code === "string" ? code : ""} ${err instanceof Error ? err.message : String(err)}`;
  if (/CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|expired|not yet valid/i.test(text)) return "expired";
  if (/ALTNAME|hostname|does not match|not valid for/i.test(text)) return "wrong-name";
  if (/SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|self.signed|unknown ?issuer|verify the first certificate|UnknownIssuer/i.test(text)) return "untrusted";
  return undefined;
}

interface Credentials {
  readonly username: string;
  readonly realm: string;
  readonly nonce: Buffer;
  readonly key: Buffer;
}

function allocate(credentials?: Credentials): Message {
  const request = new Message(methods.ALLOCATE, classes.REQUEST)
    .setAttribute("LIFETIME", 600)
    .setAttribute("REQUESTED-TRANSPORT", UDP_TRANSPORT);
  return credentials ? signed(request, credentials) : request.addFingerprint();
}

function release(username: string, realm: string, nonce: Buffer, key: Buffer): Message {
  return signed(new Message(methods.REFRESH, classes.REQUEST).setAttribute("LIFETIME", 0), { username, realm, nonce, key });
}

function signed(request: Message, c: Credentials): Message {
  return request
    .setAttribute("USERNAME", c.username)
    .setAttribute("REALM", c.realm)
    .setAttribute("NONCE", c.nonce)
    .addMessageIntegrity(c.key)
    .addFingerprint();
}

function errorOf(response: Message): { code: number; reason: string } | undefined {
  if (response.messageClass !== classes.ERROR) return undefined;
  const [code, reason] = (response.getAttributeValue("ERROR-CODE") as [number, string] | undefined) ?? [0, "unknown error"];
  return { code, reason };
}

function allocated(response: Message, ms: number): TurnProbeResult {
  const relayed = response.getAttributeValue("XOR-RELAYED-ADDRESS") as [string, number] | undefined;
  return { outcome: "allocated", relayedAddress: relayed ? `${relayed[0]}:${relayed[1]}` : "unknown", ms };
}

function hostAndPort(url: string): [string, number] {
  const authority = url.replace(/^turns?:/i, "").split("?")[0] ?? "";
  const match = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(authority);
  if (!match?.[1]) throw new Error(`cannot read host and port from ${url}`);
  return [match[1], Number(match[2] ?? (/^turns:/i.test(url) ? 5349 : 3478))];
}

/** One request, one response matched by transaction id; undefined when none came in time. */
interface Exchange {
  request(message: Message, limitMs: number): Promise<Message | undefined>;
  close(): void;
}

async function openExchange(transport: TurnTransport, host: string, port: number, limitMs: number, ca?: string): Promise<Exchange> {
  if (transport === "udp") return udpExchange(host, port);
  const socket = await new Promise<Socket>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${transport.toUpperCase()} connection within ${limitMs} ms`)), limitMs);
    const done = (s: Socket) => {
      clearTimeout(timer);
      resolve(s);
    };
    // No servername for an IP address: Deno refuses one and Node warns (DEP0123).
    const servername = isIP(host) === 0 ? { servername: host } : {};
    const s = transport === "tls" ? connectTls({ host, port, ...servername, ...(ca ? { ca } : {}) }, () => done(s)) : connectTcp({ host, port }, () => done(s));
    s.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  return streamExchange(socket);
}

function udpExchange(host: string, port: number): Exchange {
  const socket = createSocket(host.includes(":") ? "udp6" : "udp4");
  socket.on("error", () => undefined);
  return {
    request: (message, limitMs) =>
      awaitResponse(message, limitMs, (onData) => {
        socket.on("message", onData);
        let rto = FIRST_RTO_MS;
        const send = () => socket.send(message.bytes, port, host);
        send();
        // STUN over UDP retransmits with a doubling timeout (RFC 8489 §6.2.1).
        let timer = setTimeout(function again() {
          send();
          rto *= 2;
          timer = setTimeout(again, rto);
        }, rto);
        return () => {
          clearTimeout(timer);
          socket.off("message", onData);
        };
      }),
    close: () => socket.close(),
  };
}

/** TURN over TCP/TLS: STUN messages back to back, each 20 bytes of header plus its length. */
function streamExchange(socket: Socket): Exchange {
  let buffered = Buffer.alloc(0);
  const listeners = new Set<(data: Buffer) => void>();
  socket.on("data", (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 20) {
      const size = 20 + buffered.readUInt16BE(2);
      if (buffered.length < size) break;
      const frame = buffered.subarray(0, size);
      buffered = buffered.subarray(size);
      listeners.forEach((listener) => listener(frame));
    }
  });
  socket.on("error", () => undefined);
  return {
    request: (message, limitMs) =>
      awaitResponse(message, limitMs, (onData) => {
        listeners.add(onData);
        socket.write(message.bytes);
        return () => listeners.delete(onData);
      }),
    close: () => socket.destroy(),
  };
}

function awaitResponse(message: Message, limitMs: number, start: (onData: (data: Buffer) => void) => () => void): Promise<Message | undefined> {
  return new Promise((resolve) => {
    let stop = () => {};
    const timer = setTimeout(() => {
      stop();
      resolve(undefined);
    }, limitMs);
    stop = start((data) => {
      const response = parseMessage(data);
      if (!response || response.transactionIdHex !== message.transactionIdHex) return;
      clearTimeout(timer);
      stop();
      resolve(response);
    });
  });
}
