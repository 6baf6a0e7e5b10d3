// The access-control part of the server's start: read the token key file, and say so when a public
// address is served to everyone.
import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import type { AuthConfig } from "./auth.ts";
import type { CliAuth } from "./options.ts";

export async function loadAuth(auth: CliAuth | undefined): Promise<AuthConfig | undefined> {
  if (!auth) return undefined;
  const { jwtPublicKeyFile, ...config } = auth;
  if (!jwtPublicKeyFile) return config;
  try {
    return { ...config, jwtPublicKey: await readFile(jwtPublicKeyFile, "utf8") };
  } catch (err) {
    throw new Error(`Cannot read --jwt-public-key ${jwtPublicKeyFile}: ${(err as Error).message}`, { cause: err });
  }
}

/** A warning for a server anyone on the network may use, or undefined. */
export function publicWithoutAuth(host: string, auth: CliAuth | undefined): string | undefined {
  if (auth || isLoopback(host)) return undefined;
  return `serving ${host} without API keys or tokens: anyone who reaches it may register and relay (see --api-key, --jwt-secret)`;
}

function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  return host === "::1";
}
