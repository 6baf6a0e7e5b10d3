"""What aiortc keeps inside its ICE agent (aioice), read out in the terms of core/peer-connection.ts:
the candidate pairs and their states, and the selected (nominated) pair.

A data-channel-only aiortc connection has one transport: pc.sctp (RTCSctpTransport) →
.transport (RTCDtlsTransport) → .transport (RTCIceTransport) → ._connection (aioice.Connection),
whose `_check_list` holds the pairs and `_nominated` the chosen pair per component. Both are
private: aiortc 1.4 has no getStats() entry for the selected pair.
"""
from typing import List, Optional

from aioice.ice import CandidatePair
from aiortc import RTCPeerConnection

from .candidates import describe_candidate, from_aioice

PAIR_STATES = {
    CandidatePair.State.FROZEN: "frozen",
    CandidatePair.State.WAITING: "waiting",
    CandidatePair.State.IN_PROGRESS: "in-progress",
    CandidatePair.State.SUCCEEDED: "succeeded",
    CandidatePair.State.FAILED: "failed",
}


def ice_transport(pc: RTCPeerConnection):
    sctp = pc.sctp
    return sctp.transport.transport if sctp is not None else None


def dtls_transport(pc: RTCPeerConnection):
    sctp = pc.sctp
    return sctp.transport if sctp is not None else None


def _agent(pc: RTCPeerConnection):
    transport = ice_transport(pc)
    return transport._connection if transport is not None else None


def candidate_pairs(pc: Optional[RTCPeerConnection]) -> List[dict]:
    agent = _agent(pc) if pc is not None else None
    if agent is None:
        return []
    pairs = []
    for pair in list(agent._check_list):
        if pair.protocol.local_candidate is None:
            continue
        pairs.append({
            "local": from_aioice(pair.local_candidate),
            "remote": from_aioice(pair.remote_candidate),
            "state": PAIR_STATES[pair.state],
        })
    return pairs


def selected_pair(pc: Optional[RTCPeerConnection], turn: Optional[dict]) -> Optional[dict]:
    agent = _agent(pc) if pc is not None else None
    if agent is None:
        return None
    pair = agent._nominated.get(1) or next(
        (p for p in agent._check_list if p.state == CandidatePair.State.SUCCEEDED and p.protocol.local_candidate), None
    )
    if pair is None or pair.protocol.local_candidate is None:
        return None
    local = from_aioice(pair.local_candidate)
    # aioice labels relay candidates "udp" whatever carries them to TURN: say which transport did.
    if local["type"] == "relay" and turn:
        local["relayProtocol"] = turn["transport"]
    return {"local": local, "remote": from_aioice(pair.remote_candidate)}


def describe_pair(pair: dict) -> str:
    relay = f" (relayed over TURN/{pair['local']['relayProtocol']})" if pair["local"].get("relayProtocol") else ""
    return f"{describe_candidate(pair['local'])}  <->  {describe_candidate(pair['remote'])}{relay}"
