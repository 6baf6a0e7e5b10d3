// The server's command line, as a pure function of argv and environment: no I/O, no process.
// Every flag can also come from ICE_TEST_<FLAG_IN_UPPER_SNAKE>; a flag on the command line wins.
// Secrets may also come from TURN_SECRET and TURN_PASSWORD, which keeps them out of `ps`.
import { isIP } from "node:net";
import { parseFlags, renderHelp, UsageError, type CommandSpec, type Env, type FlagSpec, type Given, type ParsedFlags, type ParseContext } from "../core/flags.ts";
import type { AuthConfig } from "./auth.ts";
import type { TurnConfig } from "./ice-servers.ts";
import { DEFAULT_BROKER_LIMITS, DEFAULT_CONNECTION_LIMITS, MIB, type BrokerLimits, type ConnectionLimits } from "./limits.ts";

export { envName, UsageError, type Env } from "../core/flags.ts";

export type TlsMode =
  | { kind: "files"; certFile: string; keyFile: string }
  /** `hosts` are added to the certificate's names; `certOut` receives its PEM for clients' --ca. */
  | { kind: "self-signed"; hosts: string[]; certOut?: string }
  | { kind: "insecure" };

export interface ServerCliOptions {
  host: string;
  port: number;
  tls: TlsMode;
  /** null: STUN disabled. */
  stunPort: number | null;
  /** The STUN responder's second port; undefined: the STUN port + 1 if free; null: none. */
  stunAltPort?: number | null;
  publicHost?: string;
  turn?: TurnConfig;
  sessionGraceMs?: number;
  maxQueue?: number;
  /** Only the limits given; the others keep their defaults (limits.ts). */
  limits: Partial<BrokerLimits & ConnectionLimits>;
  /** Undefined: open to everyone. */
  auth?: CliAuth;
  /** Undefined: the in-memory broker. */
  redis?: string;
  ops: OpsOptions;
}

/** Operations: client certificates, metrics, logs, shutdown. */
export interface OpsOptions {
  /** PEM CA file: clients must present a certificate it signed (mutual TLS). */
  tlsClientCa?: string;
  /** undefined: no metrics endpoint. */
  metricsPort?: number;
  metricsHost: string;
  /** undefined: text on a terminal, JSON otherwise. */
  logFormat?: "json" | "text";
  logLevel: "debug" | "info" | "warn" | "error";
  shutdownGraceMs: number;
}

/** AuthConfig with the public key still a file name: main.ts reads it. */
export type CliAuth = Omit<AuthConfig, "jwtPublicKey"> & { jwtPublicKeyFile?: string };

export type ServerCommand = { kind: "help" } | { kind: "version" } | { kind: "run"; options: ServerCliOptions };

export const DEFAULT_HOST = "0.0.0.0";
export const DEFAULT_PORT = 443;
export const DEFAULT_STUN_PORT = 3478;
export const DEFAULT_METRICS_HOST = "127.0.0.1";
export const DEFAULT_SHUTDOWN_GRACE_MS = 5_000;

const TLS_CHOICES = "--tls-cert FILE --tls-key FILE, --self-signed (development) or --insecure (plaintext)";
const SERVING = "Serving (choose exactly one)";
const LIMITS = "Limits (a refusal is RESOURCE_EXHAUSTED naming the flag)";
const ACCESS = "Access control (open by default)";
const OPERATIONS = "Operations (SIGHUP, or a change to the --tls-cert/--tls-key/--tls-client-ca files, reloads them)";

