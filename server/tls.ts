// TLS material for the gRPC port: PEM files given by the operator, or a self-signed certificate
// for development that clients trust with `--ca FILE`.
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import { generate } from "selfsigned";

export interface TlsMaterial {
  /** PEM; may hold a chain, leaf first. */
  cert: string;
  key: string;
}

/** Names every development certificate covers, so local clients work whatever they dial. */
export const DEFAULT_SELF_SIGNED_HOSTS = ["localhost", "127.0.0.1", "::1"];

const SELF_SIGNED_DAYS = 90;

export async function loadTlsFiles(certFile: string, keyFile: string): Promise<TlsMaterial> {
  const cert = await readPem(certFile, "certificate");
  const key = await readPem(keyFile, "private key");
  checkPair(cert, key, certFile, keyFile);
  return { cert, key };
}

/** A fresh self-signed certificate for `extraHosts` (names or IP addresses) and the defaults. */
export async function selfSignedTls(extraHosts: readonly string[] = []): Promise<TlsMaterial> {
  const hosts = [...new Set([...DEFAULT_SELF_SIGNED_HOSTS, ...extraHosts])];
  const notBeforeDate = new Date(Date.now() - 60_000); // tolerate a little clock skew
  const notAfterDate = new Date(notBeforeDate.getTime() + SELF_SIGNED_DAYS * 86_400_000);
  const pems = await generate([{ name: "commonName", value: extraHosts[0] ?? "localhost" }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: "basicConstraints", cA: false, critical: true },
      { name: "keyUsage", digitalSignature: true, critical: true },
      { name: "extKeyUsage", serverAuth: true },
      { name: "subjectAltName", altNames: hosts.map(subjectAltName) },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

function subjectAltName(host: string): { type: 2 | 7; value?: string; ip?: string } {
  return isIP(host) === 0 ? { type: 2, value: host } : { type: 7, ip: host };
}

async function readPem(file: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new Error(`Cannot read TLS ${what} file "${file}": ${(err as Error).message}`, { cause: err });
  }
  if (!text.includes("-----BEGIN ")) throw new Error(`TLS ${what} file "${file}" is not PEM (no "-----BEGIN" line)`);
  return text;
}

function checkPair(cert: string, key: string, certFile: string, keyFile: string): void {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (err) {
    throw new Error(`TLS certificate file "${certFile}" holds no valid certificate: ${(err as Error).message}`, { cause: err });
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new Error(`TLS private key file "${keyFile}" holds no valid private key: ${(err as Error).message}`, { cause: err });
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new Error(`TLS private key "${keyFile}" does not match the certificate "${certFile}"`);
  }
}
