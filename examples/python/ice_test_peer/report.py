"""The output is the product: every step, as it happens, with the milliseconds since start, as a line
a person reads or (with --json) a JSON line a script parses, in core/report.ts's format."""
import json
import time
from typing import Callable, Iterable


class Report:
    def __init__(self, write: Callable[[str], None], as_json: bool):
        self._write = write
        self._json = as_json
        self._started = time.perf_counter()

    def elapsed(self) -> float:
        """Milliseconds since the run started, to 0.1 ms."""
        return round((time.perf_counter() - self._started) * 1000, 1)

    def step(self, event: str, text: str, fields: dict = None) -> None:
        """One step: `text` for people, `event` + `fields` for scripts."""
        t = self.elapsed()
        if self._json:
            self._write(to_json({"t": t, "event": event, **(fields or {})}))
        else:
            self._write(f"{t:9.1f} ms  {text}")

    def block(self, event: str, lines: Iterable[str], fields: dict) -> None:
        """A block of lines for people, or one object for scripts."""
        if self._json:
            self._write(to_json({"t": self.elapsed(), "event": event, **fields}))
        else:
            for line in lines:
                self._write(line)


def to_json(value: dict) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
