// The server's command line, as a pure function of argv and environment: no I/O, no process.
// Every flag can also come from ICE_TEST_<FLAG_IN_UPPER_SNAKE>; a flag on the command line wins.
// Secrets may also come from TURN_SECRET and TURN_PASSWORD, which keeps them out of `ps`.
import { isIP } from "node:net";
import { parseFlags, renderHelp, UsageError, type CommandSpec, type Env, type FlagSpec, type Given, type ParsedFlags, type ParseContext } from "../core/flags.ts";
import type { TurnConfig } from "./ice-servers.ts";

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
  publicHost?: string;
  turn?: TurnConfig;
  sessionGraceMs?: number;
  maxQueue?: number;
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

export type ServerCommand = { kind: "help" } | { kind: "version" } | { kind: "run"; options: ServerCliOptions };

export const DEFAULT_HOST = "0.0.0.0";
export const DEFAULT_PORT = 443;
export const DEFAULT_STUN_PORT = 3478;
export const DEFAULT_METRICS_HOST = "127.0.0.1";
export const DEFAULT_SHUTDOWN_GRACE_MS = 5_000;

const TLS_CHOICES = "--tls-cert FILE --tls-key FILE, --self-signed (development) or --insecure (plaintext)";
const SERVING = "Serving (choose exactly one)";
const OPERATIONS = "Operations";

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
  { name: "public-host", kind: "string", value: "HOST", help: "host for the STUN URL given to peers\n(default: the host they dialled)" },
  { name: "turn", kind: "list", value: "URL", help: "TURN server to recommend, e.g. turn:turn.example.org:3478\n(repeatable)" },
  { name: "turn-secret", kind: "string", value: "S", help: "coturn --static-auth-secret: mint per-peer credentials", alsoEnv: ["TURN_SECRET"] },
  { name: "turn-user", kind: "string", value: "U", help: "static TURN user name" },
  { name: "turn-password", kind: "string", value: "P", help: "static TURN password", alsoEnv: ["TURN_PASSWORD"] },
  { name: "session-grace", kind: "string", value: "SECONDS", help: "how long a peer may be without its stream before it expires", default: "30" },
  { name: "max-queue", kind: "string", value: "N", help: "undelivered messages per peer before senders are refused", default: "1000" },
  { name: "tls-client-ca", kind: "string", value: "FILE", section: OPERATIONS, help: "require client certificates signed by this CA (mutual TLS)" },
  { name: "metrics-port", kind: "string", value: "N", section: OPERATIONS, help: "serve Prometheus metrics at http://HOST:N/metrics (default: none)" },
  { name: "metrics-host", kind: "string", value: "HOST", section: OPERATIONS, help: "address for the metrics port", default: DEFAULT_METRICS_HOST },
  { name: "log-format", kind: "string", value: "json|text", section: OPERATIONS, help: "log lines as JSON or as text\n(default: text on a terminal, else JSON)" },
  { name: "log-level", kind: "string", value: "LEVEL", section: OPERATIONS, help: "debug, info, warn or error", default: "info" },
  { name: "shutdown-grace", kind: "string", value: "SECONDS", section: OPERATIONS, help: "after SIGTERM/SIGINT, how long calls may finish\nbefore connections are cut; SIGHUP reloads the TLS files", default: String(DEFAULT_SHUTDOWN_GRACE_MS / 1000) },
];

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
      publicHost: parseHost(input.get("public-host")),
      turn: parseTurn(input),
      sessionGraceMs: parseSeconds(input.get("session-grace")),
      maxQueue: parsePositiveInteger(input.get("max-queue")),
      ops: parseOps(input, input.on("insecure")),
    },
  };
}

function parseOps(input: ParsedFlags, insecure: boolean): OpsOptions {
  const tlsClientCa = input.get("tls-client-ca");
  if (tlsClientCa && insecure) throw new UsageError("--tls-client-ca needs TLS: it cannot go with --insecure");
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
