"""Why a connection failed, from what the peer saw (as core/diagnose.ts, rule for rule): its
candidates, the other side's, the servers it was given and how far it got. A pure function."""
import re
from dataclasses import dataclass, field
from typing import List, Optional

from .failure import PeerFailure

PHASES = ("waiting-for-peer", "negotiating", "ice", "dtls", "data-channel", "exchange")


@dataclass
class Observation:
    phase: str
    trigger: str  # "timeout" or "ice-failed"
    waited_ms: float
    room: str
    remote_peer_id: Optional[str] = None
    local: List[dict] = field(default_factory=list)
    remote: List[dict] = field(default_factory=list)
    pairs: List[dict] = field(default_factory=list)
    """{"local", "remote", "state"}, state one of frozen, waiting, in-progress, succeeded, failed."""
    stun: Optional[str] = None
    turn: Optional[dict] = None
    relay_only: bool = False
    local_gathering_complete: bool = False
    remote_end_of_candidates: bool = False
    pongs: Optional[dict] = None  # {"received", "expected"}


def diagnose(o: Observation) -> PeerFailure:
    seconds = f"{o.waited_ms / 1000:.1f} s"
    if o.phase == "waiting-for-peer":
        return _fail("no-peer", f'No other peer joined room "{o.room}" within {seconds}',
                     ["Start the other side with the same --room and --signaling-addr"])
    if o.phase == "negotiating":
        return _fail("no-answer", f"Sent an offer to {o.remote_peer_id or 'the peer'} but got no answer within {seconds}",
                     ["Is the other side running with --role answerer? Two offerers never meet"])
    if o.phase == "ice":
        return _diagnose_ice(o, seconds)
    if o.phase == "dtls":
        return _fail("dtls-failed", f"ICE connected but the DTLS handshake did not finish within {seconds}",
                     ["A middlebox may drop large or fragmented UDP packets (the certificate flight), or the fingerprints did not match"])
    if o.phase == "data-channel":
        return _fail("data-channel-failed", f"DTLS connected but the data channel did not open within {seconds}",
                     ["The SCTP association over DTLS did not come up; check both peers' logs"])
    pongs = o.pongs or {"received": 0, "expected": 0}
    return _fail("exchange-incomplete",
                 f"The data channel opened but only {pongs['received']} of {pongs['expected']} pings came back within {seconds}",
                 ["Packets are being lost on the selected path; try again or raise --timeout"])


def _diagnose_ice(o: Observation, seconds: str) -> PeerFailure:
    local_relay = any(c["type"] == "relay" for c in o.local)
    local_srflx = any(c["type"] == "srflx" for c in o.local)
    remote_srflx = any(c["type"] in ("srflx", "prflx") for c in o.remote)
    failed_pairs = sum(1 for p in o.pairs if p["state"] == "failed")
    tried = f" ({failed_pairs} of {len(o.pairs)} candidate pairs failed)" if o.pairs else ""

    if not o.local:
        if o.relay_only and o.turn:
            return _turn_refused(o, " and --relay-only allows nothing else")
        return _fail("no-local-candidates", "This peer gathered no ICE candidates at all",
                     ["No usable network interface was found (or --bind names an address this machine does not have)"])
    if not o.remote:
        return _fail("no-remote-candidates", f"The other peer sent no ICE candidates within {seconds}",
                     ["Look at the other peer's report: it may have no usable interface, or a relay-only setup whose TURN server refused it"])
    if o.turn and not local_relay and o.local_gathering_complete:
        return _turn_refused(o, " and --relay-only allows nothing else" if o.relay_only else tried)
    if o.stun and not local_srflx and not o.relay_only and o.local_gathering_complete and all(is_private(c["address"]) for c in o.local):
        return _fail("udp-blocked", f"No connection{tried}, and the STUN server {o.stun} never answered: outbound UDP looks blocked", [
            "A firewall is probably dropping UDP; use TURN over TCP or TLS: --with-turn with turn:HOST:443?transport=tcp or turns:HOST:443",
            "Or the STUN server is down or unreachable from this network",
        ])
    if local_srflx and remote_srflx and not local_relay:
        return _fail(
            "nat-traversal-failed",
            f"Both peers are behind NAT and every direct path failed{tried}: at least one NAT is likely symmetric "
            "(its mapping changes per destination) or a firewall drops inbound UDP",
            ["Hole punching cannot cross this pair of networks; a TURN relay can: add --with-turn"],
        )
    if o.trigger == "ice-failed":
        return _fail("ice-failed", f"Every candidate pair failed{tried}",
                     ["The peers cannot reach each other's addresses; a firewall drops the checks, or a TURN relay is needed (--with-turn)"])
    waiting_for = "" if o.remote_end_of_candidates else " (the other peer had not finished gathering)"
    return _fail("ice-timeout", f"ICE checks did not succeed within {seconds}{tried}{waiting_for}",
                 ["The checks got no answers: a firewall may drop UDP between the peers; try --with-turn"])


def turn_refused(turn: dict, detail: str = "") -> PeerFailure:
    transport = turn["transport"]
    return _fail("turn-refused", f"The TURN server {turn['url']} gave no relay candidate{detail}", [
        "The TURN server refused the allocation (wrong or expired credentials: check --turn-user and TURN_PASSWORD) or is unreachable",
        "If UDP is blocked here, try turn:HOST:PORT?transport=tcp" if transport == "udp" else f"Check that {transport.upper()} to the TURN server is allowed",
    ])


def _turn_refused(o: Observation, detail: str) -> PeerFailure:
    return turn_refused(o.turn, detail)


def _fail(reason: str, message: str, hints: List[str]) -> PeerFailure:
    return PeerFailure("connection", reason, message, hints)


def is_private(address: str) -> bool:
    """Addresses that cannot be reached from the internet without a mapping."""
    if ":" in address:
        return bool(re.match(r"^(fe80:|fc|fd|::1$)", address, re.I))
    try:
        a, b = (int(x) for x in address.split(".")[:2])
    except ValueError:
        return False
    return (a == 10 or a == 127 or (a == 172 and 16 <= b <= 31) or (a == 192 and b == 168)
            or (a == 100 and 64 <= b <= 127) or (a == 169 and b == 254))
