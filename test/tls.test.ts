// The server's TLS as a client sees it: HTTP/2's cipher rules (no CBC in TLS 1.2), mutual TLS
// with --tls-client-ca, and certificates replaced on disk reaching new connections while
// established streams go on.
import { once } from "node:events";
import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import tls from "node:tls";
import { credentials, Metadata, status, type ChannelCredentials, type ServiceError } from "@grpc/grpc-js";
import { generate } from "selfsigned";
import t from "tap";
import { SignalingServiceClient, type RegisterResponse, type SubscribeResponse } from "../gen/icetest/signaling/v1/signaling.ts";
import { formatText } from "../server/log.ts";
import { startServer } from "../server/server.ts";
import { TlsReloader } from "../server/tls-reload.ts";
import { selfSignedTls, type TlsMaterial } from "../server/tls.ts";
import { exitWithin, listeningPort, startServerProcess } from "./fixtures/server-process.ts";
import type { Teardown } from "./fixtures/server.ts";

const CALL_LIMIT_MS = 10_000;

function client(t: Teardown, port: number, channelCredentials: ChannelCredentials): SignalingServiceClient {
  // Its own connection, never one shared with an earlier client of the same address.
  const made = new SignalingServiceClient(`127.0.0.1:${port}`, channelCredentials, { "grpc.ssl_target_name_override": "localhost", "grpc.use_local_subchannel_pool": 1 });
  t.teardown(() => made.close());
  return made;
}

function register(target: SignalingServiceClient, room: string, peerId: string): Promise<RegisterResponse> {
  return new Promise((resolve, reject) =>
    target.register({ room, peerId, client: undefined }, new Metadata(), { deadline: Date.now() + CALL_LIMIT_MS }, (err, res) => (err ? reject(err) : resolve(res))),
  );
}

function failure(call: Promise<unknown>): Promise<ServiceError | undefined> {
  return call.then(
    () => undefined,
    (err: ServiceError) => err,
  );
}

/** A TLS 1.2 handshake offering only `cipher`: resolves with the suite agreed, or the error. */
function handshake(port: number, cipher: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername: "localhost", maxVersion: "TLSv1.2", ciphers: cipher, ALPNProtocols: ["h2"], rejectUnauthorized: false });
    socket.once("secureConnect", () => {
      resolve(socket.getCipher().name);
      socket.destroy();
    });
    socket.once("error", (err) => resolve(`refused: ${err.message}`));
  });
}