/** The server's flags: adding one is one entry here, and --help follows. */
export const SERVER_FLAGS: readonly FlagSpec[] = [
  { name: "tls-cert", kind: "string", value: "FILE", section: SERVING, synopsis: "--tls-cert FILE --tls-key FILE", help: "TLS with these PEM files" },
  { name: "tls-key", kind: "string", value: "FILE", section: SERVING, hidden: true, help: "" },
  { name: "self-signed", kind: "boolean", section: SERVING, help: "TLS with a fresh self-signed certificate (development)" },
  { name: "cert-out", kind: "string", value: "FILE", section: SERVING, synopsis: "  --cert-out FILE", help: "write that certificate, for peers' --ca FILE" },
  { name: "tls-host", kind: "list", value: "NAME", section: SERVING, synopsis: "  --tls-host NAME", help: "add a name or address to it (repeatable; localhost,\n127.0.0.1 and ::1 are always in)" },
  { name: "insecure", kind: "boolean", section: SERVING, help: "plaintext gRPC: what the old Go tool's http:// peers need" },
  { name: "host", kind: "string", value: "HOST", help: "address to listen on", default: DEFAULT_HOST },
  { name: "port", kind: "string", value: "N", help: "gRPC port (0 picks a free one)", default: String(DEFAULT_PORT) },
  { name: "stun-port", kind: "string", value: "N", help: "STUN UDP port (0 picks a free one)", default: String(DEFAULT_STUN_PORT) },
  { name: "no-stun", kind: "boolean", help: "no STUN responder" },
  { name: "stun-alt-port", kind: "string", value: "N", help: "second STUN port, for peers' NAT tests\n(default: STUN port + 1 when free)" },
  { name: "no-stun-alt", kind: "boolean", help: "no second STUN port" },
  { name: "public-host", kind: "string", value: "HOST", help: "host for the STUN URL given to peers\n(default: the host they dialled)" },
  { name: "turn", kind: "list", value: "URL", help: "TURN server to recommend, e.g. turn:turn.example.org:3478\n(repeatable)" },
  { name: "turn-secret", kind: "string", value: "S", help: "coturn --static-auth-secret: mint per-peer credentials", alsoEnv: ["TURN_SECRET"] },
  { name: "turn-user", kind: "string", value: "U", help: "static TURN user name" },
  { name: "turn-password", kind: "string", value: "P", help: "static TURN password", alsoEnv: ["TURN_PASSWORD"] },
  { name: "redis", kind: "string", value: "URL", help: "share rooms with the other instances using this Redis\n(redis://[:password@]host:6379[/db]); default: this process only" },
  // Limits (server/limits.ts): every refusal names its flag.
  ...limitFlags(),
  // Access control (server/auth.ts).
  { name: "api-key", kind: "list", value: "KEY", section: ACCESS, help: "require this key in every call's x-api-key (repeatable;\nthe variable takes a comma-separated list)" },
  { name: "jwt-secret", kind: "string", value: "S", section: ACCESS, help: "verify tokens (JWT, HS256) with this secret" },
  { name: "jwt-public-key", kind: "string", value: "FILE", section: ACCESS, help: "verify tokens (JWT: RS256, ES256, EdDSA) with this PEM key" },
  { name: "require-token", kind: "boolean", section: ACCESS, help: "every room needs a token with its name (or \"*\") in \"room\"" },
  { name: "token-room", kind: "list", value: "ROOM", section: ACCESS, help: "this room needs a token (repeatable)" },
  // Operations (server/metrics.ts, log.ts, shutdown.ts, tls-reload.ts).
  { name: "tls-client-ca", kind: "string", value: "FILE", section: OPERATIONS, help: "require client certificates signed by this CA (mutual TLS)" },
  { name: "metrics-port", kind: "string", value: "N", section: OPERATIONS, help: "serve Prometheus metrics at http://HOST:N/metrics (default: none)" },
  { name: "metrics-host", kind: "string", value: "HOST", section: OPERATIONS, help: "address for the metrics port", default: DEFAULT_METRICS_HOST },
  { name: "log-format", kind: "string", value: "json|text", section: OPERATIONS, help: "log lines as JSON or as text (default: text on a terminal,\nelse JSON)" },
  { name: "log-level", kind: "string", value: "LEVEL", section: OPERATIONS, help: "debug, info, warn or error", default: "info" },
  { name: "shutdown-grace", kind: "string", value: "SECONDS", section: OPERATIONS, help: "after SIGTERM/SIGINT, how long calls may finish before\nconnections are cut", default: String(DEFAULT_SHUTDOWN_GRACE_MS / 1000) },
];

