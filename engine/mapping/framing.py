"""Stream framing: split upstream body bytes into events, whatever size the network chunks have.

- `ndjson`: one JSON value per line.
- `sse`: Server-Sent Events; an event's `data:` lines joined, its `event:` name kept (for event-typed
  streams); comments and keep-alives skipped; `data: [DONE]` reported as the end marker.
- `SseSplitter`: whole SSE events as the bytes that came (for streams passed through unchanged), and
  `check_sse_events`, which refuses events whose data is not JSON (or `[DONE]`).

A line or event that has not ended is kept as the pieces that came and joined once, when its end
arrives: appending each piece to what came before would copy a huge event once per network chunk
(quadratic). With `max_event_bytes`, an event that grows past it raises `FrameTooLarge`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import msgspec

__all__ = [
    "DONE",
    "FrameDecoder",
    "FrameTooLarge",
    "MalformedEvent",
    "RawEvent",
    "SseSplitter",
    "check_sse_events",
    "decoder_for",
    "split_sse_events",
]

DONE = "[DONE]"


class FrameTooLarge(ValueError):
    """An event (or line) grew past `max_event_bytes` without ending."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"a stream event grew past {limit} bytes without ending")
        self.limit = limit


class MalformedEvent(ValueError):
    """A passed-through event whose data is neither JSON nor `[DONE]`."""


_decode = msgspec.json.Decoder().decode
_EVENT_ENDS = (b"\n\n", b"\r\n\r\n")  # the blank lines that end an event (as _last_event_end finds them)


@dataclass(frozen=True, slots=True)
class RawEvent:
    data: bytes  # the event's payload (JSON text, or b"[DONE]")
    event_type: str | None = None  # SSE `event:` name, None for unnamed events and NDJSON


class FrameDecoder:
    """Feed bytes, get complete events; `close()` returns what a final unterminated frame held."""

    def __init__(self, max_event_bytes: int | None = None) -> None:
        self._limit = max_event_bytes
        self._buffer = b""  # the start of a line that has not ended
        self._parts: list[bytes] = []  # more of it: pieces without a line break, joined when it ends
        self._held = 0  # bytes in _buffer and _parts

    def feed(self, data: bytes) -> Iterator[RawEvent]:
        raise NotImplementedError

    def close(self) -> Iterator[RawEvent]:
        raise NotImplementedError

    def _hold(self, data: bytes) -> None:
        """Keep a piece without a line break (not copied onto what came before: that is quadratic)."""
        if not self._parts:
            self._held = len(self._buffer)
        self._parts.append(data)
        self._held += len(data)
        if self._limit is not None and self._held > self._limit:
            raise FrameTooLarge(self._limit)

    def _rest(self) -> bytes:
        """All that is held, once the stream has ended (a last line past the limit is refused too)."""
        rest = b"".join((self._buffer, *self._parts)) if self._parts else self._buffer
        self._buffer, self._parts = b"", []
        if self._limit is not None and len(rest) > self._limit:
            raise FrameTooLarge(self._limit)
        return rest


class NdjsonDecoder(FrameDecoder):
    def feed(self, data: bytes) -> Iterator[RawEvent]:
        buffer = data
        if self._buffer:  # a line began in an earlier piece
            if b"\n" not in data:
                self._hold(data)
                return
            buffer = b"".join((self._buffer, *self._parts, data)) if self._parts else self._buffer + data
            self._parts = []
        *lines, self._buffer = buffer.split(b"\n")
        for line in lines:
            line = line.strip()
            if line:
                yield RawEvent(line)

    def close(self) -> Iterator[RawEvent]:
        rest = self._rest().strip()
        if rest:
            yield RawEvent(rest)