async function clientCertificate(): Promise<TlsMaterial> {
  const pems = await generate([{ name: "commonName", value: "peer" }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notBeforeDate: new Date(Date.now() - 60_000),
    extensions: [
      { name: "basicConstraints", cA: true, critical: true },
      { name: "keyUsage", digitalSignature: true, keyCertSign: true, critical: true },
      { name: "extKeyUsage", clientAuth: true },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

t.test("TLS 1.2 CBC suites are refused and AEAD suites accepted (RFC 7540 Appendix A)", async (t) => {
  const material = await selfSignedTls();
  const server = await startServer({ host: "127.0.0.1", port: 0, stunPort: null, tls: material });
  t.teardown(() => server.shutdown(1_000));
  t.match(await handshake(server.port, "ECDHE-ECDSA-AES128-SHA"), /^refused/, "ECDHE-ECDSA-AES128-SHA (CBC) is refused");
  t.match(await handshake(server.port, "ECDHE-ECDSA-AES256-SHA384"), /^refused/, "ECDHE-ECDSA-AES256-SHA384 (CBC) is refused");
  t.equal(await handshake(server.port, "ECDHE-ECDSA-AES128-GCM-SHA256"), "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256 (AEAD) is accepted");
  t.equal(await handshake(server.port, "ECDHE-ECDSA-CHACHA20-POLY1305"), "ECDHE-ECDSA-CHACHA20-POLY1305", "ChaCha20-Poly1305 is accepted");
});

t.test("--tls-client-ca: a client without a certificate is refused, one with a certificate the CA signed is served", async (t) => {
  const material = await selfSignedTls();
  const peer = await clientCertificate();
  const stranger = await clientCertificate();
  const server = await startServer({ host: "127.0.0.1", port: 0, stunPort: null, tls: { ...material, clientCa: peer.cert } });
  t.teardown(() => server.shutdown(1_000));
  const ca = Buffer.from(material.cert);

  const anonymous = await failure(register(client(t, server.port, credentials.createSsl(ca)), "mtls", "anonymous"));
  t.equal(anonymous?.code, status.UNAVAILABLE, `a client without a certificate cannot connect (${anonymous?.details})`);
  const unknown = await failure(register(client(t, server.port, credentials.createSsl(ca, Buffer.from(stranger.key), Buffer.from(stranger.cert))), "mtls", "stranger"));
  t.equal(unknown?.code, status.UNAVAILABLE, "nor one whose certificate the CA did not sign");
  const served = await register(client(t, server.port, credentials.createSsl(ca, Buffer.from(peer.key), Buffer.from(peer.cert))), "mtls", "peer");
  t.equal(served.peerId, "peer", "a client with a certificate the CA signed is served");
});

t.test("a certificate replaced on disk is served to new connections while an old stream goes on; SIGHUP reloads without stopping", async (t) => {
  const dir = t.testdir({});
  const [first, second] = await Promise.all([selfSignedTls(), selfSignedTls()]);
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  await writeFile(certFile, first.cert);
  await writeFile(keyFile, first.key);
  const server = await startServerProcess(t, ["--tls-cert", certFile, "--tls-key", keyFile, "--host", "127.0.0.1", "--port", "0", "--no-stun"], { ICE_TEST_LOG_FORMAT: "json" });
  const port = await listeningPort(server);

  const old = client(t, port, credentials.createSsl(Buffer.from(first.cert)));
  const alice = await register(old, "renewal", "alice");
  const bob = await register(old, "renewal", "bob");
  const stream = old.subscribe({ sessionToken: bob.sessionToken });
  t.teardown(() => stream.cancel());
  const ended = new Promise<ServiceError>((resolve) => stream.on("error", resolve));
  await once(stream, "data");

  // A renewal as certbot's deploy hooks or a cron job do it: new files renamed into place.
  await writeFile(`${keyFile}.new`, second.key);
  await writeFile(`${certFile}.new`, second.cert);
  await rename(`${keyFile}.new`, keyFile);
  await rename(`${certFile}.new`, certFile);
  await server.line(/"event":"tls-reloaded","trigger":"file-change"/);

  const renewed = await register(client(t, port, credentials.createSsl(Buffer.from(second.cert))), "renewal", "carol");
  t.equal(renewed.peerId, "carol", "a new connection trusting only the new certificate is served");
  const stale = await failure(register(client(t, port, credentials.createSsl(Buffer.from(first.cert))), "renewal", "dave"));
  t.equal(stale?.code, status.UNAVAILABLE, "a new connection trusting only the old certificate is refused: the new one is served");

  const delivered = new Promise<SubscribeResponse>((resolve) => stream.on("data", (event: SubscribeResponse) => event.event?.$case === "message" && resolve(event)));
  await new Promise((resolve, reject) =>
    old.sendMessage({ sessionToken: alice.sessionToken, toPeerId: "bob", signal: { kind: { $case: "text", value: "still here" } } }, (err, res) => (err ? reject(err) : resolve(res))),
  );
  const message = await delivered;
  t.same(message.event?.$case === "message" && message.event.value.signal?.kind, { $case: "text", value: "still here" }, "the stream opened before the renewal still delivers, on its old connection");

  server.signal("SIGHUP");
  await server.line(/"event":"tls-reloaded","trigger":"SIGHUP"/);
  t.equal(server.stdout.filter((line) => line.includes('"event":"stopping"')).length, 0, "SIGHUP reloads and does not stop the server");
  await register(old, "renewal", "erin");
  t.pass("and the old connection still serves calls after SIGHUP");

  server.signal("SIGTERM");
  t.equal(await exitWithin(server, 10_000), 0, "SIGTERM still exits 0");
  t.equal((await ended).code, status.UNAVAILABLE, "and only then does the old stream end, UNAVAILABLE");
});

t.test("a key that does not match the certificate is not served: the server keeps the pair it has and says why", async (t) => {
  const dir = t.testdir({});
  const [first, second] = await Promise.all([selfSignedTls(), selfSignedTls()]);
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  await writeFile(certFile, first.cert);
  await writeFile(keyFile, first.key);
  const server = await startServer({ host: "127.0.0.1", port: 0, stunPort: null, tls: first });
  t.teardown(() => server.shutdown(1_000));
  const lines: string[] = [];
  let logged: () => void = () => {};
  const reloader = new TlsReloader({ certFile, keyFile }, first, server.reloadTls, (entry) => {
    lines.push(formatText(entry));
    logged();
  });
  t.teardown(() => reloader.close());
  reloader.watch();
  const warned = new Promise<void>((resolve) => (logged = resolve));
  await writeFile(certFile, second.cert); // the key stays the first one's
  await warned;
  t.match(lines[0], /warn tls-reload-failed trigger=file-change error=.*does not match the certificate/, "the log says the pair does not match, as a warning");
  t.equal((await register(client(t, server.port, credentials.createSsl(Buffer.from(first.cert))), "keep", "alice")).peerId, "alice", "the old certificate is still served");
});
