// The peer's command line, on the same parser as the server's (flags.ts): the old Go tool's flags
// exactly as its README wrote them (`-role answerer -signaling-addr http://host:443
// -with-turn=false`) as well as GNU style (`--role answerer --with-turn`).
import { parseFlags, renderHelp, UsageError, type CommandSpec, type Env, type FlagSpec, type ParsedFlags, type ParseContext } from "./flags.ts";
import { usageError } from "./failure.ts";

export type Role = "offerer" | "answerer";

export interface SignalingTarget {
  /** The URL as given, for messages. */
  readonly url: string;
  /** "host:port", as grpc-js wants it. */
  readonly address: string;
  readonly host: string;
  readonly tls: boolean;
  /** More instances of the same service (sharing sessions through Redis), tried in turn when the current one stops answering. */
  readonly failover?: readonly SignalingTarget[];
}

export interface PeerOptions {
  readonly role: Role;
  readonly signaling: SignalingTarget;
  readonly room: string;
  readonly id?: string;
  /** Only meet this peer id. */
  readonly peer?: string;
  /** STUN URLs given on the command line; they replace the server's. */
  readonly stun: readonly string[];
  readonly turn?: string;
  readonly turnUser?: string;
  readonly turnPassword?: string;
  /** undefined: use TURN only if --turn was given. */
  readonly withTurn?: boolean;
  readonly relayOnly: boolean;
  readonly caFile?: string;
  /** A private CA (PEM file) to trust for TURN over TLS. */
  readonly turnCaFile?: string;
  readonly tlsServerName?: string;
  /** For servers that require them (x-api-key; a JWT for Register). */
  readonly apiKey?: string;
  readonly token?: string;
  readonly messages: number;
  readonly timeoutMs: number;
  /** How long to wait for the other peer to show up; undefined waits for ever. */
  readonly waitMs?: number;
  /** Gather host candidates on this local address only. */
  readonly bind?: string;
  readonly json: boolean;
}

export type ParsedCommand = { kind: "run"; options: PeerOptions } | { kind: "help" } | { kind: "version" };

export const DEFAULT_SIGNALING_ADDR = "https://localhost:443";
export const DEFAULT_ROOM = "ice-test";
export const DEFAULT_TIMEOUT = "30s";
export const DEFAULT_WAIT = "5m";

/** The peer's flags: adding one is one entry here, and --help follows. */
export const PEER_FLAGS: readonly FlagSpec[] = [
  { name: "role", kind: "string", value: "offerer|answerer", help: "which side to play (required); either side may start first" },
  { name: "signaling-addr", kind: "string", value: "URL", help: "https://host:port (TLS) or http://host:port (plaintext);\nhttps://203.0.113.7:443 and https://[2001:db8::1]:443 work too;\na comma-separated list (same scheme) names instances sharing\nsessions (--redis): the peer moves to the next when one dies", default: DEFAULT_SIGNALING_ADDR },
  { name: "room", kind: "string", value: "NAME", help: "meet peers in this room", default: DEFAULT_ROOM },
  { name: "id", kind: "string", value: "ID", help: "ask for this peer id (default: the server chooses)" },
  { name: "peer", kind: "string", value: "ID", help: "meet only this peer id" },
  { name: "stun", kind: "list", value: "URL", help: "STUN server (repeatable); replaces the server's own STUN responder" },
  { name: "turn", kind: "string", value: "URL", help: "TURN server, e.g. turn:host:3478?transport=tcp" },
  { name: "turn-user", kind: "string", value: "NAME", help: "TURN user name" },
  { name: "turn-password", kind: "string", value: "PASS", help: "TURN password", alsoEnv: ["TURN_PASSWORD"] },
  { name: "with-turn", kind: "boolean", synopsis: "--with-turn[=false]", help: "use TURN (--turn, or the TURN servers the signaling server hands out)" },
  { name: "relay-only", kind: "boolean", help: "use relay candidates only: tests TURN on its own" },
  { name: "ca", kind: "string", value: "FILE", help: "trust this CA/certificate (PEM) for a self-signed signaling server" },
  { name: "turn-ca", kind: "string", value: "FILE", help: "trust this CA/certificate (PEM) for TURN over TLS (turns:)" },
  { name: "tls-server-name", kind: "string", value: "NAME", help: "expect this name in the server's certificate" },
  { name: "api-key", kind: "string", value: "KEY", help: "the signaling server's API key (better: ICE_TEST_API_KEY)" },
  { name: "token", kind: "string", value: "JWT", help: "a token admitting this room (better: ICE_TEST_TOKEN)" },
  { name: "messages", kind: "string", value: "N", help: "ping/pong round trips to measure", default: "5" },
  { name: "wait", kind: "string", value: "DURATION", help: "how long to wait for the other peer to show up; 0 waits for ever", default: DEFAULT_WAIT },
  { name: "timeout", kind: "string", value: "DURATION", help: "from meeting the other peer to the last round trip\n(connecting and exchanging), e.g. 30s, 2m", default: DEFAULT_TIMEOUT },
  { name: "bind", kind: "string", value: "ADDRESS", help: "gather host candidates on this local address only\n(127.0.0.1 on a host with only loopback)" },
  { name: "json", kind: "boolean", help: "JSON lines instead of text, ending with a summary object" },
];

