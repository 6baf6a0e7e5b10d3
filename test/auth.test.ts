// Access control over real gRPC: API keys on every call, JWTs (jose) with room and expiry claims on
// Register, rooms that require a token; and a takeover of a stream by the same session token.
import { credentials, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { exportSPKI, generateKeyPair, SignJWT, type CryptoKey } from "jose";
import t from "tap";
import { SignalingServiceClient } from "../gen/icetest/signaling/v1/signaling.ts";
import { uniqueRoom } from "./fixtures/peers.ts";
import { startTestServer } from "./fixtures/server.ts";

const CLIENT = { name: "auth-test", version: "0", runtime: "tap" };
const SECRET = "a shared secret of enough length for HS256";

function client(t: { teardown(fn: () => void): void }, address: string): SignalingServiceClient {
  const c = new SignalingServiceClient(address, credentials.createInsecure());
  t.teardown(() => c.close());
  return c;
}

function metadata(entries: Record<string, string>): Metadata {
  const m = new Metadata();
  for (const [key, value] of Object.entries(entries)) m.set(key, value);
  return m;
}

function register(c: SignalingServiceClient, room: string, entries: Record<string, string>): Promise<ServiceError | string> {
  return new Promise((resolve) => c.register({ room, peerId: "", client: CLIENT }, metadata(entries), (err, res) => resolve(err ?? res!.sessionToken)));
}

async function jwt(claims: Record<string, unknown>, expires: string | number, key: Uint8Array | CryptoKey = new TextEncoder().encode(SECRET), alg = "HS256"): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg }).setExpirationTime(expires).sign(key);
}

t.test("API keys: missing or wrong is UNAUTHENTICATED on every call; the right one works", async (t) => {
  const server = await startTestServer(t, { auth: { apiKeys: ["k-one", "k-two"] } });
  const c = client(t, server.address);
  const missing = await register(c, uniqueRoom(), {});
  t.equal((missing as ServiceError).code, status.UNAUTHENTICATED, "no key: UNAUTHENTICATED");
  t.match((missing as ServiceError).details, /Missing API key/, "saying the key is missing");
  const wrong = await register(c, uniqueRoom(), { "x-api-key": "k-three" });
  t.equal((wrong as ServiceError).code, status.UNAUTHENTICATED, "a wrong key: UNAUTHENTICATED");
  t.match((wrong as ServiceError).details, /Wrong API key/, "saying it is wrong");
  const token = await register(c, uniqueRoom(), { "x-api-key": "k-two" });
  t.type(token, "string", "any configured key registers");
  const leave = await new Promise<ServiceError | null>((resolve) => c.leave({ sessionToken: token as string }, (err) => resolve(err)));
  t.equal(leave?.code, status.UNAUTHENTICATED, "later calls need the key too");
});

t.test("tokens: a room that requires one refuses none, another room's, an expired one; a valid one and '*' work", async (t) => {
  const server = await startTestServer(t, { auth: { jwtSecret: SECRET, tokenRooms: ["vip"] } });
  const c = client(t, server.address);
  const none = await register(c, "vip", {});
  t.equal((none as ServiceError).code, status.UNAUTHENTICATED, "no token for a token room: UNAUTHENTICATED");
  t.match((none as ServiceError).details, /Room "vip" requires a token/, "naming the room");
  const other = await register(c, "vip", { authorization: `Bearer ${await jwt({ room: "lobby" }, "1h")}` });
  t.equal((other as ServiceError).code, status.PERMISSION_DENIED, "a token for another room: PERMISSION_DENIED");
  t.match((other as ServiceError).details, /The token admits room "lobby", not "vip"/, "naming both rooms");
  const expired = await register(c, "vip", { authorization: `Bearer ${await jwt({ room: "vip" }, Math.floor(Date.now() / 1000) - 60)}` });
  t.equal((expired as ServiceError).code, status.UNAUTHENTICATED, "an expired token: UNAUTHENTICATED");
  t.match((expired as ServiceError).details, /expired/, "saying it expired");
  const forged = await register(c, "vip", { authorization: `Bearer ${await jwt({ room: "vip" }, "1h", new TextEncoder().encode("another secret of enough length!!"))}` });
  t.equal((forged as ServiceError).code, status.UNAUTHENTICATED, "a token signed with another key: UNAUTHENTICATED");
  t.type(await register(c, "vip", { authorization: `Bearer ${await jwt({ room: "vip" }, "1h")}` }), "string", "a valid token for the room registers");
  t.type(await register(c, "vip", { authorization: `Bearer ${await jwt({ room: "*" }, "1h")}` }), "string", "a token for any room registers");
  t.type(await register(c, uniqueRoom(), {}), "string", "rooms without the requirement stay open");
});

t.test("tokens signed with an EC key are verified with --jwt-public-key", async (t) => {
  const { publicKey, privateKey } = await generateKeyPair("ES256");
  const server = await startTestServer(t, { auth: { jwtPublicKey: await exportSPKI(publicKey), requireToken: true } });
  const c = client(t, server.address);
  t.type(await register(c, "lab", { authorization: `Bearer ${await jwt({ room: "lab" }, "1h", privateKey, "ES256")}` }), "string", "an ES256 token registers");
  const none = await register(c, "lab", {});
  t.equal((none as ServiceError).code, status.UNAUTHENTICATED, "with --require-token every room needs one");
});
