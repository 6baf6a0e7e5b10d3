// Access control for a public server, all optional (a lab server is open):
//   API keys   "x-api-key: KEY" on every call; any of the configured keys is accepted.
//   Tokens     "authorization: Bearer JWT" on Register, signed with the configured HMAC secret
//              (HS256/384/512) or public key (RS*, PS*, ES*, EdDSA), verified by jose. Claims:
//              "exp" (required) and "room" (required: the room it admits, or "*" for any).
//              Rooms listed in `tokenRooms`, or every room with `requireToken`, refuse
//              registrations without one; a token sent to any room is checked.
// The session token Register returns then names the peer in later calls: a JWT only gates entry.
import type { Metadata } from "@grpc/grpc-js";
import { errors, importSPKI, jwtVerify, type CryptoKey, type JWTPayload } from "jose";
import { createPublicKey } from "node:crypto";
import { permissionDenied, unauthenticated } from "./errors.ts";

export interface AuthConfig {
  apiKeys?: readonly string[];
  /** HMAC secret for HS256/384/512 tokens. */
  jwtSecret?: string;
  /** PEM public key (SPKI) for asymmetric tokens. */
  jwtPublicKey?: string;
  /** Every room needs a token. */
  requireToken?: boolean;
  /** These rooms need a token. */
  tokenRooms?: readonly string[];
}

export const API_KEY_HEADER = "x-api-key";

export class Access {
  private readonly apiKeys: ReadonlySet<string>;
  private readonly tokenRooms: ReadonlySet<string>;
  private readonly key: Promise<Uint8Array | CryptoKey> | undefined;

  constructor(private readonly config: AuthConfig = {}) {
    this.apiKeys = new Set(config.apiKeys ?? []);
    this.tokenRooms = new Set(config.tokenRooms ?? []);
    this.key = verificationKey(config);
  }

  /** Whether anything is required of callers at all: the server warns when it is public and not. */
  get enabled(): boolean {
    return this.apiKeys.size > 0 || this.key !== undefined;
  }

  /** Every call: the API key, when keys are configured. */
  checkApiKey(metadata: Metadata): void {
    if (this.apiKeys.size === 0) return;
    const given = first(metadata, API_KEY_HEADER);
    if (given === undefined) throw unauthenticated("Missing API key: this server requires one (--api-key or ICE_TEST_API_KEY)");
    if (!this.apiKeys.has(given)) throw unauthenticated("Wrong API key");
  }

  /** Register: the token, when the room requires one or one is given. */
  async checkRoom(metadata: Metadata, room: string): Promise<void> {
    const bearer = first(metadata, "authorization");
    const required = this.config.requireToken === true || this.tokenRooms.has(room);
    if (bearer === undefined) {
      if (required) throw unauthenticated(`Room "${room}" requires a token (--token or ICE_TEST_TOKEN)`);
      return;
    }
    const token = /^Bearer\s+(\S+)$/i.exec(bearer)?.[1];
    if (!token) throw unauthenticated('Malformed authorization: use "Bearer <token>"');
    if (!this.key) throw unauthenticated("This server does not accept tokens: drop --token");
    const claims = await verify(token, await this.key);
    if (claims.room !== "*" && claims.room !== room) {
      throw permissionDenied(`The token admits room ${JSON.stringify(claims.room)}, not "${room}"`);
    }
  }
}

async function verify(token: string, key: Uint8Array | CryptoKey): Promise<JWTPayload & { room: string }> {
  try {
    const { payload } = await jwtVerify(token, key, { requiredClaims: ["exp", "room"] });
    if (typeof payload.room !== "string") throw unauthenticated('Invalid token: its "room" claim must be a string');
    return payload as JWTPayload & { room: string };
  } catch (err) {
    if (err instanceof errors.JWTExpired) throw unauthenticated("The token has expired: get a new one");
    if (err instanceof errors.JOSEError) throw unauthenticated(`Invalid token: ${err.message}`);
    throw err;
  }
}

function verificationKey(config: AuthConfig): Promise<Uint8Array | CryptoKey> | undefined {
  if (config.jwtSecret) return Promise.resolve(new TextEncoder().encode(config.jwtSecret));
  if (!config.jwtPublicKey) return undefined;
  const pem = config.jwtPublicKey;
  // jose needs the algorithm to import a key; node:crypto tells which kind of key the PEM holds.
  return importSPKI(pem, algorithmFor(pem));
}

function algorithmFor(pem: string): string {
  const key = createPublicKey(pem);
  switch (key.asymmetricKeyType) {
    case "rsa":
      return "RS256";
    case "ec":
      return { "prime256v1": "ES256", secp384r1: "ES384", secp521r1: "ES512" }[key.asymmetricKeyDetails?.namedCurve ?? ""] ?? "ES256";
    case "ed25519":
      return "EdDSA";
    default:
      throw new Error(`Unsupported token key type ${key.asymmetricKeyType}: use RSA, EC (P-256/384/521) or Ed25519`);
  }
}

function first(metadata: Metadata, key: string): string | undefined {
  const value = metadata.get(key)[0];
  return typeof value === "string" ? value : value?.toString("utf8");
}
