// Which STUN and TURN servers the peer uses, and the werift configuration that follows from them.
import type { PeerConfig } from "werift";
import type { IceServer } from "../gen/icetest/signaling/v1/signaling.ts";
import { PeerFailure } from "./failure.ts";
import type { PeerOptions } from "./options.ts";

export type TurnTransport = "udp" | "tcp" | "tls";

export interface IceSetup {
  /** The STUN URL werift will use (werift uses only the first one). */
  readonly stun?: string;
  readonly turn?: { readonly url: string; readonly username: string; readonly transport: TurnTransport };
  /** Kept apart from `turn`, which goes into reports. */
  readonly turnPassword?: string;
  readonly relayOnly: boolean;
  readonly config: Partial<PeerConfig>;
}

export function chooseIceServers(options: PeerOptions, offered: readonly IceServer[]): IceSetup {
  const stun = options.stun[0] ?? offered.flatMap((server) => server.urls).find((url) => /^stuns?:/i.test(url));
  const turnServer = options.withTurn ? chooseTurn(options, offered) : undefined;
  const iceServers: NonNullable<PeerConfig["iceServers"]> = [];
  if (stun) iceServers.push({ urls: stun });
  if (turnServer) iceServers.push(turnServer);
  const turnUrl = turnServer?.urls;
  return {
    ...(stun ? { stun } : {}),
    ...(turnServer && typeof turnUrl === "string"
      ? {
          turn: { url: turnUrl, username: turnServer.username ?? "", transport: turnTransportOf(turnUrl) },
          turnPassword: turnServer.credential ?? "",
        }
      : {}),
    relayOnly: options.relayOnly,
    config: {
      iceServers,
      iceTransportPolicy: options.relayOnly ? "relay" : "all",
      ...bindConfig(options.bind),
    },
  };
}

function chooseTurn(options: PeerOptions, offered: readonly IceServer[]) {
  if (options.turn) {
    return { urls: options.turn, username: options.turnUser ?? "", credential: options.turnPassword ?? "" };
  }
  for (const server of offered) {
    const url = server.urls.find((u) => /^turns?:/i.test(u));
    if (url) return { urls: url, username: server.username, credential: server.credential };
  }
  throw new PeerFailure("usage", "no-turn-server", "--with-turn was given but there is no TURN server to use", {
    hints: ["Pass --turn URL --turn-user NAME --turn-password PASS, or start the signaling server with --turn"],
  });
}

export function turnTransportOf(url: string): TurnTransport {
  const transport = /[?&]transport=(udp|tcp)/i.exec(url)?.[1]?.toLowerCase();
  if (/^turns:/i.test(url)) return "tls";
  return transport === "tcp" ? "tcp" : "udp";
}

/**
 * Restricts host candidates to one local address. werift skips loopback addresses unless they are
 * listed as additional host addresses; the patched werift then gathers only that address (unpatched,
 * an interface filter that matched none of the enumerated addresses kept them all). The pair filter
 * and session.ts's candidate filter still keep any other interface's candidate out of checks and
 * signaling, should a werift without the patch gather one.
 */
function bindConfig(bind: string | undefined): Partial<PeerConfig> {
  if (!bind) return {};
  const ipv6 = bind.includes(":");
  return {
    iceInterfaceAddresses: ipv6 ? { udp6: bind } : { udp4: bind },
    iceAdditionalHostAddresses: [bind],
    iceUseIpv4: !ipv6,
    iceUseIpv6: ipv6,
    iceFilterCandidatePair: (pair) => pair.localCandidate.type !== "host" || pair.localCandidate.host === bind,
  };
}
