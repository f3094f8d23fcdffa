"""A wall clock a test moves by hand, for gateways and limiters that take an injected `clock`.

It stands still until the test moves it, so an assertion about minute windows, budget periods or
expiry holds whatever the real time is when the suite runs.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["START", "FakeClock"]

START = datetime(2026, 11, 22, 12, 0, 30, tzinfo=UTC).timestamp()  # 30 s into a minute


class FakeClock:
    """Epoch seconds, like `time.time`, frozen at `start` until `advance` or `set` moves it."""

    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def set(self, moment: float) -> None:
        self.now = moment
