// The peer's command line. It accepts the old Go tool's flags exactly as its README wrote them
// (`-role answerer -signaling-addr http://host:443 -with-turn=false`) as well as GNU style
// (`--role answerer --with-turn`). yargs-parser does both once short-option groups are off, which
// node:util's parseArgs cannot (no single-dash long flags, no `--flag=false`).
import parse from "yargs-parser";
import { usageError } from "./failure.ts";

export type Role = "offerer" | "answerer";

export interface SignalingTarget {
  /** The URL as given, for messages. */
  readonly url: string;
  /** "host:port", as grpc-js wants it. */
  readonly address: string;
  readonly host: string;
  readonly tls: boolean;
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
  readonly messages: number;
  readonly timeoutMs: number;
  /** How long to wait for the other peer to show up; undefined waits for ever. */
  readonly waitMs?: number;
  /** Gather host candidates on this local address only. */
  readonly bind?: string;
  readonly json: boolean;
}

export type ParsedCommand = { kind: "run"; options: PeerOptions } | { kind: "help" } | { kind: "version" };

const STRING_FLAGS = [
  "role", "signaling-addr", "room", "id", "peer", "stun", "turn", "turn-user", "turn-password",
  "ca", "turn-ca", "tls-server-name", "messages", "timeout", "wait", "bind",
] as const;
const BOOLEAN_FLAGS = ["with-turn", "relay-only", "json", "help", "version"] as const;
const KNOWN = new Set<string>([...STRING_FLAGS, ...BOOLEAN_FLAGS, "_", "h"]);

export const DEFAULT_SIGNALING_ADDR = "https://localhost:443";
export const DEFAULT_ROOM = "ice-test";

export const USAGE = `Usage: ice-test-peer --role offerer|answerer [options]

Meets another peer through an ice-test signaling server, opens a WebRTC data channel, exchanges
ping/pong messages and reports every step: candidates, states, the selected pair and round trips.

  --role offerer|answerer   which side to play (required); either side may start first
  --signaling-addr URL      https://host:port (TLS) or http://host:port (plaintext)
                            [default: ${DEFAULT_SIGNALING_ADDR}]
  --room NAME               meet peers in this room [default: ${DEFAULT_ROOM}]
  --id ID                   ask for this peer id (default: the server chooses)
  --peer ID                 meet only this peer id
  --stun URL                STUN server (repeatable); replaces the server's own STUN responder
  --turn URL                TURN server, e.g. turn:host:3478?transport=tcp
  --turn-user NAME          TURN user name
  --turn-password PASS      TURN password [env: TURN_PASSWORD]
  --with-turn[=false]       use TURN (--turn, or the TURN servers the signaling server hands out)
  --relay-only              use relay candidates only: tests TURN on its own
  --ca FILE                 trust this CA/certificate (PEM) for a self-signed signaling server
  --turn-ca FILE            trust this CA/certificate (PEM) for TURN over TLS (turns:)
  --tls-server-name NAME    expect this name in the server's certificate
  --messages N              ping/pong round trips to measure [default: 5]
  --timeout DURATION        limit for connecting and exchanging, e.g. 30s, 2m [default: 30s]
  --wait DURATION           limit for the other peer to show up [default: no limit]
  --bind ADDRESS            gather host candidates on this local address only
  --json                    JSON lines instead of text, ending with a summary object
  --help, --version

Go-style flags work too: -role answerer -signaling-addr http://host:443 -with-turn=false
Exit codes: 0 connected, 2 usage, 3 signaling failed, 4 connection failed or timed out, 130 interrupted.`;

export function parseCommand(argv: readonly string[], env: (name: string) => string | undefined): ParsedCommand {
  const parsed = parse.detailed([...argv], {
    configuration: {
      "short-option-groups": false,
      "camel-case-expansion": false,
      "dot-notation": false,
      "parse-numbers": false,
      "parse-positional-numbers": false,
      "boolean-negation": true,
      "duplicate-arguments-array": true,
    },
    string: [...STRING_FLAGS],
    boolean: [...BOOLEAN_FLAGS],
    array: ["stun"],
  });
  if (parsed.error) throw usageError(parsed.error.message);
  const args = parsed.argv as Record<string, unknown>;
  rejectUnknown(args);
  if (args["help"] === true || args["h"] !== undefined) return { kind: "help" };
  if (args["version"] === true) return { kind: "version" };
  return { kind: "run", options: toOptions(args, env) };
}

function rejectUnknown(args: Record<string, unknown>): void {
  const unknown = Object.keys(args).filter((key) => !KNOWN.has(key));
  if (unknown.length > 0) throw usageError(`Unknown flag ${unknown.map((k) => `--${k}`).join(", ")} (see --help)`);
  const positional = args["_"] as unknown[];
  if (positional.length > 0) throw usageError(`Unexpected argument "${String(positional[0])}" (see --help)`);
}

function toOptions(args: Record<string, unknown>, env: (name: string) => string | undefined): PeerOptions {
  const text = (name: (typeof STRING_FLAGS)[number]): string | undefined => single(args, name);
  const withTurn = args["with-turn"] as boolean | undefined;
  const turn = text("turn");
  if (withTurn === undefined && args["relay-only"] === true && turn === undefined) {
    throw usageError("--relay-only needs a TURN server: add --with-turn (server's TURN) or --turn URL");
  }
  const options: PeerOptions = {
    role: parseRole(text("role")),
    signaling: parseSignalingAddr(text("signaling-addr") ?? DEFAULT_SIGNALING_ADDR),
    room: parseName("room", text("room") ?? DEFAULT_ROOM),
    id: optional(text("id"), (v) => parseName("id", v)),
    peer: optional(text("peer"), (v) => parseName("peer", v)),
    stun: ((args["stun"] as string[] | undefined) ?? []).map(parseStunUrl),
    turn: optional(turn, parseTurnUrl),
    turnUser: text("turn-user"),
    turnPassword: text("turn-password") ?? env("TURN_PASSWORD"),
    withTurn: withTurn ?? (turn !== undefined ? true : undefined),
    relayOnly: args["relay-only"] === true,
    caFile: text("ca"),
    turnCaFile: text("turn-ca"),
    tlsServerName: text("tls-server-name"),
    messages: parseCount(text("messages") ?? "5"),
    timeoutMs: parseDuration("timeout", text("timeout") ?? "30s"),
    waitMs: optional(text("wait"), (v) => parseDuration("wait", v)),
    bind: text("bind"),
    json: args["json"] === true,
  };
  if (options.withTurn === false && options.relayOnly) {
    throw usageError("--relay-only contradicts --with-turn=false: relay candidates need TURN");
  }
  if (options.turn && options.turnUser === undefined) {
    throw usageError("--turn needs --turn-user and --turn-password (or TURN_PASSWORD)");
  }
  return options;
}

/** As with Go's flag package, the last of repeated flags wins. */
function single(args: Record<string, unknown>, name: string): string | undefined {
  const given = args[name];
  const value: unknown = Array.isArray(given) ? given.at(-1) : given;
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "") throw usageError(`--${name} needs a value`);
  return value;
}

function optional<T>(value: string | undefined, convert: (value: string) => T): T | undefined {
  return value === undefined ? undefined : convert(value);
}

function parseRole(value: string | undefined): Role {
  if (value === "offerer" || value === "answerer") return value;
  if (value === undefined) throw usageError("--role is required: offerer or answerer");
  throw usageError(`--role must be offerer or answerer, not "${value}"`);
}

export function parseSignalingAddr(value: string): SignalingTarget {
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
