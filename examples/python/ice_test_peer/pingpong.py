"""Round trips over the data channel, message for message as core/pingpong.ts.

Both peers send N pings, one after the other (the next when the previous pong is back), and answer
every ping of the other side with a pong; each sends {"type":"done"} once its N pongs are back and
is finished when, in addition, the other side is done (its `done`, or a Bye through signaling,
whichever arrives first). Closing earlier could drop the other side's last pong.
"""
import asyncio
import json
import time
from typing import Callable, List, Optional, Union


class PingPong:
    def __init__(self, send: Callable[[str], None], count: int,
                 on_round_trip: Callable[[int, float], None], on_unexpected: Callable[[str], None]):
        self._send = send
        self._count = count
        self._on_round_trip = on_round_trip
        self._on_unexpected = on_unexpected
        self._rtts: List[float] = []
        self._all_pongs: asyncio.Future = asyncio.get_event_loop().create_future()
        self._peer_done: asyncio.Future = asyncio.get_event_loop().create_future()
        self._pending: Optional[tuple] = None  # (seq, sent_at)
        self.sent = 0
        self.received = 0

    @property
    def pongs(self) -> int:
        return len(self._rtts)

    async def run(self) -> None:
        """Returns when our pings are answered and the other side is done with us."""
        self._send_next_ping()
        await self._all_pongs
        self._post({"type": "done"})
        await self._peer_done

    def peer_finished(self) -> None:
        """The other side said goodbye through signaling: it needs nothing more from us."""
        _resolve(self._peer_done)

    def stats(self) -> Optional[dict]:
        if not self._rtts:
            return None
        return {
            "min": min(self._rtts),
            "avg": _round(sum(self._rtts) / len(self._rtts)),
            "max": max(self._rtts),
            "count": len(self._rtts),
        }

    def receive(self, data: Union[str, bytes]) -> None:
        self.received += 1
        message = _parse(data)
        if message is None:
            self._on_unexpected(data if isinstance(data, str) else f"{len(data)} bytes of binary")
            return
        if message["type"] == "ping":
            self._post({"type": "pong", "seq": message["seq"]})
        elif message["type"] == "pong":
            self._on_pong(message["seq"])
        else:
            _resolve(self._peer_done)

    def _on_pong(self, seq: int) -> None:
        if self._pending is None or self._pending[0] != seq:
            return
        rtt = _round((time.perf_counter() - self._pending[1]) * 1000)
        self._pending = None
        self._rtts.append(rtt)
        self._on_round_trip(seq, rtt)
        self._send_next_ping()

    def _send_next_ping(self) -> None:
        if len(self._rtts) >= self._count:
            _resolve(self._all_pongs)
            return
        seq = len(self._rtts) + 1
        self._pending = (seq, time.perf_counter())
        self._post({"type": "ping", "seq": seq})

    def _post(self, message: dict) -> None:
        self.sent += 1
        self._send(json.dumps(message, separators=(",", ":")))


def _parse(data: Union[str, bytes]) -> Optional[dict]:
    if not isinstance(data, str):
        return None
    try:
        value = json.loads(data)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    kind = value.get("type")
    seq = value.get("seq")
    if kind in ("ping", "pong") and isinstance(seq, int) and not isinstance(seq, bool):
        return {"type": kind, "seq": seq}
    return {"type": "done"} if kind == "done" else None


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


def _round(ms: float) -> float:
    return round(ms * 100) / 100
