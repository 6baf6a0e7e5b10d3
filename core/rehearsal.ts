// Rehearsals of the connect phase's own code, run while the other peer is awaited. werift is
// JavaScript that V8 compiles and optimises on first use: in a fresh process its DTLS handshake
// (both roles) took 87 ms the first time and 33 ms the next (Node; Deno 166 → 60 ms), and
// describing and answering a session costs likewise. Rehearsed, the real steps on the critical
// path run warm. Nothing here touches the network, and a failure only leaves the real steps cold.
import { DtlsClient, DtlsServer, RTCDataChannel, RTCDataChannelParameters, RTCDtlsTransport, RTCPeerConnection, RTCSctpTransport } from "werift";

type DtlsTransport = ConstructorParameters<typeof DtlsClient>[0]["transport"];

/** Well past a rehearsal's length on a busy machine; a stuck one is abandoned, not awaited. */
const REHEARSAL_LIMIT_MS = 2000;

/**
 * An offer and its answer between two peer connections that never gather or connect: the
 * answerer's critical path (apply the offer, create the transports, answer) and the offerer's.
 */
export async function rehearseNegotiation(): Promise<void> {
  const offerer = new RTCPeerConnection({});
  const answerer = new RTCPeerConnection({});
  try {
    offerer.createDataChannel("rehearsal");
    await answerer.setRemoteDescription(await offerer.createOffer());
    await answerer.createAnswer();
  } finally {
    await Promise.all([offerer.close(), answerer.close()]);
  }
}

/** A DTLS handshake between two in-memory endpoints, one of each role; resolves with whether it and one record after it completed in time. */
export async function rehearseDtls(): Promise<boolean> {
  const certificate = await RTCDtlsTransport.SetupCertificate();
  const [serverSide, clientSide] = memoryLink();
  const options = {
    cert: certificate.certPem,
    key: certificate.privateKey,
    signatureHash: certificate.signatureHash,
    // What RTCDtlsTransport offers: the same extensions, the same code.
    srtpProfiles: [7, 1] as (7 | 1)[],
    extendedMasterSecret: true,
  };
  const server = new DtlsServer({ ...options, transport: serverSide, certificateRequest: true });
  const client = new DtlsClient({ ...options, transport: clientSide });
  try {
    const connected = Promise.all([once(server.onConnect), once(client.onConnect)]);
    client.connect().catch(() => undefined);
    return await withinLimit(connected.then(() => echo(client, server)));
  } finally {
    server.close();
    client.close();
  }
}

/**
 * An SCTP association between two in-memory DTLS stand-ins, a data channel opened over it and one
 * message: what runs after the DTLS handshake; resolves with whether it all happened in time.
 */
export async function rehearseDataChannel(): Promise<boolean> {
  const [clientSide, serverSide] = memoryDtlsPair();
  const client = new RTCSctpTransport();
  const server = new RTCSctpTransport();
  client.setDtlsTransport(clientSide);
  server.setDtlsTransport(serverSide);
  try {
    const received = new Promise<void>((resolve) =>
      server.onDataChannel.subscribe((channel) => channel.onMessage.subscribe(() => resolve())),
    );
    const channel = new RTCDataChannel(client, new RTCDataChannelParameters({ label: "rehearsal", ordered: true }));
    channel.stateChanged.subscribe((state) => state === "open" && channel.send("rehearsal"));
    void server.start(client.port).catch(() => undefined);
    void client.start(server.port).catch(() => undefined);
    return await withinLimit(received);
  } finally {
    await Promise.allSettled([client.stop(), server.stop()]);
  }
}

/** What RTCSctpTransport uses of a DTLS transport, joined back to back in memory. */
function memoryDtlsPair(): [RTCDtlsTransport, RTCDtlsTransport] {
  const make = (role: "client" | "server") => ({
    id: `rehearsal-${role}`,
    role,
    peer: undefined as unknown as { dataReceiver?: (data: Buffer) => void },
    // RTCSctpTransport sets it, and unsets it when stopped.
    dataReceiver: undefined as ((data: Buffer) => void) | undefined,
    onStateChange: { subscribe: () => ({ unSubscribe: () => undefined }) },
    sendData(data: Buffer): Promise<void> {
      const peer = this.peer;
      setImmediate(() => peer.dataReceiver?.(data));
      return Promise.resolve();
    },
  });
  const client = make("client");
  const server = make("server");
  client.peer = server;
  server.peer = client;
  return [client as unknown as RTCDtlsTransport, server as unknown as RTCDtlsTransport];
}

/** Whether `step` completed within REHEARSAL_LIMIT_MS. */
async function withinLimit(step: Promise<unknown>): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), REHEARSAL_LIMIT_MS)));
  try {
    return await Promise.race([step.then(() => true), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

async function echo(client: DtlsClient, server: DtlsServer): Promise<void> {
  const received = once(server.onData);
  await client.send(Buffer.from("rehearsal"));
  await received;
}

function once(event: { once(callback: () => void): void }): Promise<void> {
  return new Promise((resolve) => event.once(() => resolve()));
}

/** Two transports joined back to back; delivery waits a turn of the event loop, as a socket's would. */
function memoryLink(): [DtlsTransport, DtlsTransport] {
  const make = () => {
    const end = {
      type: "memory",
      address: {} as DtlsTransport["address"],
      closed: false,
      peer: undefined as unknown as { closed: boolean; onData: DtlsTransport["onData"] },
      onData: (() => undefined) as DtlsTransport["onData"],
      send(data: Buffer): Promise<void> {
        const peer = end.peer;
        setImmediate(() => {
          if (!peer.closed) peer.onData(data, ["memory", 0]);
        });
        return Promise.resolve();
      },
      async close(): Promise<void> {
        end.closed = true;
      },
    };
    return end;
  };
  const a = make();
  const b = make();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
