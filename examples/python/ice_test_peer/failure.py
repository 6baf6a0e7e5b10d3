"""Every way a run can end badly, each with its exit code (as core/failure.ts), so scripts can tell
a typo from a blocked network without parsing text."""
from typing import List, Optional

EXIT_CODES = {
    "ok": 0,
    "internal": 1,
    "usage": 2,
    "signaling": 3,
    "connection": 4,
    "interrupted": 130,
}


class PeerFailure(Exception):
    """A failure with a kind (which picks the exit code), a stable reason and hints for a person."""

    def __init__(self, kind: str, reason: str, message: str, hints: Optional[List[str]] = None):
        super().__init__(message)
        self.kind = kind
        self.reason = reason
        self.message = message
        self.hints = list(hints or [])

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.kind]

    def as_dict(self) -> dict:
        return {"kind": self.kind, "reason": self.reason, "message": self.message, "hints": self.hints}


def usage_error(message: str) -> PeerFailure:
    return PeerFailure("usage", "usage", message)


def as_failure(err: BaseException) -> PeerFailure:
    """Anything raised becomes a PeerFailure; an unexpected error keeps its message but is internal."""
    if isinstance(err, PeerFailure):
        return err
    text = str(err) or type(err).__name__
    return PeerFailure("internal", "internal", f"Unexpected error: {text}")
