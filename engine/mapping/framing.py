"""Stream framing: split upstream body bytes into events, whatever size the network chunks have.

- `ndjson`: one JSON value per line.
- `sse`: Server-Sent Events; an event's `data:` lines joined, its `event:` name kept (for event-typed
  streams); comments and keep-alives skipped; `data: [DONE]` reported as the end marker.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["DONE", "FrameDecoder", "RawEvent", "decoder_for"]

DONE = "[DONE]"


@dataclass(frozen=True, slots=True)
class RawEvent:
    data: bytes  # the event's payload (JSON text, or b"[DONE]")
    event_type: str | None = None  # SSE `event:` name, None for unnamed events and NDJSON


class FrameDecoder:
    """Feed bytes, get complete events; `close()` returns what a final unterminated frame held."""

    def feed(self, data: bytes) -> Iterator[RawEvent]:
        raise NotImplementedError

    def close(self) -> Iterator[RawEvent]:
        raise NotImplementedError


class NdjsonDecoder(FrameDecoder):
    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> Iterator[RawEvent]:
        buffer = self._buffer + data if self._buffer else data
        *lines, self._buffer = buffer.split(b"\n")
        for line in lines:
            line = line.strip()
            if line:
                yield RawEvent(line)

    def close(self) -> Iterator[RawEvent]:
        rest, self._buffer = self._buffer.strip(), b""
        if rest:
            yield RawEvent(rest)


class SseDecoder(FrameDecoder):
    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []
        self._event: str | None = None

    def feed(self, data: bytes) -> Iterator[RawEvent]:
        buffer = self._buffer + data if self._buffer else data
        held = b""
        if b"\r" in buffer:
            if buffer.endswith(b"\r"):  # maybe half of a \r\n split across network chunks: wait for more
                buffer, held = buffer[:-1], b"\r"
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, rest = buffer.split(b"\n")
        self._buffer = rest + held
        for line in lines:
            yield from self._line(line)

    def _line(self, line: bytes) -> Iterator[RawEvent]:
        if not line:
            if self._data:
                yield RawEvent(b"\n".join(self._data), self._event)
            self._data, self._event = [], None
            return
        if line.startswith(b":"):
            return
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")

    def close(self) -> Iterator[RawEvent]:
        if self._buffer:
            yield from self._line(self._buffer)
            self._buffer = b""
        yield from self._line(b"")


def decoder_for(framing: str) -> FrameDecoder:
    return SseDecoder() if framing == "sse" else NdjsonDecoder()
