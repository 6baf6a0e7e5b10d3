// Server TLS for gRPC: HTTP/2's cipher rules, optional client certificates, and certificates that
// can be replaced while the server runs.
//
// grpc-js lets server credentials push a new secure context to their listening HTTP/2 servers
// (tls.Server#setSecureContext): new handshakes use it, established connections and their streams
// keep theirs. That context replaces the whole previous one, so the cipher rules travel with
// every update, not only in the server's constructor options.
import type { SecureContextOptions } from "node:tls";
import * as grpc from "@grpc/grpc-js";

/**
 * TLS 1.3's suites and TLS 1.2's AEAD suites with forward secrecy: RFC 7540 Appendix A forbids
 * HTTP/2 over the CBC and static-RSA suites that Node accepts by default.
 */
export const HTTP2_CIPHERS = [
  "TLS_AES_128_GCM_SHA256",
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
].join(":");

export interface ServerTls {
  /** PEM certificate (chain, leaf first) and key. */
  cert: string | Buffer;
  key: string | Buffer;
  /** PEM CA certificate(s): when set, clients must present a certificate it signed. */
  clientCa?: string | Buffer;
}

export class ReloadableServerCredentials extends grpc.ServerCredentials {
  constructor(tls: ServerTls) {
    // requestCert and rejectUnauthorized are the server's, not the context's: fixed at start.
    super({ requestCert: tls.clientCa !== undefined, rejectUnauthorized: true, ...cipherRules() }, contextOptions(tls));
  }

  /** New connections use `tls` from now on. Whether a client CA is set cannot change. */
  update(tls: ServerTls): void {
    this.updateSecureContextOptions(contextOptions(tls));
  }

  override _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

function cipherRules(): SecureContextOptions {
  return { minVersion: "TLSv1.2", ciphers: HTTP2_CIPHERS, honorCipherOrder: true };
}

function contextOptions(tls: ServerTls): SecureContextOptions {
  const options: SecureContextOptions = { ...cipherRules(), cert: Buffer.from(tls.cert), key: Buffer.from(tls.key) };
  if (tls.clientCa !== undefined) options.ca = Buffer.from(tls.clientCa);
  return options;
}
