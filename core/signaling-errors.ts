// Why the signaling server could not be used, in one line that says what to do next. grpc-js says
// only "No connection established … Resolution note:"; when a call fails that way we look for
// ourselves: a TCP connect, a TLS handshake (trusting what the channel trusts) and, if that fails,
// an HTTP/2 preface, which tells a plaintext server from a TLS one, refused from unreachable, and
// an untrusted certificate from one for another name. node:net and node:tls work on Node and Deno.
import { connect as connectTcp, type Socket } from "node:net";
import { connect as connectTls, checkServerIdentity, type PeerCertificate, type TLSSocket } from "node:tls";
import { status, type ServiceError } from "@grpc/grpc-js";
import { PeerFailure } from "./failure.ts";
import type { SignalingTarget } from "./options.ts";
import { certificateNames, servernameFor, type TlsTrust } from "./signaling-tls.ts";

const PROBE_LIMIT_MS = 3_000;

/** Codes grpc-js gives when it never got a working connection. */
export function isConnectionFailure(err: ServiceError): boolean {
  return err.code === status.UNAVAILABLE || err.code === status.DEADLINE_EXCEEDED;
}

/** A failed call on a working connection: the server's own words, with its status. */
export function rpcFailure(target: SignalingTarget, method: string, err: ServiceError): PeerFailure {
  const reason = err.code === status.UNAUTHENTICATED || err.code === status.PERMISSION_DENIED ? "signaling-denied" : isConnectionFailure(err) ? "signaling-unreachable" : "signaling-error";
  const detail = grpcDetails(err);
  if (isConnectionFailure(err)) return new PeerFailure("signaling", reason, `Cannot reach the signaling server at ${target.url}: ${detail}`, { cause: err });
  return new PeerFailure("signaling", reason, `${method} failed at the signaling server ${target.url}: ${detail} (${status[err.code]})`, { cause: err });
}

/** grpc-js's details without its "Last error:" framing and the empty "Resolution note:". */
export function grpcDetails(err: ServiceError): string {
  const details = (err.details || status[err.code] || "unknown error").replace(/\s*Resolution note:\s*$/, "").trim();
  const last = /Last error: (?:Error: )?([\s\S]*?)(?: \(\d{4}-\d\d-\d\dT[^)]*\))?\.?$/.exec(details)?.[1];
  return (last ?? details).replace(/\s+/g, " ").replace(/\.$/, "");
}

/** Looks at the address itself and says what is wrong; falls back to grpc-js's words. */
export async function explainConnectionFailure(target: SignalingTarget, trust: TlsTrust, err: ServiceError, limitMs = PROBE_LIMIT_MS): Promise<PeerFailure> {
  const port = Number(target.address.slice(target.address.lastIndexOf(":") + 1));
  const tcp = await probeTcp(target.host, port, limitMs);
  if (tcp.kind === "error") return tcpFailure(target, tcp.code, tcp.message, err);
  if (tcp.kind === "timeout") {
    return failure("signaling-timeout", `No answer from ${target.address} within ${seconds(limitMs)}: check the address in --signaling-addr; a firewall may be dropping the connection`, err);
  }
  const [tls, plaintext] = await Promise.all([probeTls(target.host, port, trust, limitMs), speaksPlaintextHttp2(target.host, port, limitMs)]);
  if (target.tls) return tlsFailure(target, trust, tls, plaintext, err, limitMs);
  if (tls.kind === "handshake") return failure("signaling-speaks-tls", `The signaling server at ${target.address} speaks TLS: use --signaling-addr ${withScheme(target, "https")}${untrustedSuffix(tls)}`, err);
  if (plaintext === "silent") return failure("signaling-timeout", `${target.address} accepted the connection but sent nothing back within ${seconds(limitMs)}: is this the signaling server's port?`, err);
  return rpcFailure(target, "Register", err);
}

type TcpProbe = { kind: "connected" } | { kind: "timeout" } | { kind: "error"; code: string; message: string };

function probeTcp(host: string, port: number, limitMs: number): Promise<TcpProbe> {
  return new Promise((resolve) => {
    const socket = connectTcp({ host, port });
    const finish = (result: TcpProbe) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ kind: "timeout" }), limitMs);
    socket.once("connect", () => finish({ kind: "connected" }));
    socket.once("error", (e: NodeJS.ErrnoException) => finish({ kind: "error", code: e.code ?? "", message: e.message }));
  });
}

type TlsProbe =
  | { kind: "handshake"; cert: PeerCertificate; authorizationError: string | undefined }
  | { kind: "failed"; code: string; message: string }
  | { kind: "timeout" };

/** A handshake that accepts any certificate, then says what the real checks would have said. */
function probeTls(host: string, port: number, trust: TlsTrust, limitMs: number): Promise<TlsProbe> {
  return new Promise((resolve) => {
    const servername = servernameFor(host, trust.tlsServerName);
    const socket: TLSSocket = connectTls({ host, port, ...(servername ? { servername } : {}), ...(trust.ca ? { ca: [trust.ca] } : {}), rejectUnauthorized: false, ALPNProtocols: ["h2"] });
    const finish = (result: TlsProbe) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish({ kind: "timeout" }), limitMs);
    socket.once("secureConnect", () => {
      const authorizationError = socket.authorizationError ? String((socket.authorizationError as Error & { code?: string }).code ?? socket.authorizationError) : undefined;
      finish({ kind: "handshake", cert: socket.getPeerCertificate(), authorizationError });
    });
    socket.once("error", (e: NodeJS.ErrnoException) => finish({ kind: "failed", code: e.code ?? "", message: e.message }));
  });
}

