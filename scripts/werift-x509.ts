// What werift asks of @peculiar/x509, written small, for the bundles: werift imports the whole
// library (with asn1js, tsyringe and reflect-metadata) only to make its one self-signed DTLS
// certificate, and evaluating it costs ~90 ms of CPU and ~8 MB at every start, before the peer
// does anything. The build points werift's import here (scripts/build.ts); the sources and the
// server (`selfsigned`) keep the real library.
//
// werift calls exactly: cryptoProvider.set(webcrypto); X509CertificateGenerator.createSelfSigned(
// { serialNumber, name, notBefore, notAfter, signingAlgorithm, keys }) with an ECDSA P-256 /
// SHA-256 key pair, then toString("pem"); PemConverter.encode(pkcs8, "private key"). The
// certificate is a plain X.509 v3 with no extensions, as the library makes it from those options.
import { Buffer } from "node:buffer";
import { webcrypto } from "node:crypto";

type Crypto = typeof webcrypto;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

let provider: Crypto = webcrypto;

export const cryptoProvider = {
  set(crypto: Crypto): void {
    provider = crypto;
  },
};

interface SelfSignedOptions {
  readonly serialNumber: string;
  /** "C=AU, ST=Some-State, O=Internet Widgits Pty Ltd" */
  readonly name: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly signingAlgorithm: { readonly name: string; readonly hash?: string | { readonly name: string }; readonly namedCurve?: string };
  readonly keys: CryptoKeyPair;
}

export class X509CertificateGenerator {
  static async createSelfSigned(options: SelfSignedOptions): Promise<{ toString(format: "pem"): string }> {
    const { name, hash, namedCurve } = options.signingAlgorithm;
    const hashName = typeof hash === "string" ? hash : hash?.name;
    if (name !== "ECDSA" || hashName !== "SHA-256" || namedCurve !== "P-256") {
      throw new Error(`werift-x509: only ECDSA P-256 with SHA-256 certificates are built in, not ${name} ${namedCurve ?? ""} ${hashName ?? ""}`);
    }
    const issuer = distinguishedName(options.name);
    const spki = new Uint8Array(await provider.subtle.exportKey("spki", options.keys.publicKey));
    const tbs = sequence(
      tlv(0xa0, integer(Uint8Array.of(2))),
      integer(Buffer.from(options.serialNumber, "hex")),
      ECDSA_WITH_SHA256,
      issuer,
      sequence(time(options.notBefore), time(options.notAfter)),
      issuer,
      spki,
    );
    const p1363 = new Uint8Array(await provider.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, options.keys.privateKey, tbs));
    const half = p1363.length / 2;
    const signature = sequence(integer(p1363.subarray(0, half)), integer(p1363.subarray(half)));
    const der = sequence(tbs, ECDSA_WITH_SHA256, tlv(0x03, Uint8Array.of(0), signature));
    return { toString: () => pem(der, "CERTIFICATE") };
  }
}

export const PemConverter = {
  encode(data: ArrayBuffer, label: string): string {
    return pem(new Uint8Array(data), label.toUpperCase());
  },
};

function pem(der: Uint8Array, label: string): string {
  const lines = Buffer.from(der).toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----`;
}

/** Attribute types werift's name uses, and a few more. */
const ATTRIBUTES: Record<string, string> = { C: "2.5.4.6", ST: "2.5.4.8", L: "2.5.4.7", O: "2.5.4.10", OU: "2.5.4.11", CN: "2.5.4.3" };

function distinguishedName(text: string): Uint8Array {
  const parts = text.split(",").map((part) => {
    const [key = "", ...rest] = part.trim().split("=");
    const attribute = ATTRIBUTES[key];
    if (!attribute || rest.length === 0) throw new Error(`werift-x509: cannot encode "${part.trim()}" of the name "${text}"`);
    const value = rest.join("=");
    // PrintableString where the text allows it, as @peculiar/x509 does; UTF8String otherwise.
    const tag = /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(value) ? 0x13 : 0x0c;
    return tlv(0x31, sequence(oid(attribute), tlv(tag, new TextEncoder().encode(value))));
  });
  return sequence(...parts);
}

const ECDSA_WITH_SHA256 = sequence(oid("1.2.840.10045.4.3.2"));

/** UTCTime until 2049, GeneralizedTime after (RFC 5280 4.1.2.5). */
function time(date: Date): Uint8Array {
  const text = date.toISOString().replace(/[-:T]/g, "").replace(/\.\d+Z$/, "Z");
  const year = date.getUTCFullYear();
  return year < 2050 ? tlv(0x17, ascii(text.slice(2))) : tlv(0x18, ascii(text));
}

function ascii(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function oid(dotted: string): Uint8Array {
  const [first = 0, second = 0, ...rest] = dotted.split(".").map(Number);
  const bytes = [first * 40 + second];
  for (const arc of rest) {
    const base128 = [arc & 0x7f];
    for (let value = arc >>> 7; value > 0; value >>>= 7) base128.unshift((value & 0x7f) | 0x80);
    bytes.push(...base128);
  }
  return tlv(0x06, Uint8Array.from(bytes));
}

/** A non-negative INTEGER from big-endian bytes: no redundant leading zeros, no sign bit set. */
function integer(bytes: Uint8Array): Uint8Array {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = bytes.subarray(start);
  return (trimmed[0] ?? 0) & 0x80 ? tlv(0x02, Uint8Array.of(0), trimmed) : tlv(0x02, trimmed);
}

function sequence(...parts: Uint8Array[]): Uint8Array {
  return tlv(0x30, ...parts);
}

function tlv(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const length = parts.reduce((sum, part) => sum + part.length, 0);
  const lengthBytes: number[] = [];
  for (let rest = length; rest > 0; rest >>>= 8) lengthBytes.unshift(rest & 0xff);
  const header = length < 0x80 ? [tag, length] : [tag, 0x80 | lengthBytes.length, ...lengthBytes];
  const out = new Uint8Array(header.length + length);
  out.set(header);
  let at = header.length;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
