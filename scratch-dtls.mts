import { DtlsClient, DtlsServer, RTCDtlsTransport } from "werift";
function link() {
  const make = () => ({ onData: (_: Buffer) => {}, peer: undefined as any, closed: false, address: {}, type: "memory",
    send(buf: Buffer) { const p = this.peer; setImmediate(() => !p.closed && p.onData(buf)); return Promise.resolve(); },
    close() { this.closed = true; } });
  const a = make(), b = make(); a.peer = b; b.peer = a; return [a, b];
}
async function once() {
  const cert = await RTCDtlsTransport.SetupCertificate();
  const t0 = performance.now();
  const [ta, tb] = link();
  const common = { cert: cert.certPem, key: cert.privateKey, signatureHash: cert.signatureHash, srtpProfiles: [7, 1], extendedMasterSecret: true };
  const server = new DtlsServer({ ...common, transport: ta, certificateRequest: true } as any);
  const client = new DtlsClient({ ...common, transport: tb } as any);
  const both = Promise.all([new Promise((r) => server.onConnect.once(r)), new Promise((r) => client.onConnect.once(r))]);
  void client.connect().catch(() => undefined);
  await both;
  const got = new Promise((r) => server.onData.once(r));
  await client.send(Buffer.from("x"));
  await got;
  const ms = performance.now() - t0;
  server.close(); client.close();
  return ms;
}
const cert0 = performance.now(); await RTCDtlsTransport.SetupCertificate(); console.log("cert", (performance.now() - cert0).toFixed(1));
console.log("dtls cold", (await once()).toFixed(1));
console.log("dtls warm", (await once()).toFixed(1));
console.log("dtls warm", (await once()).toFixed(1));