/**
 * Sends the HTTP/2 connection preface in the clear: a plaintext gRPC server answers with SETTINGS
 * ("http2"); anything else that answers or hangs up is "other"; no answer at all is "silent".
 */
function speaksPlaintextHttp2(host: string, port: number, limitMs: number): Promise<"http2" | "other" | "silent"> {
  return new Promise((resolve) => {
    const socket: Socket = connectTcp({ host, port });
    const finish = (result: "http2" | "other" | "silent") => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish("silent"), limitMs);
    let received = new Uint8Array(0);
    socket.once("connect", () => {
      const preface = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
      const emptySettings = new Uint8Array([0, 0, 0, 4, 0, 0, 0, 0, 0]);
      socket.write(new Uint8Array([...preface, ...emptySettings]));
    });
    socket.on("data", (chunk: Uint8Array) => {
      received = new Uint8Array([...received, ...chunk]);
      if (received.length >= 9) finish(received[3] === 0x04 ? "http2" : "other");
    });
    socket.once("error", () => finish("other"));
    socket.once("close", () => finish("other"));
  });
}

function tcpFailure(target: SignalingTarget, code: string, message: string, err: ServiceError): PeerFailure {
  const where = target.address;
  switch (code) {
    case "ECONNREFUSED":
      return failure("signaling-refused", `Nothing is listening at ${where} (connection refused): start the signaling server there, or fix the host and port in --signaling-addr`, err);
    case "ENETUNREACH":
    case "EHOSTUNREACH":
    case "EADDRNOTAVAIL":
      return failure("signaling-unreachable", `No route to ${where} (${code}): this machine cannot reach that address; check --signaling-addr and this machine's network`, err);
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_NONAME":
      return failure("signaling-unknown-host", `Cannot resolve "${target.host}" (${code}): check the host name in --signaling-addr`, err);
    case "ETIMEDOUT":
      return failure("signaling-timeout", `No answer from ${where} (${code}): check the address in --signaling-addr; a firewall may be dropping the connection`, err);
    default:
      return failure("signaling-unreachable", `Cannot connect to ${where}: ${message}`, err);
  }
}

function tlsFailure(target: SignalingTarget, trust: TlsTrust, tls: TlsProbe, plaintext: string, err: ServiceError, limitMs: number): PeerFailure {
  if (plaintext === "http2") {
    return failure("signaling-speaks-plaintext", `The signaling server at ${target.address} speaks plaintext, not TLS: use --signaling-addr ${withScheme(target, "http")}`, err);
  }
  if (tls.kind === "timeout") {
    return failure("signaling-timeout", `${target.address} accepted the connection but did not answer the TLS handshake within ${seconds(limitMs)}: is this the signaling server's port?`, err);
  }
  if (tls.kind === "failed") return failure("signaling-tls-failed", `The TLS handshake with ${target.address} failed (${tls.message.split("\n")[0]}): is this the signaling server's port?`, err);
  const cert = tls.cert;
  const names = certificateNames(cert).join(", ");
  switch (tls.authorizationError) {
    case "CERT_HAS_EXPIRED":
      return failure("signaling-cert-expired", `The signaling server's certificate expired on ${isoDate(cert.valid_to)}: renew it on the server (or, if that date is wrong, fix this machine's clock: it is ${new Date().toISOString()})`, err);
    case "CERT_NOT_YET_VALID":
      return failure("signaling-cert-not-yet-valid", `The signaling server's certificate is valid only from ${isoDate(cert.valid_from)}: check this machine's clock (it is ${new Date().toISOString()}) and the server's`, err);
    case undefined:
    case "ERR_TLS_CERT_ALTNAME_INVALID":
      break;
    default:
      if (trust.ca) {
        return failure("signaling-wrong-ca", `The signaling server's certificate (${issuer(cert)}, for ${names}) is not signed by the --ca file given: pass the certificate this server's --cert-out wrote, or the CA that issued it`, err);
      }
      return failure("signaling-untrusted", `The signaling server's certificate (${issuer(cert)}, for ${names}) is not trusted here: pass it with --ca FILE (the server's --cert-out FILE writes it)`, err);
  }
  const expected = trust.tlsServerName ?? target.host;
  if (checkServerIdentity(expected, cert) !== undefined) {
    const given = trust.tlsServerName ? `--tls-server-name ${expected}` : expected;
    return failure("signaling-wrong-name", `The signaling server's certificate is for ${names}, not ${given}: connect with one of those names, or pass --tls-server-name ${certificateNames(cert)[0] ?? "NAME"}`, err);
  }
  return rpcFailure(target, "Register", err);
}

function untrustedSuffix(tls: TlsProbe): string {
  if (tls.kind !== "handshake" || tls.authorizationError === undefined) return "";
  return ` --ca FILE (its certificate, ${issuer(tls.cert)}, is not trusted here; the server's --cert-out writes FILE)`;
}

function withScheme(target: SignalingTarget, scheme: "http" | "https"): string {
  const rest = target.url.replace(/^[a-z]+:\/\//i, "");
  return `${scheme}://${rest}`;
}

function failure(reason: string, message: string, cause: ServiceError): PeerFailure {
  return new PeerFailure("signaling", reason, message, { cause });
}

/** "self-signed" or `issued by "CA name"`. */
function issuer(cert: PeerCertificate): string {
  if (JSON.stringify(cert.issuer) === JSON.stringify(cert.subject)) return "self-signed";
  const cn = cert.issuer?.CN;
  const name = typeof cn === "string" ? cn : Array.isArray(cn) ? cn.join(",") : undefined;
  return `issued by ${name ? `"${name}"` : "an unknown CA"}`;
}

function isoDate(text: string): string {
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? text : date.toISOString();
}

function seconds(ms: number): string {
  return `${ms / 1000} s`;
}
