// Assembles the signaling server: STUN responder, broker, gRPC service, and an orderly shutdown.
import * as grpc from "@grpc/grpc-js";
import { isIP } from "node:net";
import { Access, type AuthConfig } from "./auth.ts";
import type { Broker } from "./broker.ts";
import { logRefusals } from "./call-log.ts";
import { limitConnectionsPerAddress } from "./connection-limit.ts";
import { Health } from "./health.ts";
import { iceServersFor, type TurnConfig } from "./ice-servers.ts";
import { withFastEncoding } from "./encoded-event.ts";
import { toListenError } from "./listen-error.ts";
import { CallTracker, type CallObserver } from "./instrument.ts";
import { logLine, type Log } from "./log.ts";
import { DEFAULT_CONNECTION_LIMITS, definedOnly, type BrokerLimits, type ConnectionLimits } from "./limits.ts";
import { MemoryBroker } from "./memory-broker.ts";
import { Metrics, serveMetrics, type MetricsEndpoint } from "./metrics.ts";
import { RedisBroker } from "./redis-broker.ts";
import { redact } from "./redis-connection.ts";
import { addReflection } from "./reflection.ts";
import { SignalingService } from "./service.ts";
import { startStunResponder, type StunResponder } from "./stun.ts";
import { ReloadableServerCredentials, type ServerTls } from "./tls-credentials.ts";
import { withUtf8Check } from "./utf8.ts";

export interface ServerOptions {
  host: string;
  /** 0 picks a free port; RunningServer.port tells which. */
  port: number;
  /** PEM certificate (chain) and key, and a client CA for mutual TLS; null serves plaintext. */
  tls: ServerTls | null;
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
  /** Bounds of the broker and of connections; each one left out takes its default (limits.ts). */
  limits?: Partial<BrokerLimits & ConnectionLimits>;
  /** API keys and tokens; the server is open without. */
  auth?: AuthConfig;
  /** Receives one entry per event; silent by default. */
  log?: Log;
  /** Prometheus metrics at http://host:port/metrics; none by default. Port 0 picks a free one. */
  metrics?: { host: string; port: number };
  /** Defaults to a MemoryBroker built from sessionGraceMs and maxQueue. Closed by shutdown(). */
  broker?: Broker;
  /** Without `broker`: a RedisBroker on this URL (instances with the same Redis share rooms). */
  redis?: string;
  /** Its key prefix (tests keep instances apart with it). */
  redisPrefix?: string;
}

export interface RunningServer {
  /** The bound gRPC port. */
  readonly port: number;
  /** The bound STUN UDP port, or null when STUN is disabled. */
  readonly stunPort: number | null;
  /** The bound metrics port, or null without metrics. */
  readonly metricsPort: number | null;
  /** New TLS connections get `tls`; open ones keep theirs. Throws on a plaintext server. */
  reloadTls(tls: ServerTls): void;
  readonly stunAltPort: number | null;
  /**
   * Ends every Subscribe stream with UNAVAILABLE, lets unary calls finish for up to `graceMs`,
   * then closes connections, the STUN socket and the broker. Safe to call more than once.
   */
  shutdown(graceMs?: number): Promise<void>;
}

export const DEFAULT_SHUTDOWN_GRACE_MS = 5_000;

