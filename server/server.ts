// Assembles the signaling server: STUN responder, broker, gRPC service, and an orderly shutdown.
import * as grpc from "@grpc/grpc-js";
import { isIP } from "node:net";
import { SignalingServiceService } from "../gen/icetest/signaling/v1/signaling.ts";
import type { Broker } from "./broker.ts";
import { iceServersFor, type TurnConfig } from "./ice-servers.ts";
import { toListenError } from "./listen-error.ts";
import { logLine, type Log } from "./log.ts";
import { MemoryBroker } from "./memory-broker.ts";
import { SignalingService } from "./service.ts";
import { startStunResponder, type StunResponder } from "./stun.ts";

export interface ServerOptions {
  host: string;
  /** 0 picks a free port; RunningServer.port tells which. */
  port: number;
  /** PEM certificate (chain) and key; null serves plaintext. */
  tls: { cert: string | Buffer; key: string | Buffer } | null;
  /** UDP port of the STUN responder: null disables it, 0 picks a free port. */
  stunPort: number | null;
  /**
   * The responder's second port, for peers' NAT tests (RFC 5780 CHANGE-REQUEST): undefined tries
   * stunPort + 1 (a free one when stunPort is 0) and goes without if it is taken; null: none.
   */
  stunAltPort?: number | null;
  /** The host put in the STUN URL instead of the one each client dialled. */
  publicHost?: string;
  turn?: TurnConfig;
  /** How long a peer may be without a Subscribe stream before it expires (default 30 s). */
  sessionGraceMs?: number;
  /** Undelivered messages per recipient before senders get RESOURCE_EXHAUSTED (default 1000). */
  maxQueue?: number;
  /** Receives one line per event; silent by default. */
  log?: Log;
  /** Defaults to a MemoryBroker built from sessionGraceMs and maxQueue. Closed by shutdown(). */
  broker?: Broker;
}

export interface RunningServer {
  /** The bound gRPC port. */
  readonly port: number;
  /** The bound STUN UDP port, or null when STUN is disabled. */
  readonly stunPort: number | null;
  readonly stunAltPort: number | null;
  /**
   * Ends every Subscribe stream with UNAVAILABLE, lets unary calls finish for up to `graceMs`,
   * then closes connections, the STUN socket and the broker. Safe to call more than once.
   */
  shutdown(graceMs?: number): Promise<void>;
}

export const DEFAULT_SHUTDOWN_GRACE_MS = 5_000;

const CHANNEL_OPTIONS: grpc.ServerOptions = {
  // Pings find connections that died without a FIN (NAT timeouts, sleeping laptops), so their
  // streams end and their peers' grace periods start. grpc-js servers enforce no client ping
  // policy, so clients' own keepalive pings (with or without calls) are always accepted.
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  // The largest valid request is a 64 KiB SDP or text plus framing; refuse anything far beyond.
  "grpc.max_receive_message_length": 256 * 1024,
};

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  checkTurn(options.turn);
  const log = options.log ?? (() => {});
  const broker = options.broker ?? defaultBroker(options, log);
  let stun: StunResponder | null = null;
  try {
    stun = options.stunPort === null ? null : await startStun(options.host, options.stunPort, options.stunAltPort, log);
    const stunPort = stun?.port ?? null;
    const stunAltPort = stun?.altPort ?? null;
    const service = new SignalingService({
      broker,
      log,
      iceServers: (authority, peer) =>
        iceServersFor({ stunPort, stunAltPort, publicHost: options.publicHost, listenHost: options.host, turn: options.turn }, authority, peer.peerId),
    });
    const server = new grpc.Server(CHANNEL_OPTIONS);
    server.addService(SignalingServiceService, service.handlers);
    const port = await bind(server, options.host, options.port, serverCredentials(options.tls));
    const responder = stun;
    const stopStun = async () => responder?.close();
    let stopping: Promise<void> | undefined;
    return {
      port,
      stunPort,
      stunAltPort,
      shutdown: (graceMs = DEFAULT_SHUTDOWN_GRACE_MS) => {
        stopping ??= shutdown({ server, service, broker, stopStun, log }, graceMs);
        return stopping;
      },
    };
  } catch (err) {
    await stun?.close();
    if (!options.broker) await broker.close();
    throw err;
  }
}

function defaultBroker(options: ServerOptions, log: Log): Broker {
  return new MemoryBroker({
    sessionGraceMs: options.sessionGraceMs,
    maxQueue: options.maxQueue,
    onExpire: (peer) => log(logLine("expire", { room: peer.room, peer: peer.peerId, reason: "expired" })),
  });
}

function checkTurn(turn: TurnConfig | undefined): void {
  if (!turn) return;
  if (turn.urls.length === 0) throw new Error("TURN is configured without URLs");
  if (!turn.secret && !(turn.user && turn.password)) {
    throw new Error("TURN needs credentials: a shared secret, or a user and a password");
  }
}

async function startStun(host: string, port: number, altPort: number | null | undefined, log: Log): Promise<StunResponder> {
  if (altPort === undefined) {
    const fallback = port === 0 ? 0 : port + 1;
    const both = await startStunResponder({ host, port, altPort: fallback, log }).catch(() => undefined);
    if (both) return both;
    log(logLine("stun-alt-unavailable", { port: fallback }));
  }
  try {
    return await startStunResponder({ host, port, altPort: altPort ?? null, log });
  } catch (err) {
    throw toListenError(err, "udp", host, port);
  }
}

function serverCredentials(tls: ServerOptions["tls"]): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  const keyCertPair = { cert_chain: Buffer.from(tls.cert), private_key: Buffer.from(tls.key) };
  return grpc.ServerCredentials.createSsl(null, [keyCertPair], false);
}

function bind(server: grpc.Server, host: string, port: number, credentials: grpc.ServerCredentials): Promise<number> {
  const address = isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (err, boundPort) => {
      if (!err) return resolve(boundPort);
      server.forceShutdown();
      reject(toListenError(err, "tcp", host, port));
    });
  });
}

interface Parts {
  server: grpc.Server;
  service: SignalingService;
  broker: Broker;
  stopStun: () => Promise<void>;
  log: Log;
}

async function shutdown({ server, service, broker, stopStun, log }: Parts, graceMs: number): Promise<void> {
  log(logLine("shutdown", { streams: service.openStreams }));
  // tryShutdown waits for every open call, and a Subscribe stream never ends on its own.
  service.close();
  const graceful = await stopGrpc(server, graceMs);
  if (!graceful) log(logLine("shutdown-forced", { after: `${graceMs}ms` }));
  await Promise.all([stopStun(), broker.close()]);
}

/** Resolves true if every call finished within `graceMs`, false if connections were cut. */
function stopGrpc(server: grpc.Server, graceMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve(false);
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
