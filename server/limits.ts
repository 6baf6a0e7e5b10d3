// Every bound of the server, with its default and the flag that sets it. The defaults let a lab or
// a team share one public server; each is a flag (see options.ts) because a server for a class or
// a load test needs other numbers. Refusal messages name the flag, so the person who hits a limit
// and the operator who set it speak of the same thing.

/** The limits a Broker enforces (see broker.ts for their exact semantics). */
export interface BrokerLimits {
  /** Events (undelivered plus retained for resume) one peer may hold. */
  readonly peerEvents: number;
  /** Their bytes (encoded SubscribeResponse size). */
  readonly peerBytes: number;
  /** Undelivered room events (peer_joined, peer_left) one peer may hold: their own share. */
  readonly roomEvents: number;
  /** Bytes held for all peers together. */
  readonly totalBytes: number;
  /** Events handed out to a stream that are kept for a resume. */
  readonly retainEvents: number;
  readonly peersPerRoom: number;
  /** Live registrations from one client IP address. */
  readonly registrationsPerAddress: number;
  /** Live registrations on the server. */
  readonly registrations: number;
  /** Messages per second one peer may send, on average… */
  readonly sendRate: number;
  /** …and in one burst (a whole trickle of candidates). */
  readonly sendBurst: number;
  /** How long a peer may be without an open stream before it expires. */
  readonly sessionGraceMs: number;
}

/** The limits of connections and calls, enforced by the gRPC layer (server.ts). */
export interface ConnectionLimits {
  /** Concurrent calls on one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
  readonly maxConcurrentStreams: number;
  /** Open TCP connections from one client IP address. */
  readonly connectionsPerAddress: number;
  /** A connection with no call for this long is closed (GOAWAY). */
  readonly connectionIdleMs: number;
  /** A call whose request has not fully arrived after this long is cancelled (half-sent calls). */
  readonly requestTimeoutMs: number;
  /** Heartbeat events on every stream, and keepalive pings, this often; a ping unanswered for as long ends the connection. */
  readonly heartbeatMs: number;
}

export const MIB = 1024 * 1024;

export const DEFAULT_BROKER_LIMITS: BrokerLimits = {
  peerEvents: 1000,
  peerBytes: 4 * MIB,
  roomEvents: 256,
  totalBytes: 256 * MIB,
  retainEvents: 512,
  peersPerRoom: 100,
  registrationsPerAddress: 200,
  registrations: 10_000,
  sendRate: 50,
  sendBurst: 200,
  sessionGraceMs: 5_000,
};

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxConcurrentStreams: 100,
  connectionsPerAddress: 100,
  connectionIdleMs: 5 * 60_000,
  requestTimeoutMs: 10_000,
  heartbeatMs: 5_000,
};

/** The command-line flag of each limit. */
export const LIMIT_FLAGS: Record<keyof BrokerLimits | keyof ConnectionLimits, string> = {
  peerEvents: "--max-queue",
  peerBytes: "--max-queue-bytes",
  roomEvents: "--max-room-events",
  totalBytes: "--max-total-bytes",
  retainEvents: "--resume-events",
  peersPerRoom: "--max-room-peers",
  registrationsPerAddress: "--max-registrations-per-address",
  registrations: "--max-registrations",
  sendRate: "--send-rate",
  sendBurst: "--send-burst",
  sessionGraceMs: "--session-grace",
  maxConcurrentStreams: "--max-streams-per-connection",
  connectionsPerAddress: "--max-connections-per-address",
  connectionIdleMs: "--connection-idle",
  requestTimeoutMs: "--request-timeout",
  heartbeatMs: "--heartbeat",
};

/** "limit 1000 (--max-queue)": how refusals name a limit. */
export function describeLimit(limit: keyof typeof LIMIT_FLAGS, value: number): string {
  return `limit ${formatValue(limit, value)} (${LIMIT_FLAGS[limit]})`;
}

function formatValue(limit: keyof typeof LIMIT_FLAGS, value: number): string {
  if (/Bytes$/.test(limit)) return value % MIB === 0 ? `${value / MIB} MiB` : `${value} bytes`;
  if (/Ms$/.test(limit)) return `${value / 1000} s`;
  if (limit === "sendRate") return `${value} messages/s`;
  return String(value);
}

/** The given values without the undefined ones, to spread over defaults. */
export function definedOnly<T extends object>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined)) as Partial<T>;
}
