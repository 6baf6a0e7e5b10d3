"""Remote candidates can arrive before the description they belong to (signaling is faster than SDP
handling, and either peer may start first). They are held here and applied, in order, once the
remote description is set; end-of-candidates (None) is held the same way. As core/trickle.ts, plus
a lock: applying is asynchronous here, and an end-of-candidates overtaking a candidate would make
aiortc drop that candidate silently."""
import asyncio
from typing import Awaitable, Callable, List, Optional


class RemoteCandidates:
    def __init__(self, apply: Callable[[Optional[dict]], Awaitable[None]]):
        self._apply = apply
        self._held: List[Optional[dict]] = []
        self._ready = False
        self._lock = asyncio.Lock()

    async def add(self, candidate: dict) -> None:
        await self._apply_or_hold(candidate)

    async def end(self) -> None:
        await self._apply_or_hold(None)

    async def description_set(self) -> int:
        """Applies everything held; returns how many candidates that was."""
        async with self._lock:
            self._ready = True
            held, self._held = self._held, []
            for candidate in held:
                await self._apply(candidate)
        return sum(1 for candidate in held if candidate is not None)

    async def _apply_or_hold(self, candidate: Optional[dict]) -> None:
        async with self._lock:
            if self._ready:
                await self._apply(candidate)
            else:
                self._held.append(candidate)
