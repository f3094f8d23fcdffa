"""An upstream answer that arrives in given reads: enough of engine.upstream.UpstreamResponse for the
stream functions, without a socket (for unit tests of how pieces are cut)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import cast

from engine.upstream import UpstreamResponse

__all__ = ["event_stream_reads"]


class _Reads:
    def __init__(self, reads: list[bytes]) -> None:
        self._reads = reads
        self.headers = {"content-type": "text/event-stream"}

    async def chunks(self) -> AsyncIterator[bytes]:
        for data in self._reads:
            yield data

    def close(self) -> None:
        pass


def event_stream_reads(reads: list[bytes]) -> UpstreamResponse:
    """An event stream (text/event-stream) whose body arrives as `reads`."""
    return cast(UpstreamResponse, _Reads(reads))
