// Hints that fit where the peer runs. "No candidates at all" has different fixes: under Deno a
// missing --allow-sys=networkInterfaces hides every interface; on a host with only loopback,
// werift skips 127.0.0.1 unless --bind asks for it; elsewhere, --bind one of the real addresses.
// node:os works on both runtimes (Deno needs the permission above, and throws without it).
import { networkInterfaces } from "node:os";

export type InterfaceList = () => ReturnType<typeof networkInterfaces>;

export function noCandidateHints(runtime: string, list: InterfaceList = networkInterfaces): string[] {
  let addresses: { address: string; internal: boolean }[];
  try {
    addresses = Object.values(list()).flatMap((entries) => entries ?? []);
  } catch {
    return runtime.startsWith("deno")
      ? ["Deno may not list network interfaces: run it with --allow-sys=networkInterfaces (npm run peer:deno does)"]
      : ["This host's network interfaces could not be listed"];
  }
  const external = addresses.filter((entry) => !entry.internal && !entry.address.startsWith("fe80:"));
  if (external.length === 0) {
    return ["This host has only loopback interfaces, which werift skips: add --bind 127.0.0.1 (on both peers, on this host)"];
  }
  return [`No usable interface was found: try --bind with one of this host's addresses (${external.map((entry) => entry.address).join(", ")})`];
}
