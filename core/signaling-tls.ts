// How the peer trusts the signaling server: the --ca file and addresses as users write them.
// `https://203.0.113.7` must work on both runtimes, but Deno refuses an IP address as the TLS
// servername and Node warns (DEP0123) when given one. So for an IP we send a placeholder name
// (grpc.ssl_target_name_override) and check the address against the certificate's IP SANs here.
import { Buffer } from "node:buffer";
import { X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import { credentials, type ChannelCredentials } from "@grpc/grpc-js";
import { PeerFailure } from "./failure.ts";
import type { SignalingTarget } from "./options.ts";

/** Sent as SNI instead of an IP address: `.invalid` can never be a real name (RFC 2606). */
export const IP_SERVERNAME = "ip-address.invalid";

export interface TlsTrust {
  /** PEM of the CA to trust instead of the system's. */
  readonly ca?: string;
  readonly tlsServerName?: string;
}

export interface ChannelSecurity {
  readonly credentials: ChannelCredentials;
  readonly options: Record<string, string>;
}

export function channelSecurity(target: SignalingTarget, trust: TlsTrust): ChannelSecurity {
  if (!target.tls) return { credentials: credentials.createInsecure(), options: {} };
  const ca = trust.ca ? Buffer.from(trust.ca) : null;
  if (trust.tlsServerName) return { credentials: credentials.createSsl(ca), options: { "grpc.ssl_target_name_override": trust.tlsServerName } };
  if (isIP(target.host) === 0) return { credentials: credentials.createSsl(ca), options: {} };
  const checkAddress = (_servername: string, cert: PeerCertificate) => checkServerIdentity(target.host, cert);
  return {
    credentials: credentials.createSsl(ca, null, null, { checkServerIdentity: checkAddress }),
    options: { "grpc.ssl_target_name_override": IP_SERVERNAME },
  };
}

/** The SNI to send for `host`: none for an IP address. */
export function servernameFor(host: string, tlsServerName?: string): string | undefined {
  if (tlsServerName) return tlsServerName;
  return isIP(host) === 0 ? host : undefined;
}

/** The --ca file's text, refused early (exit 2) unless it holds at least one PEM certificate. */
export function checkCaPem(path: string, text: string): string {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const fix = "pass the PEM file the server's --cert-out wrote, or its CA's certificate";
  if (blocks.length === 0) {
    const what = /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text) ? "a private key, not a certificate" : 'no "-----BEGIN CERTIFICATE-----" block';
    throw new PeerFailure("usage", "ca-not-pem", `--ca ${path} is not a PEM certificate (it holds ${what}): ${fix}`);
  }
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch {
      throw new PeerFailure("usage", "ca-not-pem", `--ca ${path} holds a damaged PEM certificate: ${fix}`);
    }
  }
  return text;
}

/** "localhost, 127.0.0.1, ::1" from a certificate's subjectAltName (or its CN). */
export function certificateNames(cert: PeerCertificate): string[] {
  const names = (cert.subjectaltname ?? "")
    .split(/,\s*/)
    .map((entry) => entry.replace(/^(DNS|IP Address):/, ""))
    .filter(Boolean)
    .map((name) => (name === "0:0:0:0:0:0:0:1" ? "::1" : name));
  const cn = cert.subject?.CN;
  return names.length > 0 ? names : typeof cn === "string" ? [cn] : [];
}
