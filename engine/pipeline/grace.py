"""The end of the shutdown grace: event streams still running then end with an error event, not a cut.

After SIGTERM the server stops accepting connections and waits `shutdown_grace` seconds for the
requests in progress (`StreamGrace.begin`). A stream still running when that time is up would be cut
mid-event by the server, which a client cannot tell from a network failure. Instead each one is ended
here: its task is cancelled, and `metered_stream` turns that cancellation into a final
`server_shutting_down` StreamError (dialects translate it like any other error), the end of the
stream, and a 503 row. A stream that starts after the grace has ended is ended at its first await.
"""

from __future__ import annotations

import asyncio

from engine.errors import ServerShuttingDown
from engine.pipeline.stream_events import StreamError

__all__ = ["RunningStream", "StreamGrace"]


class RunningStream:
    """One stream in progress: the task iterating it, and whether the end of the grace has ended it."""

    __slots__ = ("_streams", "ended", "task")

    def __init__(self, streams: set[RunningStream], task: asyncio.Task[object] | None) -> None:
        self._streams = streams
        self.task = task
        self.ended = False

    def end(self) -> None:
        if not self.ended and self.task is not None:
            self.ended = True
            self.task.cancel()

    def leave(self) -> None:
        self._streams.discard(self)

    def resume(self, exc: BaseException) -> bool:
        """After catching `exc`: True when it is this stream's own cancellation, now taken back, so that
        the stream can still say goodbye; False for anything else, which must go on."""
        return isinstance(exc, asyncio.CancelledError) and self.task is not None and self.task.uncancel() == 0

    @staticmethod
    def farewell() -> StreamError:
        """The error that ends the stream (each route renders it in its own shape)."""
        return StreamError(
            ServerShuttingDown("the server is shutting down and ended this stream; retry the request")
        )


class StreamGrace:
    """The event streams in progress, all ended when the shutdown grace runs out."""

    def __init__(self) -> None:
        self._streams: set[RunningStream] = set()
        self._timer: asyncio.TimerHandle | None = None
        self.over = False  # the grace has ended: streams that start now end at once

    def enter(self) -> RunningStream:
        """A stream starts, in the task that iterates it; it calls `leave` when it ends."""
        running = RunningStream(self._streams, asyncio.current_task())
        self._streams.add(running)
        if self.over:
            running.end()
        return running

    def begin(self, seconds: float) -> None:
        """The server is stopping: end the streams still running in `seconds` (counted from the first
        call, however often the server is told to stop)."""
        if self._timer is None and not self.over:
            self._timer = asyncio.get_running_loop().call_later(max(seconds, 0.0), self.end)

    def end(self) -> None:
        self.over = True
        for running in list(self._streams):
            running.end()
