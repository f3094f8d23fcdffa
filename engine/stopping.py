"""Tell the gateway when the server is told to stop (SIGTERM, SIGINT), as the server itself is told.

ASGI has no "shutdown begins" event: the lifespan's shutdown comes only after the server has waited
for the requests in progress. To end event streams properly when that wait runs out, the gateway must
know when it began, so it listens for the same signals, in front of the server's own handlers (which
still run, unchanged). Outside the main thread (a server run in a thread) there are no signals to hear.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["on_stop_signal"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def on_stop_signal(callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` in the running loop whenever a stop signal arrives; returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return _nothing
    loop = asyncio.get_running_loop()
    # only in front of a handler someone installed (the server's): never in place of the default one
    chained: dict[int, Callable[[int, FrameType | None], Any]] = {}
    for stop in _SIGNALS:
        previous = signal.getsignal(stop)
        if callable(previous):
            chained[stop] = previous

    def handle(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(callback)
        chained[signum](signum, frame)

    for signum in chained:
        signal.signal(signum, handle)

    def undo() -> None:
        for signum, before in chained.items():
            if signal.getsignal(signum) is handle:
                signal.signal(signum, before)

    return undo


def _nothing() -> None:
    pass
