// The server's command line, as a pure function of argv and environment: no I/O, no process.
// Every flag can also come from ICE_TEST_<FLAG_IN_UPPER_SNAKE>; a flag on the command line wins.
// Secrets may also come from TURN_SECRET and TURN_PASSWORD, which keeps them out of `ps`.
import { isIP } from "node:net";
import { parseArgs } from "node:util";
import type { TurnConfig } from "./ice-servers.ts";

export class UsageError extends Error {
  override readonly name = "UsageError";
}

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
}

export type ServerCommand = { kind: "help" } | { kind: "run"; options: ServerCliOptions };

export type Env = (name: string) => string | undefined;

export const DEFAULT_HOST = "0.0.0.0";
export const DEFAULT_PORT = 443;
export const DEFAULT_STUN_PORT = 3478;

const TLS_CHOICES = "--tls-cert FILE --tls-key FILE, --self-signed (development) or --insecure (plaintext)";

export const USAGE = `Usage: ice-test-server (--tls-cert FILE --tls-key FILE | --self-signed | --insecure) [options]

The signaling server of ice-test: peers meet in rooms and relay offers, answers and ICE candidates.
It also answers STUN Binding requests on a UDP port, so peers can learn their public address.

Serving (choose exactly one):
  --tls-cert FILE --tls-key FILE   TLS with these PEM files
  --self-signed                    TLS with a fresh self-signed certificate (development)
    --cert-out FILE                write that certificate, for clients' --ca FILE
    --tls-host NAME                add a name or address to it (repeatable; localhost,
                                   127.0.0.1 and ::1 are always in)
  --insecure                       plaintext gRPC

Options:
  --host HOST             address to listen on (default ${DEFAULT_HOST})
  --port N                gRPC port (default ${DEFAULT_PORT}; 0 picks a free one)
  --stun-port N           STUN UDP port (default ${DEFAULT_STUN_PORT}; 0 picks a free one)
  --no-stun               no STUN responder
  --stun-alt-port N       second STUN port, for peers' NAT tests (default: STUN port + 1 when free)
  --no-stun-alt           no second STUN port
  --public-host HOST      host for the STUN URL given to peers (default: the host they dialled)
  --turn URL              TURN server to recommend, e.g. turn:turn.example.org:3478 (repeatable)
  --turn-secret S         coturn --static-auth-secret: mint per-peer credentials (env TURN_SECRET)
  --turn-user U           static TURN user name
  --turn-password P       static TURN password (env TURN_PASSWORD)
  --session-grace SECONDS how long a peer may be without its stream before it expires (default 30)
  --max-queue N           undelivered messages per peer before senders are refused (default 1000)
  --help                  this text

Every flag can also be set as ICE_TEST_<FLAG>, e.g. ICE_TEST_PORT=8443 or ICE_TEST_INSECURE=1;
the command line wins. Exit status: 0 after SIGINT/SIGTERM, 1 on a runtime error, 2 on a usage error.`;

