// Every way the signaling server can be unusable, against real servers (or none): the peer's
// session classifies each one into a reason and one line that says what to type next. The same
// through spawned CLIs, with what a person sees, is in signaling-cli.test.ts.
import { once } from "node:events";
import net from "node:net";
import { status, type ServiceError } from "@grpc/grpc-js";
import { generate } from "selfsigned";
import t, { type Test } from "tap";
import type { Summary } from "../core/summary.ts";
import { grpcDetails } from "../core/signaling-errors.ts";
import { startServer } from "../server/server.ts";
import { selfSignedTls, type TlsMaterial } from "../server/tls.ts";
import { startSession, uniqueRoom } from "./fixtures/peers.ts";

/** An offerer that meets nobody: only signaling matters here. */
function attempt(addr: string, ca?: string, extra: string[] = []): Promise<Summary> {
  const argv = ["--role", "offerer", "--signaling-addr", addr, "--room", uniqueRoom(), "--wait", "1s", "--bind", "127.0.0.1", "--json", ...extra];
  return startSession(argv, ca).done;
}

async function server(material: TlsMaterial | null, host = "127.0.0.1"): Promise<number> {
  const running = await startServer({ host, port: 0, tls: material, stunPort: null });
  t.teardown(() => running.shutdown(500));
  return running.port;
}

function certificate(names: string[], days: { from: number; to: number }): Promise<TlsMaterial> {
  const day = 86_400_000;
  return generate([{ name: "commonName", value: names[0]! }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notBeforeDate: new Date(Date.now() + days.from * day),
    notAfterDate: new Date(Date.now() + days.to * day),
    extensions: [{ name: "subjectAltName", altNames: names.map((value) => (net.isIP(value) ? { type: 7, ip: value } : { type: 2, value })) }],
  }).then((pems) => ({ cert: pems.cert, key: pems.private }));
}

function assertReason(t: Test, summary: Summary, reason: string, words: RegExp): void {
  t.equal(summary.exitCode, 3, `exit code 3 (signaling) for ${reason}`);
  t.equal(summary.error?.reason, reason, `reason ${reason}`);
  t.match(summary.error?.message, words, `says what to do: "${summary.error?.message}"`);
  t.notMatch(summary.error?.message, /Resolution note|Last error|\n/, "one line, none of grpc-js's framing");
}

