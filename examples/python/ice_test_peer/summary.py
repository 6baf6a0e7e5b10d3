"""The last thing a run prints (as core/summary.ts): did it connect, over which pair, how fast, and if
not, why. The summary object has the TypeScript peers' field names, so one script reads all three."""
from collections import Counter
from typing import List

from .candidates import describe_candidate
from .peer_connection import describe_pair

TIMING_LABELS = [
    ("register", "registered"),
    ("peerFound", "peer found"),
    ("offer", "offer"),
    ("answer", "answer"),
    ("iceConnected", "ICE connected"),
    ("dtlsConnected", "DTLS connected"),
    ("channelOpen", "channel open"),
    ("total", "total"),
]


def describe_summary(s: dict) -> List[str]:
    lines = ["", "── summary ──────────────────────────────────────────────"]

    def row(label: str, value: str) -> None:
        lines.append(f"{label:<15}{value}")

    who = f"{s['role']} {s['peerId'] or '?'} ↔ {s['remotePeerId'] or 'nobody'} in room {s['room']}, {s['runtime']}"
    row("connected", f"{'YES' if s['connected'] else 'NO'}  ({who})")
    if s["selectedPair"]:
        row("selected pair", describe_pair(s["selectedPair"]))
    rtt = s["rttMs"]
    if rtt:
        row("round trip", f"min {rtt['min']:.2f} ms, avg {rtt['avg']:.2f} ms, max {rtt['max']:.2f} ms over {rtt['count']} pings")
    timings = s["timingsMs"]
    row("timings (ms)", ", ".join(f"{label} {round(timings[key])}" for key, label in TIMING_LABELS if key in timings))
    local, remote = s["candidates"]["local"], s["candidates"]["remote"]
    row("candidates", f"{len(local)} local ({_count_by_type(local)}), {len(remote)} remote ({_count_by_type(remote)})")
    if not s["connected"]:
        for c in local:
            row("  local", describe_candidate(c))
        for c in remote:
            row("  remote", describe_candidate(c))
    error = s.get("error")
    if error:
        row("reason", f"{error['reason']}: {error['message']}")
        for hint in error["hints"]:
            row("hint", hint)
    return lines


def _count_by_type(candidates: List[dict]) -> str:
    counts = Counter(c["type"] for c in candidates)
    return ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "none"