const FLAGS = {
  host: { type: "string" },
  port: { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "self-signed": { type: "boolean" },
  "cert-out": { type: "string" },
  "tls-host": { type: "string", multiple: true },
  insecure: { type: "boolean" },
  "stun-port": { type: "string" },
  "no-stun": { type: "boolean" },
  "stun-alt-port": { type: "string" },
  "no-stun-alt": { type: "boolean" },
  "public-host": { type: "string" },
  turn: { type: "string", multiple: true },
  "turn-secret": { type: "string" },
  "turn-user": { type: "string" },
  "turn-password": { type: "string" },
  "session-grace": { type: "string" },
  "max-queue": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

type Flag = keyof typeof FLAGS;
type Values = Partial<Record<Flag, string | boolean | string[]>>;

export function parseServerCommand(argv: readonly string[], env: Env): ServerCommand {
  const input = new Inputs(parseFlags(argv), env);
  if (input.bool("help")) return { kind: "help" };
  const noStun = input.bool("no-stun");
  const stunPort = input.get("stun-port");
  if (noStun && stunPort) throw new UsageError(`--no-stun contradicts ${stunPort.name}: choose one`);
  return {
    kind: "run",
    options: {
      host: parseHost(input.get("host")) ?? DEFAULT_HOST,
      port: parsePort(input.get("port")) ?? DEFAULT_PORT,
      tls: parseTlsMode(input),
      stunPort: noStun ? null : (parsePort(stunPort) ?? DEFAULT_STUN_PORT),
      ...stunAltPort(input, noStun),
      publicHost: parseHost(input.get("public-host")),
      turn: parseTurn(input),
      sessionGraceMs: parseSeconds(input.get("session-grace")),
      maxQueue: parsePositiveInteger(input.get("max-queue")),
    },
  };
}

function stunAltPort(input: Inputs, noStun: boolean): Pick<ServerCliOptions, "stunAltPort"> {
  const port = input.get("stun-alt-port");
  const off = input.bool("no-stun-alt") || noStun;
  if (off && port) throw new UsageError(`--no-stun-alt and --no-stun contradict ${port.name}: choose one`);
  if (off) return { stunAltPort: null };
  const parsed = parsePort(port);
  return parsed === undefined ? {} : { stunAltPort: parsed };
}

function parseFlags(argv: readonly string[]): Values {
  try {
    return parseArgs({ args: [...argv], options: FLAGS, strict: true, allowPositionals: false }).values;
  } catch (err) {
    // parseArgs explains at length; its first sentence is the useful part.
    const message = (err as Error).message.split(/\.\s/)[0] ?? "Invalid arguments";
    throw new UsageError(message.replace(/\.$/, ""));
  }
}

/** A value and where it came from, so a message names what the user actually typed. */
interface Given<T> {
  value: T;
  name: string;
}

/** Flag values first, then ICE_TEST_* variables. */
class Inputs {
  constructor(
    private readonly values: Values,
    private readonly env: Env,
  ) {}

  get(flag: Flag, ...fallbackEnv: string[]): Given<string> | undefined {
    const value = this.values[flag];
    if (typeof value === "string") return { value, name: `--${flag}` };
    for (const name of [envName(flag), ...fallbackEnv]) {
      const fromEnv = this.env(name);
      if (fromEnv !== undefined && fromEnv !== "") return { value: fromEnv, name };
    }
    return undefined;
  }

  /** Repeatable flags; in the environment, a comma-separated list. */
  list(flag: Flag): Given<string[]> | undefined {
    const value = this.values[flag];
    if (Array.isArray(value)) return { value, name: `--${flag}` };
    const fromEnv = this.env(envName(flag));
    if (fromEnv === undefined || fromEnv.trim() === "") return undefined;
    return { value: fromEnv.split(",").map((part) => part.trim()).filter(Boolean), name: envName(flag) };
  }

  bool(flag: Flag): boolean {
    if (this.values[flag] === true) return true;
    const name = envName(flag);
    const fromEnv = this.env(name)?.trim().toLowerCase();
    if (fromEnv === undefined || fromEnv === "" || ["0", "false", "no", "off"].includes(fromEnv)) return false;
    if (["1", "true", "yes", "on"].includes(fromEnv)) return true;
    throw new UsageError(`Invalid ${name} "${fromEnv}": use 1 or 0 (true or false)`);
  }
}

export function envName(flag: string): string {
  return `ICE_TEST_${flag.toUpperCase().replace(/-/g, "_")}`;
}

function parseTlsMode(input: Inputs): TlsMode {
  const certFile = input.get("tls-cert");
  const keyFile = input.get("tls-key");
  const selfSigned = input.bool("self-signed");
  const insecure = input.bool("insecure");
  const chosen = [certFile || keyFile ? "--tls-cert/--tls-key" : "", selfSigned ? "--self-signed" : "", insecure ? "--insecure" : ""].filter(Boolean);
  if (chosen.length === 0) throw new UsageError(`Choose how to serve: ${TLS_CHOICES}`);
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

function parseTurn(input: Inputs): TurnConfig | undefined {
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
