"""One cached answer as it is kept (msgpack bytes, in memory or in Redis) and how it is told again.

A whole answer keeps its body bytes; a stream keeps its pieces as the pipeline yielded them: the
pass-through SSE bytes as they were, a mapping's canonical chunks as chunks. A hit gives the pipeline
the same pieces again, so each route renders them exactly as it rendered the original (the OpenAI
route: the same SSE bytes; a dialect route: the same events, with its own fresh ids).

Pieces are kept before the answer is renamed to the alias (engine.pipeline.run renames a hit again,
to the same alias: it is part of the key).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec

from engine.pipeline.outcome import Tally
from engine.pipeline.stream_events import Chunks, StreamError, StreamPiece

__all__ = ["Entry", "StreamRecorder", "decode_entry", "encode_entry", "replay"]

_SSE, _CHUNKS = 0, 1


class Entry(msgspec.Struct, array_like=True, forbid_unknown_fields=False):
    stored_at: float  # the gateway's clock (epoch seconds), for s-maxage
    expires_at: float  # the gateway's clock: a store's own expiry is only its housekeeping
    media_type: str
    body: bytes | None = None  # a whole answer
    answer_is_body: bool = False  # the canonical answer is `body` decoded (else the body is raw)
    pieces: list[tuple[int, bytes]] | None = None  # a stream: (_SSE, bytes) or (_CHUNKS, msgpack)
    warning: str | None = None  # the original's x-turnout-warning (a parameter dropped)


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Entry)
_chunks_decoder = msgspec.msgpack.Decoder(list[Any])


def encode_entry(entry: Entry) -> bytes:
    return _encoder.encode(entry)


def decode_entry(data: bytes) -> Entry | None:
    """None for bytes that are not an entry (another version's, or damaged): a miss, not a failure."""
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


async def replay(pieces: list[tuple[int, bytes]]) -> AsyncIterator[StreamPiece]:
    for kind, data in pieces:
        yield data if kind == _SSE else Chunks(_chunks_decoder.decode(data))


class StreamRecorder:
    """Passes a stream's pieces on and keeps a copy; `done` gets them once the stream completed
    without an error and within `limit` bytes (else nothing is kept, and `too_large` is told)."""

    __slots__ = ("_done", "_limit", "_pieces", "_size", "_tally", "_too_large")

    def __init__(
        self,
        tally: Tally,
        limit: int,
        done: Callable[[list[tuple[int, bytes]]], None],
        too_large: Callable[[], None],
    ) -> None:
        self._tally = tally
        self._limit = limit
        self._done = done
        self._too_large = too_large
        self._pieces: list[tuple[int, bytes]] | None = []
        self._size = 0

    async def record(self, stream: AsyncIterator[StreamPiece]) -> AsyncIterator[StreamPiece]:
        failed = False
        async for piece in stream:
            if self._pieces is not None:
                failed = failed or self._keep(piece)
            yield piece
        usage = self._tally.stream
        if self._pieces is not None and not failed and (usage is None or usage.error is None):
            self._done(self._pieces)  # only after the last piece: a client that left stored nothing

    def _keep(self, piece: StreamPiece) -> bool:
        """Keep a copy of one piece; True when it is an error (the answer is not one to keep)."""
        assert self._pieces is not None
        if isinstance(piece, StreamError):
            self._pieces = None
            return True
        if isinstance(piece, Chunks):
            kept = (_CHUNKS, _encoder.encode(piece.items))
        elif piece:
            kept = (_SSE, bytes(piece))
        else:
            return False  # the empty READY marker
        self._size += len(kept[1])
        if self._size > self._limit:
            self._pieces = None  # stop copying: it will not be kept
            self._too_large()
            return False
        self._pieces.append(kept)
        return False