const PEER_COMMAND: CommandSpec = {
  usage: "--role offerer|answerer [options]",
  about:
    "Meets another peer through an ice-test signaling server, opens a WebRTC data channel, exchanges\nping/pong messages and reports every step: candidates, states, the selected pair and round trips.",
  flags: PEER_FLAGS,
  guessFlag: (word) => (word === "offerer" || word === "answerer" ? "role" : /^https?:\/\//.test(word) ? "signaling-addr" : undefined),
  footer: "Exit codes: 0 connected, 2 usage, 3 signaling failed, 4 connection failed or timed out,\n130 interrupted (Ctrl-C or SIGTERM; the summary still says what had happened).",
};

export const DEFAULT_PROGRAM = "ice-test peer";

/** --help for the program as the user started it. */
export function peerUsage(program = DEFAULT_PROGRAM): string {
  return renderHelp(PEER_COMMAND, program);
}

export const USAGE = peerUsage();

export function parseCommand(argv: readonly string[], env: Env, context: ParseContext = { program: DEFAULT_PROGRAM }): ParsedCommand {
  let args: ParsedFlags;
  try {
    args = parseFlags(PEER_COMMAND, argv, env, context);
    if (args.help) return { kind: "help" };
    if (args.version) return { kind: "version" };
    return { kind: "run", options: toOptions(args) };
  } catch (err) {
    if (err instanceof UsageError) throw usageError(err.message, err.hints);
    throw err;
  }
}

function toOptions(args: ParsedFlags): PeerOptions {
  const text = (name: string, ...fallbackEnv: string[]): string | undefined => args.get(name, ...fallbackEnv)?.value;
  const withTurn = args.bool("with-turn")?.value;
  const relayOnly = args.on("relay-only");
  const turn = text("turn");
  if (withTurn === undefined && relayOnly && turn === undefined) {
    throw usageError("--relay-only needs a TURN server: add --with-turn (server's TURN) or --turn URL");
  }
  const options: PeerOptions = {
    role: parseRole(text("role")),
    signaling: parseSignalingAddr(text("signaling-addr") ?? DEFAULT_SIGNALING_ADDR),
    room: parseName("room", text("room") ?? DEFAULT_ROOM),
    id: optional(text("id"), (v) => parseName("id", v)),
    peer: optional(text("peer"), (v) => parseName("peer", v)),
    stun: (args.list("stun")?.value ?? []).map(parseStunUrl),
    turn: optional(turn, parseTurnUrl),
    turnUser: text("turn-user"),
    turnPassword: text("turn-password", "TURN_PASSWORD"),
    withTurn: withTurn ?? (turn !== undefined ? true : undefined),
    relayOnly,
    caFile: text("ca"),
    turnCaFile: text("turn-ca"),
    tlsServerName: text("tls-server-name"),
    apiKey: text("api-key"),
    token: text("token"),
    messages: parseCount(text("messages") ?? "5"),
    timeoutMs: parseDuration("timeout", text("timeout") ?? DEFAULT_TIMEOUT),
    waitMs: parseWait(text("wait") ?? DEFAULT_WAIT),
    bind: text("bind"),
    json: args.on("json"),
  };
  if (options.withTurn === false && options.relayOnly) {
    throw usageError("--relay-only contradicts --with-turn=false: relay candidates need TURN");
  }
  if (options.turn && options.turnUser === undefined) {
    throw usageError("--turn needs --turn-user and --turn-password (or TURN_PASSWORD)");
  }
  return options;
}

function optional<T>(value: string | undefined, convert: (value: string) => T): T | undefined {
  return value === undefined ? undefined : convert(value);
}

function parseRole(value: string | undefined): Role {
  if (value === "offerer" || value === "answerer") return value;
  if (value === undefined) throw usageError("--role is required: offerer or answerer");
  throw usageError(`--role must be offerer or answerer, not "${value}"`);
}

/** One URL, or a comma-separated list of instances of one service: the first is used first. */
export function parseSignalingAddr(value: string): SignalingTarget {
  const [first, ...rest] = value.split(",").map((part) => parseOneSignalingAddr(part.trim()));
  if (!first) throw usageError("--signaling-addr needs a URL like https://host:443");
  const other = rest.find((target) => target.tls !== first.tls);
  if (other) throw usageError(`--signaling-addr lists both https:// and http:// URLs (${first.url}, ${other.url}): use one scheme for all instances`);
  return rest.length > 0 ? { ...first, failover: rest } : first;
}

function parseOneSignalingAddr(value: string): SignalingTarget {
  if (value === "") throw usageError("--signaling-addr has an empty entry: write URLs separated by single commas");
  let url: URL;
  try {
    url = new URL(value.includes("://") ? value : `https://${value}`);
  } catch {
    throw usageError(`--signaling-addr "${value}" is not a URL like https://host:443`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw usageError(`--signaling-addr must start with https:// (TLS) or http:// (plaintext), not ${url.protocol}//`);
  }
  const tls = url.protocol === "https:";
  const port = url.port || (tls ? "443" : "80");
  return { url: value, address: `${url.hostname}:${port}`, host: url.hostname.replace(/^\[|\]$/g, ""), tls };
}

const NAME = /^[A-Za-z0-9._-]{1,64}$/;

function parseName(flag: string, value: string): string {
  if (NAME.test(value)) return value;
  throw usageError(`--${flag} "${value}" must be 1 to 64 characters from A-Z, a-z, 0-9, '.', '_' and '-'`);
}

function parseStunUrl(value: string): string {
  if (/^stuns?:[^\s]+$/i.test(value)) return value;
  throw usageError(`--stun "${value}" is not a STUN URL like stun:host:3478`);
}

function parseTurnUrl(value: string): string {
  if (/^turns?:[^\s?]+(\?transport=(udp|tcp))?$/i.test(value)) return value;
  throw usageError(`--turn "${value}" is not a TURN URL like turn:host:3478 or turn:host:3478?transport=tcp`);
}

function parseCount(value: string): number {
  const count = Number(value);
  if (Number.isInteger(count) && count >= 0 && count <= 10_000) return count;
  throw usageError(`--messages must be a whole number from 0 to 10000, not "${value}"`);
}

const UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "0" waits for ever. */
function parseWait(value: string): number | undefined {
  return /^0+(\.0*)?(ms|s|m|h)?$/.test(value) ? undefined : parseDuration("wait", value);
}

/** Go-style durations ("1m30s", "500ms") or plain seconds ("30"). */
export function parseDuration(flag: string, value: string): number {
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  const consumed = parts.map((p) => p[0]).join("");
  if (parts.length === 0 || consumed !== value) {
    throw usageError(`--${flag} "${value}" is not a duration like 30s, 2m or 1m30s`);
  }
  const total = parts.reduce((sum, [, n, unit]) => sum + Number(n) * (UNITS_MS[unit!] ?? 0), 0);
  if (total <= 0) throw usageError(`--${flag} must be longer than zero`);
  return total;
}
