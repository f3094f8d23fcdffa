"""Token usage of a streamed answer, read from its canonical chunks as they go by.

The pipeline asks the upstream for usage (`stream_options.include_usage`) whenever the mapping passes
that parameter on. When the client did not ask for it, the usage chunk is taken out again (clients that
index `choices[0]` of every chunk break on OpenAI's usage-only chunk). When no usage arrives at all,
the streamed text is counted and the record is marked as estimated.

A pass-through stream's events are read as they go by (`sse`): each data line is decoded (which checks
it is JSON) into `_Plain`, a typed view of the few fields the count needs, so that a plain chunk costs
one decode and no dict. Anything else (a usage or error chunk, a shape the view does not expect, a
field of another type) is decoded again in full and read by `chunk`, which every event would
otherwise go through: the count is the same either way.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, Struct, UnsetType

from engine.mapping.framing import MalformedEvent, check_sse_events, split_sse_events
from engine.mapping.spec import ParamPolicy
from engine.pipeline.tokens import generated_characters

__all__ = ["StreamUsage", "ask_for_usage"]

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode
_UNCHANGED = object()


# the typed view of a plain chunk: the fields `generated_characters` reads, of the types it counts (or
# null); a field of another type, or an unknown field in a delta, fails the decode and the chunk is read
# the general way (unknown fields elsewhere are skipped, as the count ignores them)
class _Function(Struct):
    name: str | None = None
    arguments: str | None = None


class _ToolCall(Struct):
    function: _Function | None = None


class _Text(Struct):
    """A delta's or a choice's generated text (absent: UNSET, which is falsy like None)."""

    content: str | UnsetType | None = UNSET
    reasoning_content: str | UnsetType | None = UNSET
    reasoning: str | UnsetType | None = UNSET
    text: str | UnsetType | None = UNSET
    refusal: str | UnsetType | None = UNSET
    tool_calls: list[_ToolCall] | UnsetType | None = UNSET

    def characters(self) -> int:
        total = (
            len(self.content or "")
            + len(self.reasoning_content or "")
            + len(self.reasoning or "")
            + len(self.text or "")
            + len(self.refusal or "")
        )
        for call in self.tool_calls or ():
            function = call.function
            if function is not None:
                total += len(function.name or "") + len(function.arguments or "")
        return total


class _Delta(_Text, forbid_unknown_fields=True):
    # every field known, so that "no field set" means an empty object, which counts the choice instead
    role: str | UnsetType | None = UNSET

    def empty(self) -> bool:
        return (
            self.content is UNSET
            and self.role is UNSET
            and self.tool_calls is UNSET
            and self.reasoning_content is UNSET
            and self.reasoning is UNSET
            and self.text is UNSET
            and self.refusal is UNSET
        )


class _Choice(_Text):
    delta: _Delta | None = None


class _Plain(Struct):
    """A chunk with neither usage nor an error (either is read the general way)."""

    choices: list[_Choice] | None = None
    usage: None = None
    error: None = None

    def characters(self) -> int:
        total = 0
        for choice in self.choices or ():
            delta = choice.delta  # `delta or choice`, as `chunk` counts it
            total += choice.characters() if delta is None or delta.empty() else delta.characters()
        return total


_decode_plain = msgspec.json.Decoder(_Plain).decode


class StreamUsage:
    def __init__(self, *, strip: bool) -> None:
        self.strip = strip  # the client did not ask for usage: take it out of what it gets
        self.usage: dict[str, Any] | None = None
        self.characters = 0
        self.error: tuple[str, str | None] | None = None  # (type, code) of an error reported mid-stream
        self.model: str | None = None  # the model the usage chunk names (a trace's gen_ai.response.model)

    def chunk(self, chunk: Any) -> Any:
        """Note one canonical chunk; the chunk to send on (None: send nothing)."""
        if not isinstance(chunk, dict):
            return chunk
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict):
                    self.characters += generated_characters(choice.get("delta") or choice)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
            model = chunk.get("model")
            self.model = model if isinstance(model, str) else None
            if self.strip:
                if not choices:
                    return None
                return {name: value for name, value in chunk.items() if name != "usage"}
        error = chunk.get("error")
        if isinstance(error, dict):
            self.error = (str(error.get("type") or "upstream_error"), error.get("code"))
        return chunk

    def sse(self, events: bytes) -> bytes:
        """Note whole SSE events (a passthrough stream's bytes); the bytes to send on. MalformedEvent when
        an event's data is not JSON."""
        # (bytes.find, not `in`: `in` tries the operand as an int first, and that failed attempt builds
        # a TypeError, several times the cost of the search)
        if events.find(b"data:") < 0:
            return events
        try:
            if events.startswith(b"data: {") and events.endswith(b"}\n\n") and _one_line(events):
                # one event of one data line (nearly every piece of a stream): what splitlines would give
                replaced = self._data(events[6:-2])
                if replaced is _UNCHANGED:
                    return events
                return b"" if replaced is None else _event(replaced)
            if self.strip and events.find(b'"usage"') >= 0:
                return self._stripped(events)
            for line in events.splitlines():
                self._line(line)
            return events
        except MalformedEvent:  # one data line of several may not be JSON alone: judge whole events
            check_sse_events(events)
            return events

    def _stripped(self, events: bytes) -> bytes:
        """The events with each usage chunk taken out (or sent again without its usage)."""
        kept = []
        changed = False
        for event in split_sse_events(events):
            for line in event.splitlines():
                replaced = self._line(line)
                if replaced is not _UNCHANGED:
                    # a usage chunk the client did not ask for: gone, or sent again without its usage
                    event = b"" if replaced is None else _event(replaced)
                    changed = True
                    break
            kept.append(event)
        return b"".join(kept) if changed else events

    def _line(self, line: bytes) -> Any:
        """Note one line; what its event becomes: _UNCHANGED, None (taken out) or another chunk."""
        if not line.startswith(b"data:"):
            return _UNCHANGED
        data = line[5:].strip()
        if not data.startswith(b"{"):
            if data and data != b"[DONE]":
                raise MalformedEvent(data[:40].decode("utf-8", "replace"))
            return _UNCHANGED
        return self._data(data)

    def _data(self, data: bytes) -> Any:
        """Note one JSON object's data; what its event becomes, as for `_line`."""
        try:
            try:
                plain = _decode_plain(data)
                if not data.isascii():
                    data.decode()  # the typed decode skips unread strings unchecked; the full one does not
            except msgspec.ValidationError:  # a usage or error chunk, or a shape the view does not read
                chunk = _decode(data)  # (the view may have stopped early: the rest is checked here)
            else:
                self.characters += plain.characters()
                return _UNCHANGED
        except (msgspec.DecodeError, UnicodeDecodeError):
            raise MalformedEvent(data[:40].decode("utf-8", "replace")) from None
        sent = self.chunk(chunk)
        return _UNCHANGED if sent is chunk else sent


def _event(chunk: Any) -> bytes:
    return b"data: " + _encode(chunk) + b"\n\n"


def _one_line(events: bytes) -> bool:
    """No line break in `events` but the blank line that ends it (a CR would end a line too)."""
    return events.count(b"\n") == 2 and events.find(b"\r") < 0


def ask_for_usage(request: dict[str, Any], params: ParamPolicy) -> tuple[dict[str, Any], StreamUsage]:
    """Ask the upstream to end the stream with its usage (when the mapping passes `stream_options` on),
    and a StreamUsage that reads it and, if the client did not ask for it, takes it out again."""
    options = request.get("stream_options")
    options = options if isinstance(options, dict) else {}
    wanted = bool(options.get("include_usage"))
    if not wanted and params.actions.get("stream_options", params.other) == "pass":
        request = {**request, "stream_options": {**options, "include_usage": True}}
    return request, StreamUsage(strip=not wanted)
