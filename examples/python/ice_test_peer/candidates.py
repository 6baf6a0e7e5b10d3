"""ICE candidates as a person reads them (type, protocol, address, port, priority, related address),
in the shape of core/candidates.ts's CandidateInfo, from SDP text or from aioice's objects."""
import re
from typing import List, Optional, Tuple

from aioice import Candidate


def parse_candidate(text: str) -> Optional[dict]:
    """Parses "candidate:…" (with or without "a="); None when it is not a candidate."""
    try:
        return from_aioice(Candidate.from_sdp(strip_prefix(text)))
    except (ValueError, IndexError):
        return None


def strip_prefix(text: str) -> str:
    return re.sub(r"^(a=)?candidate:", "", text.strip())


def from_aioice(candidate: Candidate) -> dict:
    info = {
        "type": candidate.type,
        "protocol": candidate.transport.lower(),
        "address": candidate.host,
        "port": candidate.port,
        "priority": candidate.priority,
        "foundation": candidate.foundation,
    }
    if candidate.related_address is not None:
        info["relatedAddress"] = candidate.related_address
    if candidate.related_port is not None:
        info["relatedPort"] = candidate.related_port
    if candidate.tcptype is not None:
        info["tcpType"] = candidate.tcptype
    return info


def candidates_in_sdp(sdp: str) -> List[str]:
    """The `a=candidate:` lines of a description, without the `a=`. aiortc puts all of its own here
    instead of trickling them."""
    return [line[2:].strip() for line in sdp.splitlines() if line.startswith("a=candidate:")]


def describe_candidate(c: dict) -> str:
    related = f" via {c['relatedAddress']}:{c.get('relatedPort', 0)}" if c.get("relatedAddress") else ""
    return f"{c['type']:<5} {c['protocol']} {format_address(c['address'], c['port'])}{related} prio {c['priority']}"


def format_address(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def without_redundant(sdp: str) -> Tuple[str, List[str]]:
    """Drops server-reflexive candidates whose address and port are those of their own base (STUN
    on the same network, or no NAT), which RFC 8445 section 5.1.3 calls redundant and browsers never
    send; aioice keeps them. Returns the SDP to send and the candidates left out."""
    kept, dropped = [], []
    for line in sdp.split("\r\n"):
        if line.startswith("a=candidate:"):
            info = parse_candidate(line)
            if info and info["type"] == "srflx" and (info.get("relatedAddress"), info.get("relatedPort")) == (info["address"], info["port"]):
                dropped.append(line[2:])
                continue
        kept.append(line)
    return "\r\n".join(kept), dropped
