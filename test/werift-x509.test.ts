// The bundles give werift scripts/werift-x509.ts instead of @peculiar/x509: its certificate must be
// one werift, Node and OpenSSL-based stacks accept, shaped as the library would have made it.
import t from "tap";
import { randomBytes, webcrypto, X509Certificate } from "node:crypto";
import * as peculiar from "@peculiar/x509";
import { RTCCertificate } from "werift";
import * as lite from "../scripts/werift-x509.ts";

const ALG = { name: "ECDSA", hash: "SHA-256", namedCurve: "P-256" };

/** What werift's CipherContext.createSelfSignedCertificateWithKey passes. */
async function werifts(): Promise<Parameters<typeof lite.X509CertificateGenerator.createSelfSigned>[0]> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  return {
    serialNumber: randomBytes(8).toString("hex"),
    name: "C=AU, ST=Some-State, O=Internet Widgits Pty Ltd",
    notBefore: new Date(),
    notAfter: new Date(Date.now() + 10 * 365 * 24 * 60 * 60 * 1e3),
    signingAlgorithm: ALG,
    keys,
  };
}

t.test("the self-signed certificate is valid X.509 that verifies with its own key", async (t) => {
  const options = await werifts();
  const cert = new X509Certificate((await lite.X509CertificateGenerator.createSelfSigned(options)).toString("pem"));
  t.ok(cert.verify(cert.publicKey), "the signature verifies with the certificate's public key");
  t.equal(cert.subject, "C=AU\nST=Some-State\nO=Internet Widgits Pty Ltd", "subject as werift named it");
  t.equal(cert.issuer, cert.subject, "self-signed: issuer is the subject");
  t.equal(cert.serialNumber.toLowerCase(), options.serialNumber.replace(/^0+/, ""), "serial number as given");
  t.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1", "a P-256 key");
  t.equal(new Date(cert.validTo).getUTCFullYear(), options.notAfter.getUTCFullYear(), "valid for ten years");
});

t.test("it matches @peculiar/x509's certificate field for field, and werift loads it", async (t) => {
  const options = await werifts();
  peculiar.cryptoProvider.set(webcrypto as never);
  const ours = new X509Certificate((await lite.X509CertificateGenerator.createSelfSigned(options)).toString("pem"));
  const theirs = new X509Certificate((await peculiar.X509CertificateGenerator.createSelfSigned(options as never)).toString("pem"));
  for (const field of ["subject", "issuer", "serialNumber", "validFrom", "validTo"] as const) t.equal(ours[field], theirs[field], `${field} equal`);
  t.same(ours.publicKey.export({ format: "der", type: "spki" }), theirs.publicKey.export({ format: "der", type: "spki" }), "same public key");
  const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", options.keys.privateKey);
  const keyPem = lite.PemConverter.encode(pkcs8, "private key");
  t.equal(keyPem, peculiar.PemConverter.encode(pkcs8, "private key"), "the private key PEM is byte for byte the library's");
  const certificate = new RTCCertificate(keyPem, ours.toString(), { signature: 3, hash: 4 });
  t.equal(certificate.getFingerprints()[0]?.value, ours.fingerprint256, "werift parses it and its fingerprint is the certificate's");
});

t.test("anything but what werift asks for is refused with words, not a wrong certificate", async (t) => {
  const options = await werifts();
  await t.rejects(lite.X509CertificateGenerator.createSelfSigned({ ...options, signingAlgorithm: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } }), /only ECDSA P-256/, "RSA is refused");
  await t.rejects(lite.X509CertificateGenerator.createSelfSigned({ ...options, name: "E=x@example.com" }), /cannot encode "E=x@example.com"/, "an unknown attribute is refused");
});
