"""What a pipeline event stream yields, and the OpenAI chat route's rendering of it as SSE bytes.

    bytes        whole SSE events already in the OpenAI chat dialect: a pass-through upstream's, as it
                 sent them (not decoded: passing them on costs nothing), and the final `data: [DONE]`
    Chunks       canonical chunks a mapping translated from one upstream event, not yet encoded
    StreamError  the error that ends a stream (an upstream failure mid-stream, the end of the shutdown
                 grace); each route renders it in its own shape

The OpenAI route encodes at its edge (`SseRenderer`, piece by piece); dialect routes translate the same pieces
(`ChunkReader`), so a translated chunk is never encoded to be decoded again, and a pass-through
one is decoded once, only for a dialect.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec

from engine.errors import TurnoutError
from engine.mapping.framing import SseDecoder
from engine.pipeline.translate import encode_json

__all__ = [
    "ChunkReader",
    "Chunks",
    "SseRenderer",
    "StreamError",
    "StreamPiece",
    "error_event",
    "openai_sse",
    "sse_event",
]

_decode = msgspec.json.Decoder().decode


class Chunks:
    """Canonical chunks (dicts in the OpenAI chat chunk shape) translated from one upstream event."""

    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        self.items = items


class StreamError:
    """The error that ends a stream after its first bytes (the HTTP status is sent by then)."""

    __slots__ = ("error",)

    def __init__(self, error: TurnoutError) -> None:
        self.error = error


StreamPiece = bytes | Chunks | StreamError


def sse_event(payload: Any) -> bytes:
    return b"data: " + encode_json(payload) + b"\n\n"


def error_event(error: TurnoutError) -> bytes:
    return b"data: " + error.to_json() + b"\n\n"


class SseRenderer:
    """Pieces as the OpenAI chat dialect's SSE bytes, one at a time: chunks encoded, an error as a last
    `data: {"error": ...}` event (in an event of its own after an upstream's half event)."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last = b""  # the last bytes rendered

    def render(self, piece: StreamPiece) -> bytes:
        if isinstance(piece, bytes):
            if piece:
                self._last = piece
            return piece
        if isinstance(piece, Chunks):
            self._last = b"".join([sse_event(chunk) for chunk in piece.items])
            return self._last
        return _event_boundary(self._last) + error_event(piece.error)


async def openai_sse(stream: AsyncIterator[StreamPiece]) -> AsyncIterator[bytes]:
    """The pieces as the OpenAI chat dialect's SSE bytes (SseRenderer)."""
    render = SseRenderer().render
    async for piece in stream:
        yield render(piece)


def _event_boundary(tail: bytes) -> bytes:
    """A blank line when the bytes before stopped mid-event, so that the error event is an event of its
    own (otherwise its `data:` line would be glued to the unfinished one and lost to the client)."""
    return b"" if not tail or tail.endswith((b"\n\n", b"\r\n\r\n", b"\r\r")) else b"\n\n"


class ChunkReader:
    """Pieces to canonical chunks for a dialect route: pass-through bytes decoded here, once; an
    error (the pipeline's own, or an upstream's in-band error event) as an `{"error": ...}` chunk."""

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        self._decoder = SseDecoder()

    def chunks(self, piece: StreamPiece) -> Iterator[Any]:
        if isinstance(piece, Chunks):
            yield from piece.items
        elif isinstance(piece, StreamError):
            yield piece.error.body()
        else:
            for raw in self._decoder.feed(piece):
                if raw.data != b"[DONE]":
                    yield _decode(raw.data)
