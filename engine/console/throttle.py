"""Failed console sign-ins, counted per client address: after `limit` failures within `window`
seconds, that address is refused until the oldest of them leaves the window.

In process memory (per worker): a guesser spread across workers gets `limit` tries on each, still a
handful per window. The table is bounded, so a flood of addresses cannot grow it without end.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable

__all__ = ["SignInThrottle"]

_MAX_ADDRESSES = 10_000


class SignInThrottle:
    def __init__(self, clock: Callable[[], float], *, limit: int, window: float) -> None:
        self._clock = clock
        self._limit = limit
        self._window = window
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self.failed_total = 0  # every failure since start, for /metrics

    def _recent(self, address: str) -> deque[float]:
        times = self._failures.get(address)
        if times is None:
            return deque()
        horizon = self._clock() - self._window
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failures[address]
        return times

    def locked_for(self, address: str) -> float:
        """Seconds until `address` may try again; 0 when it may now."""
        times = self._recent(address)
        if len(times) < self._limit:
            return 0.0
        return max(0.0, times[0] + self._window - self._clock())

    def failed(self, address: str) -> None:
        self.failed_total += 1
        times = self._failures.setdefault(address, deque())
        times.append(self._clock())
        self._failures.move_to_end(address)
        while len(times) > self._limit:
            times.popleft()
        while len(self._failures) > _MAX_ADDRESSES:
            self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)