function channelOptions(limits: ConnectionLimits, calls: CallTracker): grpc.ServerOptions {
  return {
    // Pings find connections that died without a FIN (NAT timeouts, sleeping laptops, SIGSTOP), so
    // their streams end and their peers' grace periods start: a dead peer is gone within two
    // heartbeats plus the grace period. grpc-js servers enforce no client ping policy, so
    // clients' own keepalive pings (with or without calls) are always accepted.
    "grpc.keepalive_time_ms": limits.heartbeatMs,
    "grpc.keepalive_timeout_ms": limits.heartbeatMs,
    "grpc.max_connection_idle_ms": limits.connectionIdleMs,
    "grpc.max_concurrent_streams": limits.maxConcurrentStreams,
    // The largest valid request is a 64 KiB SDP or text plus framing; refuse anything far beyond.
    "grpc.max_receive_message_length": 256 * 1024,
    interceptors: [calls.interceptor],
  };
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  checkTurn(options.turn);
  const log = options.log ?? (() => {});
  const limits = { ...DEFAULT_CONNECTION_LIMITS, ...definedOnly(options.limits ?? {}) };
  const broker = options.broker ?? (options.redis ? await redisBroker(options, options.redis, log) : defaultBroker(options, log));
  let stun: StunResponder | null = null;
  let metricsEndpoint: MetricsEndpoint | null = null;
  try {
    stun = options.stunPort === null ? null : await startStun(options.host, options.stunPort, options.stunAltPort, log);
    const stunPort = stun?.port ?? null;
    const stunAltPort = stun?.altPort ?? null;
    const service = new SignalingService({
      broker,
      log,
      access: new Access(options.auth),
      timing: { heartbeatMs: limits.heartbeatMs, stallMs: 3 * limits.heartbeatMs },
      iceServers: (authority, peer) =>
        iceServersFor({ stunPort, stunAltPort, publicHost: options.publicHost, listenHost: options.host, turn: options.turn }, authority, peer.peerId),
    });
    const observers: CallObserver[] = [logRefusals(log)];
    const metrics = options.metrics ? new Metrics(broker) : null;
    if (metrics) observers.push(metrics.observer);
    const calls = new CallTracker(observers, limits.requestTimeoutMs);
    const server = new grpc.Server(channelOptions(limits, calls));
    server.addService(withFastEncoding(withUtf8Check()), service.handlers);
    const health = new Health();
    health.addTo(server);
    addReflection(server);
    const credentials = options.tls ? new ReloadableServerCredentials(options.tls) : grpc.ServerCredentials.createInsecure();
    const port = await bind(server, options.host, options.port, credentials);
    limitConnectionsPerAddress(server, limits.connectionsPerAddress, (address) =>
      log(logLine("refused", { what: "connection", from: address, limit: limits.connectionsPerAddress })),
    );
    if (metrics && options.metrics) metricsEndpoint = await serveMetrics(metrics.registry, options.metrics.host, options.metrics.port);
    const responder = stun;
    const endpoint = metricsEndpoint;
    const stopAside = async () => {
      await responder?.close();
      await endpoint?.close();
    };
    let stopping: Promise<void> | undefined;
    return {
      port,
      stunPort,
      metricsPort: endpoint?.port ?? null,
      reloadTls: (tls) => {
        if (!(credentials instanceof ReloadableServerCredentials)) throw new Error("This server serves plaintext: there is no certificate to reload");
        credentials.update(tls);
      },
      stunAltPort,
      shutdown: (graceMs = DEFAULT_SHUTDOWN_GRACE_MS) => {
        stopping ??= shutdown({ server, service, health, calls, broker, stopAside, log }, graceMs);
        return stopping;
      },
    };
  } catch (err) {
    await stun?.close();
    await metricsEndpoint?.close();
    if (!options.broker) await broker.close();
    throw err;
  }
}

function defaultBroker(options: ServerOptions, log: Log): Broker {
  return new MemoryBroker({
    sessionGraceMs: options.sessionGraceMs,
    maxQueue: options.maxQueue,
    limits: options.limits,
    onExpire: (peer) => log(logLine("expire", { room: peer.room, peer: peer.peerId, reason: "expired" })),
  });
}

async function redisBroker(options: ServerOptions, url: string, log: Log): Promise<Broker> {
  const broker = await RedisBroker.connect({
    url,
    prefix: options.redisPrefix,
    limits: {
      ...(options.sessionGraceMs !== undefined ? { sessionGraceMs: options.sessionGraceMs } : {}),
      ...(options.maxQueue !== undefined ? { peerEvents: options.maxQueue } : {}),
      ...definedOnly(options.limits ?? {}),
    },
    onExpire: (peer, reason) => log(logLine("expire", { room: peer.room, peer: peer.peerId, reason })),
    onRedisState: (state, detail) => log(logLine(state, { url: redact(url), ...(detail ? { error: detail } : {}) })),
  });
  log(logLine("broker", { kind: "redis", url: redact(url), instance: broker.instanceId }));
  return broker;
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
  health: Health;
  calls: CallTracker;
  broker: Broker;
  /** The STUN responder and the metrics endpoint. */
  stopAside: () => Promise<void>;
  log: Log;
}

async function shutdown({ server, service, health, calls, broker, stopAside, log }: Parts, graceMs: number): Promise<void> {
  log(logLine("shutdown", { streams: service.openStreams }));
  health.draining();
  // tryShutdown waits for every open call, and a stream never ends on its own: the service ends
  // its Subscribe streams with their log lines, then any other stream (health Watch) is ended.
  service.close();
  calls.endStreams(grpc.status.UNAVAILABLE, "Server is shutting down");
  const graceful = await stopGrpc(server, graceMs);
  if (!graceful) log(logLine("shutdown-forced", { after: `${graceMs}ms` }));
  await Promise.all([stopAside(), broker.close()]);
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