function limitFlags(): FlagSpec[] {
  const b = DEFAULT_BROKER_LIMITS;
  const c = DEFAULT_CONNECTION_LIMITS;
  const flag = (name: string, value: string, help: string, fallback: number | string): FlagSpec => ({ name, kind: "string", value, section: LIMITS, help, default: String(fallback) });
  return [
    flag("max-queue", "N", "events held per peer (undelivered, and kept for resume)\nbefore senders are refused", b.peerEvents),
    flag("max-queue-bytes", "SIZE", "bytes held per peer (SIZE: 65536, 512K, 4M)", `${b.peerBytes / MIB}M`),
    flag("max-room-events", "N", "undelivered joins and leaves per peer: joining a room\nwhere someone holds this many is refused", b.roomEvents),
    flag("max-total-bytes", "SIZE", "bytes held for all peers together", `${b.totalBytes / MIB}M`),
    flag("resume-events", "N", "events kept per peer after delivery, for a resume", b.retainEvents),
    flag("max-room-peers", "N", "peers in one room", b.peersPerRoom),
    flag("max-registrations-per-address", "N", "registrations from one client IP address", b.registrationsPerAddress),
    flag("max-registrations", "N", "registrations on the server", b.registrations),
    flag("send-rate", "N", "messages per second one peer may send on average", b.sendRate),
    flag("send-burst", "N", "messages one peer may send at once", b.sendBurst),
    flag("session-grace", "SECONDS", "how long a peer may be without its stream before it\nexpires (others get peer_left)", b.sessionGraceMs / 1000),
    flag("heartbeat", "SECONDS", "heartbeat events and keepalive pings this often; a ping\nunanswered as long ends the connection, a stream unread\nfor 3 heartbeats is ended", c.heartbeatMs / 1000),
    flag("max-streams-per-connection", "N", "concurrent calls on one connection", c.maxConcurrentStreams),
    flag("max-connections-per-address", "N", "open connections from one client IP address", c.connectionsPerAddress),
    flag("connection-idle", "SECONDS", "close connections without a call for this long", c.connectionIdleMs / 1000),
    flag("request-timeout", "SECONDS", "refuse calls whose request has not arrived by then", c.requestTimeoutMs / 1000),
  ];
}

const SERVER_COMMAND: CommandSpec = {
  usage: "(--tls-cert FILE --tls-key FILE | --self-signed | --insecure) [options]",
  about:
    "The signaling server of ice-test: peers meet in rooms and relay offers, answers and ICE candidates.\nIt also answers STUN Binding requests on a UDP port, so peers can learn their public address.",
  flags: SERVER_FLAGS,
  guessFlag: (word) => (/^\d{1,5}$/.test(word) ? "port" : undefined),
  footer: "Exit status: 0 after SIGINT/SIGTERM, 1 on a runtime error, 2 on a usage error.",
};

export const DEFAULT_PROGRAM = "ice-test server";

/** --help for the program as the user started it. */
export function serverUsage(program = DEFAULT_PROGRAM): string {
  return renderHelp(SERVER_COMMAND, program);
}

export const USAGE = serverUsage();

export function parseServerCommand(argv: readonly string[], env: Env, context: ParseContext = { program: DEFAULT_PROGRAM }): ServerCommand {
  const input = parseFlags(SERVER_COMMAND, argv, env, context);
  if (input.help) return { kind: "help" };
  if (input.version) return { kind: "version" };
  const noStun = input.on("no-stun");
  const stunPort = input.get("stun-port");
  if (noStun && stunPort) throw new UsageError(`--no-stun contradicts ${stunPort.name}: choose one`);
  const port = parsePort(input.get("port")) ?? DEFAULT_PORT;
  return {
    kind: "run",
    options: {
      host: parseHost(input.get("host")) ?? DEFAULT_HOST,
      port,
      tls: parseTlsMode(input, argv, context.program, port),
      stunPort: noStun ? null : (parsePort(stunPort) ?? DEFAULT_STUN_PORT),
      ...stunAltPort(input, noStun),
      publicHost: parseHost(input.get("public-host")),
      turn: parseTurn(input),
      sessionGraceMs: parseSeconds(input.get("session-grace")),
      maxQueue: parsePositiveInteger(input.get("max-queue")),
      limits: parseLimits(input),
      auth: parseAuth(input),
      redis: parseRedisUrl(input.get("redis")),
      ops: parseOps(input),
    },
  };
}

function parseLimits(input: ParsedFlags): Partial<BrokerLimits & ConnectionLimits> {
  const count = (flag: string) => parsePositiveInteger(input.get(flag));
  const size = (flag: string) => parseSize(input.get(flag));
  const seconds = (flag: string) => parseSeconds(input.get(flag));
  const limits: Partial<BrokerLimits & ConnectionLimits> = {
    peerBytes: size("max-queue-bytes"),
    roomEvents: count("max-room-events"),
    totalBytes: size("max-total-bytes"),
    retainEvents: count("resume-events"),
    peersPerRoom: count("max-room-peers"),
    registrationsPerAddress: count("max-registrations-per-address"),
    registrations: count("max-registrations"),
    sendRate: count("send-rate"),
    sendBurst: count("send-burst"),
    heartbeatMs: seconds("heartbeat"),
    maxConcurrentStreams: count("max-streams-per-connection"),
    connectionsPerAddress: count("max-connections-per-address"),
    connectionIdleMs: seconds("connection-idle"),
    requestTimeoutMs: seconds("request-timeout"),
  };
  return Object.fromEntries(Object.entries(limits).filter(([, value]) => value !== undefined));
}

