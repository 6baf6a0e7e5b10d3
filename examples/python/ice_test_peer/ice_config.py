"""Which STUN and TURN servers the peer uses (as core/ice-config.ts), and the aiortc configuration
that follows from them."""
import re
from dataclasses import dataclass
from typing import List, Optional

from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcicetransport import parse_stun_turn_uri

from .failure import PeerFailure


@dataclass(frozen=True)
class IceSetup:
    stun: Optional[str]
    """The STUN URL aiortc will use (aioice uses only the first one)."""
    turn: Optional[dict]
    """{"url", "username", "transport"} for reports; the credential stays out of them."""
    config: RTCConfiguration


def choose_ice_servers(options, offered) -> IceSetup:
    """`options` are the PeerOptions, `offered` is RegisterResponse.ice_servers."""
    # --stun replaces the server's STUN responder, --turn its TURN servers; each only its own kind.
    stun = options.stun[0] if options.stun else None
    if stun is None:
        # The server names its STUN host as we dialled it; an IPv6 literal is skipped (see below).
        stun = next((url for server in offered for url in server.urls if re.match(r"^stuns?:", url, re.I) and aiortc_can_use(url)), None)
    turn_server = _choose_turn(options, offered) if options.with_turn else None
    servers: List[RTCIceServer] = []
    if stun:
        servers.append(RTCIceServer(urls=stun))
    turn = None
    if turn_server:
        servers.append(turn_server)
        turn = {"url": turn_server.urls, "username": turn_server.username or "", "transport": turn_transport_of(turn_server.urls)}
    return IceSetup(stun=stun, turn=turn, config=RTCConfiguration(iceServers=servers))


def _choose_turn(options, offered) -> RTCIceServer:
    if options.turn:
        return RTCIceServer(urls=options.turn, username=options.turn_user or "", credential=options.turn_password or "")
    for server in offered:
        url = next((u for u in server.urls if re.match(r"^turns?:", u, re.I) and aiortc_can_use(u)), None)
        if url:
            return RTCIceServer(urls=url, username=server.username, credential=server.credential)
    raise PeerFailure(
        "usage",
        "no-turn-server",
        "--with-turn was given but there is no TURN server to use",
        ["Pass --turn URL --turn-user NAME --turn-password PASS, or start the signaling server with --turn"],
    )


def turn_transport_of(url: str) -> str:
    if re.match(r"^turns:", url, re.I):
        return "tls"
    match = re.search(r"[?&]transport=(udp|tcp)", url, re.I)
    return "tcp" if match and match.group(1).lower() == "tcp" else "udp"


def aiortc_can_use(url: str) -> bool:
    """aiortc 1.4 parses ICE server URLs with a host pattern that excludes ':' (so no IPv6 literal),
    and raises from deep inside RTCPeerConnection on one it cannot parse."""
    try:
        parse_stun_turn_uri(url)
        return True
    except ValueError:
        return False

