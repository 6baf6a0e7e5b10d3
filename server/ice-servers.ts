// RegisterResponse.ice_servers: the server's own STUN responder, plus TURN when configured.
//
// The STUN host is the name the client dialled (the call's :authority), because that is the one
// name known to reach this machine from where the client is; `publicHost` overrides it for
// servers behind a proxy or a NAT that rewrites addresses.
import { createHmac } from "node:crypto";
import { isIP } from "node:net";
import type { IceServer } from "../gen/icetest/signaling/v1/signaling.ts";

export const DEFAULT_TURN_TTL_SECONDS = 3600;

export interface TurnConfig {
  urls: string[];
  /** coturn's --static-auth-secret: credentials are minted per peer (TURN REST API). */
  secret?: string;
  /** Static long-term credentials, when there is no secret. */
  user?: string;
  password?: string;
  /** Lifetime of minted credentials; default one hour. */
  ttlSeconds?: number;
}

export interface IceServersConfig {
  /** The STUN responder's UDP port; null when it is disabled. */
  stunPort: number | null;
  /**
   * The responder's second port: its URL follows the first in the same entry, since it is the same
   * server. Peers use the first for ICE and both to classify their NAT.
   */
  stunAltPort?: number | null;
  publicHost?: string;
  /** The gRPC listen host: the last resort for the STUN host. */
  listenHost: string;
  turn?: TurnConfig;
}

export function iceServersFor(config: IceServersConfig, authority: string, peerId: string, nowMs = Date.now()): IceServer[] {
  const servers: IceServer[] = [];
  const stunHost = chooseStunHost(config, authority);
  if (config.stunPort !== null && stunHost) {
    const ports = [config.stunPort, ...(config.stunAltPort ? [config.stunAltPort] : [])];
    servers.push({ urls: ports.map((port) => `stun:${urlHost(stunHost)}:${port}`), username: "", credential: "" });
  }
  if (config.turn) servers.push(turnServer(config.turn, peerId, nowMs));
  return servers;
}

function chooseStunHost(config: IceServersConfig, authority: string): string | undefined {
  if (config.publicHost) return config.publicHost;
  const dialled = hostOfAuthority(authority);
  if (dialled) return dialled;
  // 0.0.0.0 or :: names no machine a client could reach: better no STUN entry than a wrong one.
  return isUnspecified(config.listenHost) ? undefined : config.listenHost;
}

/**
 * The host part of an HTTP/2 :authority: "[::1]:443" → "::1", "example.org:443" → "example.org",
 * "example.org" → "example.org". Undefined when empty or not a plausible host (the header is the
 * client's to choose, and it ends up in a URL).
 */
export function hostOfAuthority(authority: string): string | undefined {
  const host = stripPort(authority.trim());
  if (host === "") return undefined;
  if (isIP(host) !== 0) return host;
  return /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host) ? host : undefined;
}

function stripPort(authority: string): string {
  if (authority.startsWith("[")) {
    const end = authority.indexOf("]");
    return end === -1 ? "" : authority.slice(1, end);
  }
  // A bare IPv6 address (not valid in :authority, but harmless to accept) has several colons.
  if (isIP(authority) === 6) return authority;
  const colon = authority.lastIndexOf(":");
  return colon === -1 ? authority : authority.slice(0, colon);
}

function urlHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

function isUnspecified(host: string): boolean {
  return host === "" || host === "0.0.0.0" || host === "::" || host === "[::]";
}

function turnServer(turn: TurnConfig, peerId: string, nowMs: number): IceServer {
  if (turn.secret) {
    const { username, credential } = turnRestCredentials(turn.secret, peerId, turn.ttlSeconds ?? DEFAULT_TURN_TTL_SECONDS, nowMs);
    return { urls: [...turn.urls], username, credential };
  }
  return { urls: [...turn.urls], username: turn.user ?? "", credential: turn.password ?? "" };
}

/**
 * Time-limited TURN credentials as coturn's --use-auth-secret checks them: the username is
 * "<unix expiry>:<peer id>", the password base64(HMAC-SHA1(secret, username)).
 */
export function turnRestCredentials(
  secret: string,
  peerId: string,
  ttlSeconds: number,
  nowMs = Date.now(),
): { username: string; credential: string } {
  const expiry = Math.floor(nowMs / 1000) + ttlSeconds;
  const username = `${expiry}:${peerId}`;
  const credential = createHmac("sha1", secret).update(username).digest("base64");
  return { username, credential };
}