function stunAltPort(input: ParsedFlags, noStun: boolean): Pick<ServerCliOptions, "stunAltPort"> {
  const port = input.get("stun-alt-port");
  const off = input.on("no-stun-alt") || noStun;
  if (off && port) throw new UsageError(`--no-stun-alt and --no-stun contradict ${port.name}: choose one`);
  if (off) return { stunAltPort: null };
  const parsed = parsePort(port);
  return parsed === undefined ? {} : { stunAltPort: parsed };
}

function parseOps(input: ParsedFlags): OpsOptions {
  const tlsClientCa = input.get("tls-client-ca");
  if (tlsClientCa && input.on("insecure")) throw new UsageError("--tls-client-ca needs TLS: it cannot go with --insecure");
  const metricsPort = input.get("metrics-port");
  const metricsHost = input.get("metrics-host");
  if (metricsHost && !metricsPort) throw new UsageError(`${metricsHost.name} needs --metrics-port N`);
  return {
    tlsClientCa: tlsClientCa?.value,
    metricsPort: parsePort(metricsPort),
    metricsHost: parseHost(metricsHost) ?? DEFAULT_METRICS_HOST,
    logFormat: parseChoice(input.get("log-format"), ["json", "text"] as const),
    logLevel: parseChoice(input.get("log-level"), ["debug", "info", "warn", "error"] as const) ?? "info",
    shutdownGraceMs: parseSeconds(input.get("shutdown-grace")) ?? DEFAULT_SHUTDOWN_GRACE_MS,
  };
}

function parseChoice<T extends string>(given: Given<string> | undefined, choices: readonly T[]): T | undefined {
  if (!given) return undefined;
  const choice = choices.find((candidate) => candidate === given.value);
  if (choice) return choice;
  throw new UsageError(`Invalid ${given.name} "${given.value}": use ${choices.join(", ")}`);
}

function parseAuth(input: ParsedFlags): CliAuth | undefined {
  const apiKeys = input.list("api-key")?.value;
  const jwtSecret = input.get("jwt-secret")?.value;
  const jwtPublicKeyFile = input.get("jwt-public-key")?.value;
  const requireToken = input.on("require-token");
  const tokenRooms = input.list("token-room")?.value;
  if (jwtSecret && jwtPublicKeyFile) throw new UsageError("Choose --jwt-secret or --jwt-public-key, not both");
  const verifies = jwtSecret !== undefined || jwtPublicKeyFile !== undefined;
  if ((requireToken || tokenRooms) && !verifies) {
    throw new UsageError(`${requireToken ? "--require-token" : "--token-room"} needs a way to verify tokens: --jwt-secret S or --jwt-public-key FILE`);
  }
  if (!apiKeys && !verifies) return undefined;
  return { apiKeys, jwtSecret, jwtPublicKeyFile, requireToken, tokenRooms };
}

function parseRedisUrl(given: Given<string> | undefined): string | undefined {
  if (!given) return undefined;
  if (/^rediss?:\/\/[^\s/]+/.test(given.value)) return given.value;
  throw new UsageError(`Invalid ${given.name} "${given.value}": use a URL like redis://127.0.0.1:6379 (rediss:// for TLS)`);
}

/** Bytes, with an optional K or M (powers of 1024). */
function parseSize(given: Given<string> | undefined): number | undefined {
  if (!given) return undefined;
  const match = /^(\d+)\s*([KkMmGg])?(i?B)?$/.exec(given.value.trim());
  const value = match ? Number(match[1]) * ({ k: 1024, m: MIB, g: 1024 * MIB }[match[2]?.toLowerCase() ?? ""] ?? 1) : 0;
  if (value >= 1) return value;
  throw new UsageError(`Invalid ${given.name} "${given.value}": use a size in bytes such as 65536, 512K or 4M`);
}