async function closedPort(): Promise<number> {
  const closed = net.createServer().listen(0, "127.0.0.1");
  await once(closed, "listening");
  const port = (closed.address() as net.AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  return port;
}

async function silentPort(): Promise<number> {
  const silent = net.createServer().listen(0, "127.0.0.1");
  await once(silent, "listening");
  const sockets = new Set<net.Socket>();
  silent.on("connection", (socket) => sockets.add(socket));
  t.teardown(() => {
    sockets.forEach((socket) => socket.destroy());
    silent.close();
  });
  return (silent.address() as net.AddressInfo).port;
}

// Every attempt starts now and runs side by side (the silent port takes the 10 s call deadline);
// each test below awaits its own.
const material = await selfSignedTls();
const other = await selfSignedTls();
const [forSignalTest, expired, forLocalhostOnly] = await Promise.all([
  certificate(["signal.test"], { from: -1, to: 30 }),
  certificate(["localhost", "127.0.0.1"], { from: -30, to: -1 }),
  certificate(["localhost"], { from: -1, to: 30 }),
]);
const [plainPort, tlsPort, dualStackPort, signalTestPort, expiredPort, localhostOnlyPort, refusedPort, quietPort] = await Promise.all([
  server(null),
  server(material),
  server(material, "::"),
  server(forSignalTest),
  server(expired),
  server(forLocalhostOnly),
  closedPort(),
  silentPort(),
]);
const runs = {
  plaintext: attempt(`https://127.0.0.1:${plainPort}`),
  speaksTls: attempt(`http://127.0.0.1:${tlsPort}`),
  untrusted: attempt(`https://localhost:${tlsPort}`),
  wrongCa: attempt(`https://localhost:${tlsPort}`, other.cert),
  wrongName: attempt(`https://localhost:${signalTestPort}`, forSignalTest.cert),
  wrongServerName: attempt(`https://127.0.0.1:${tlsPort}`, material.cert, ["--tls-server-name", "signal.test"]),
  ipNotInCertificate: attempt(`https://127.0.0.1:${localhostOnlyPort}`, forLocalhostOnly.cert),
  expired: attempt(`https://localhost:${expiredPort}`, expired.cert),
  refused: attempt(`http://127.0.0.1:${refusedPort}`),
  silent: attempt(`http://127.0.0.1:${quietPort}`),
  ipv4: attempt(`https://127.0.0.1:${dualStackPort}`, material.cert),
  ipv6: attempt(`https://[::1]:${dualStackPort}`, material.cert),
};

t.test("https:// to a plaintext server: use http://", async (t) => {
  assertReason(t, await runs.plaintext, "signaling-speaks-plaintext", new RegExp(`speaks plaintext, not TLS: use --signaling-addr http://127\\.0\\.0\\.1:${plainPort}$`));
});

t.test("http:// to a TLS server (the old tool's habit): use https://, with --ca when self-signed", async (t) => {
  assertReason(t, await runs.speaksTls, "signaling-speaks-tls", new RegExp(`speaks TLS: use --signaling-addr https://127\\.0\\.0\\.1:${tlsPort} --ca FILE \\(its certificate, self-signed, is not trusted here`));
});

t.test("an untrusted certificate: pass --ca", async (t) => {
  assertReason(t, await runs.untrusted, "signaling-untrusted", /certificate \(self-signed, for localhost, 127\.0\.0\.1, ::1\) is not trusted here: pass it with --ca FILE/);
});

t.test("a --ca that did not sign the server's certificate says so", async (t) => {
  assertReason(t, await runs.wrongCa, "signaling-wrong-ca", /is not signed by the --ca file given: pass the certificate this server's --cert-out wrote/);
});

t.test("a certificate for another name lists the names it has", async (t) => {
  assertReason(t, await runs.wrongName, "signaling-wrong-name", /certificate is for signal\.test, not localhost: connect with one of those names, or pass --tls-server-name signal\.test$/);
  assertReason(t, await runs.wrongServerName, "signaling-wrong-name", /certificate is for localhost, 127\.0\.0\.1, ::1, not --tls-server-name signal\.test/);
  assertReason(t, await runs.ipNotInCertificate, "signaling-wrong-name", /certificate is for localhost, not 127\.0\.0\.1: connect with one of those names/);
});

t.test("an expired certificate says when it expired", async (t) => {
  assertReason(t, await runs.expired, "signaling-cert-expired", /certificate expired on \d{4}-\d\d-\d\dT[\d:.]+Z: renew it on the server/);
});

t.test("nothing listening: connection refused names the address", async (t) => {
  assertReason(t, await runs.refused, "signaling-refused", new RegExp(`Nothing is listening at 127\\.0\\.0\\.1:${refusedPort} \\(connection refused\\): start the signaling server there`));
});

t.test("a port that accepts and never answers: timed out", async (t) => {
  assertReason(t, await runs.silent, "signaling-timeout", /accepted the connection but sent nothing back within 3 s: is this the signaling server's port\?/);
});

t.test("https://<IPv4> and https://[IPv6] with --ca get past signaling", async (t) => {
  for (const [name, run] of [["IPv4", runs.ipv4], ["IPv6", runs.ipv6]] as const) {
    const summary = await run;
    t.ok(summary.peerId, `${name}: registered (${summary.error?.message})`);
    t.equal(summary.error?.reason, "no-peer", `${name}: the run got as far as waiting for a peer`);
  }
});

t.test("grpc-js's details lose their framing and the dangling Resolution note", async (t) => {
  const err = { code: status.UNAVAILABLE, details: "No connection established. Last error: Error: self-signed certificate (2026-12-02T15:04:47.994Z). Resolution note: " } as ServiceError;
  t.equal(grpcDetails(err), "self-signed certificate", "only the cause");
  t.equal(grpcDetails({ code: status.NOT_FOUND, details: "no such peer" } as ServiceError), "no such peer", "plain details stay");
});