class SseDecoder(FrameDecoder):
    def __init__(self, max_event_bytes: int | None = None) -> None:
        super().__init__(max_event_bytes)
        self._data: list[bytes] = []
        self._size = 0  # bytes of an event that spans pieces, so far
        self._event: str | None = None

    def feed(self, data: bytes) -> Iterator[RawEvent]:
        buffer = data
        if self._buffer:  # a line began in an earlier piece
            if b"\n" not in data and b"\r" not in data:
                self._hold(data)
                return
            buffer = b"".join((self._buffer, *self._parts, data)) if self._parts else self._buffer + data
            self._parts = []
        held = b""
        if b"\r" in buffer:
            if buffer.endswith(b"\r"):  # maybe half of a \r\n split across network chunks: wait for more
                buffer, held = buffer[:-1], b"\r"
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, rest = buffer.split(b"\n")
        self._buffer = rest + held
        for line in lines:
            event = self._line(line)
            if event is not None:
                yield event
        if self._data and self._limit is not None:  # an event of many lines, still without its end
            self._size += len(buffer)
            if self._size > self._limit:
                raise FrameTooLarge(self._limit)

    def _line(self, line: bytes) -> RawEvent | None:
        """Take one line; the event it ends, if any (a plain call: a generator per line costs more)."""
        if not line:
            event = RawEvent(b"\n".join(self._data), self._event) if self._data else None
            self._data, self._event, self._size = [], None, 0
            return event
        if line.startswith(b":"):
            return None
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        return None

    def close(self) -> Iterator[RawEvent]:
        rest = self._rest()
        if rest:
            self._line(rest)  # a last line that never ended (only a blank line ends an event)
        event = self._line(b"")
        if event is not None:
            yield event


class SseSplitter:
    """Whole SSE events, as the bytes that came (each with its blank-line end), from any chunking."""

    def __init__(self, max_event_bytes: int | None = None) -> None:
        self._limit = max_event_bytes
        self._parts: list[bytes] = []  # an event whose end has not arrived
        self._size = 0

    def feed(self, data: bytes) -> bytes:
        """The events that `data` completes (b"" when none): usually `data` itself, not copied. The
        limit is checked on what stays held, when more of it comes (or at the end): complete events
        are returned first, however the bytes were cut into pieces."""
        if not self._parts:
            if data.endswith(_EVENT_ENDS):  # whole events (nearly every piece): the piece as it came
                return data
            end = _last_event_end(data)
            if end == len(data):
                return data
            if not end:
                self._hold(data)
                return b""
            self._parts, self._size = [data[end:]], len(data) - end
            return data[:end]
        edge = self._parts[-1][-3:]  # an end marker may straddle the pieces
        end = _last_event_end(edge + data) - len(edge)
        if end <= 0:
            self._hold(data)
            return b""
        whole = b"".join((*self._parts, data[:end]))
        self._parts, self._size = ([data[end:]], len(data) - end) if end < len(data) else ([], 0)
        return whole

    def rest(self) -> bytes:
        """What came after the last complete event (an unterminated final event), and forget it."""
        rest, size = b"".join(self._parts), self._size
        self._parts, self._size = [], 0
        if self._limit is not None and size > self._limit:
            raise FrameTooLarge(self._limit)
        return rest

    def _hold(self, data: bytes) -> None:
        self._parts.append(data)
        self._size += len(data)
        if self._limit is not None and self._size > self._limit:
            raise FrameTooLarge(self._limit)


def check_sse_events(events: bytes) -> None:
    """Raise MalformedEvent unless the data of every event in `events` is JSON or `[DONE]`."""
    decoder = SseDecoder()
    for event in (*decoder.feed(events), *decoder.close()):
        if event.data == DONE.encode():
            continue
        try:
            _decode(event.data)
        except msgspec.DecodeError:
            raise MalformedEvent("an event's data is not JSON") from None


def split_sse_events(data: bytes) -> list[bytes]:
    """Whole SSE events, each with its blank-line end, so that the kept ones join back unchanged."""
    events, start = [], 0
    while start < len(data):
        ends = [i for i in (data.find(b"\n\n", start), data.find(b"\r\n\r\n", start)) if i >= 0]
        if not ends:
            events.append(data[start:])
            break
        end = min(ends)
        end += 4 if data.startswith(b"\r\n\r\n", end) else 2
        events.append(data[start:end])
        start = end
    return events


def _last_event_end(data: bytes) -> int:
    """The offset just past the last blank line (event end) in `data`; 0 when there is none."""
    lf, crlf = data.rfind(b"\n\n"), data.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)


def decoder_for(framing: str, max_event_bytes: int | None = None) -> FrameDecoder:
    if framing == "sse":
        return SseDecoder(max_event_bytes)
    return NdjsonDecoder(max_event_bytes)