function parseTlsMode(input: ParsedFlags, argv: readonly string[], program: string, port: number): TlsMode {
  const certFile = input.get("tls-cert");
  const keyFile = input.get("tls-key");
  const selfSigned = input.on("self-signed");
  const insecure = input.on("insecure");
  const chosen = [certFile || keyFile ? "--tls-cert/--tls-key" : "", selfSigned ? "--self-signed" : "", insecure ? "--insecure" : ""].filter(Boolean);
  if (chosen.length === 0) throw noServingMode(argv, program, port);
  if (chosen.length > 1) throw new UsageError(`Choose one way to serve, not ${chosen.join(" and ")}: ${TLS_CHOICES}`);
  const certOut = input.get("cert-out");
  const hosts = input.list("tls-host");
  const selfSignedOnly = certOut ?? hosts;
  if (!selfSigned && selfSignedOnly) throw new UsageError(`${selfSignedOnly.name} only goes with --self-signed`);
  if (selfSigned) return { kind: "self-signed", hosts: hosts?.value ?? [], certOut: certOut?.value };
  if (insecure) return { kind: "insecure" };
  if (!certFile || !keyFile) throw new UsageError("--tls-cert and --tls-key go together: give both PEM files");
  return { kind: "files", certFile: certFile.value, keyFile: keyFile.value };
}

function parseTurn(input: ParsedFlags): TurnConfig | undefined {
  const urls = input.list("turn");
  // The bare TURN_* variables are read only when TURN is asked for: they may be set for other tools.
  const secret = input.get("turn-secret", ...(urls ? ["TURN_SECRET"] : []));
  const user = input.get("turn-user");
  const password = input.get("turn-password", ...(urls ? ["TURN_PASSWORD"] : []));
  if (!urls) {
    const stray = secret ?? user ?? password;
    if (stray) throw new UsageError(`${stray.name} needs --turn URL`);
    return undefined;
  }
  for (const url of urls.value) {
    if (!/^turns?:[^\s]+$/.test(url)) {
      throw new UsageError(`Invalid ${urls.name} "${url}": a TURN URL looks like turn:turn.example.org:3478 or turns:host:5349`);
    }
  }
  if (secret && (user || password)) throw new UsageError("Choose --turn-secret or --turn-user with --turn-password, not both");
  if (secret) return { urls: urls.value, secret: secret.value };
  if (user && password) return { urls: urls.value, user: user.value, password: password.value };
  if (user || password) throw new UsageError("--turn-user and --turn-password go together (the password may come from TURN_PASSWORD)");
  throw new UsageError("--turn needs credentials: --turn-secret S (coturn --use-auth-secret), or --turn-user U with --turn-password P");
}

function parseHost(given: Given<string> | undefined): string | undefined {
  if (!given) return undefined;
  const host = given.value.replace(/^\[(.*)\]$/, "$1");
  if (isIP(host) !== 0 || /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) return host;
  throw new UsageError(`Invalid ${given.name} "${given.value}": use a host name or an IP address`);
}

function parsePort(given: Given<string> | undefined): number | undefined {
  if (!given) return undefined;
  const port = Number(given.value);
  if (/^\d+$/.test(given.value) && port <= 65535) return port;
  throw new UsageError(`Invalid ${given.name} "${given.value}": use a port number from 0 to 65535`);
}

function parseSeconds(given: Given<string> | undefined): number | undefined {
  if (!given) return undefined;
  const seconds = Number(given.value);
  if (given.value.trim() !== "" && Number.isFinite(seconds) && seconds > 0) return Math.max(1, Math.round(seconds * 1000));
  throw new UsageError(`Invalid ${given.name} "${given.value}": use a number of seconds greater than 0`);
}

function parsePositiveInteger(given: Given<string> | undefined): number | undefined {
  if (!given) return undefined;
  const value = Number(given.value);
  if (/^\d+$/.test(given.value) && value >= 1) return value;
  throw new UsageError(`Invalid ${given.name} "${given.value}": use a whole number of at least 1`);
}

/** The three commands that would work, each starting with what the user already typed. */
function noServingMode(argv: readonly string[], program: string, port: number): UsageError {
  const typed = [program, ...argv.map(shellWord)].join(" ");
  const choices = [
    [`${typed} --tls-cert cert.pem --tls-key key.pem`, "TLS; peers use https://"],
    [`${typed} --self-signed --cert-out ca.pem`, "TLS for tests; peers use https:// with --ca ca.pem"],
    [`${typed} --insecure`, "plaintext; peers use http://, as the old Go tool's did"],
  ] as const;
  const width = Math.max(...choices.map(([command]) => command.length));
  return new UsageError(`Choose how to serve on port ${port}, one of:`, choices.map(([command, what]) => `${command.padEnd(width)}   # ${what}`));
}

function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
}
