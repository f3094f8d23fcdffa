"""Token usage of a streamed answer, read from its canonical chunks as they go by.

The pipeline asks the upstream for usage (`stream_options.include_usage`) whenever the mapping passes
that parameter on. When the client did not ask for it, the usage chunk is taken out again (clients that
index `choices[0]` of every chunk break on OpenAI's usage-only chunk). When no usage arrives at all,
the streamed text is counted and the record is marked as estimated.
"""

from __future__ import annotations

from typing import Any

import msgspec

from engine.mapping.framing import MalformedEvent, check_sse_events, split_sse_events
from engine.mapping.spec import ParamPolicy
from engine.pipeline.tokens import generated_characters

__all__ = ["StreamUsage", "ask_for_usage"]

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode
_UNCHANGED = object()


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
        if b"data:" not in events:
            return events
        try:
            if not self.strip or b'"usage"' not in events:
                for line in events.splitlines():
                    self._line(line)
                return events
            kept = []
            for event in split_sse_events(events):
                for line in event.splitlines():
                    replaced = self._line(line)
                    if replaced is not _UNCHANGED:
                        # a usage chunk the client did not ask for: gone, or sent again without its usage
                        event = b"" if replaced is None else b"data: " + _encode(replaced) + b"\n\n"
                        break
                kept.append(event)
            return b"".join(kept)
        except MalformedEvent:  # one data line of several may not be JSON alone: judge whole events
            check_sse_events(events)
            return events

    def _line(self, line: bytes) -> Any:
        """Note one line; what its event becomes: _UNCHANGED, None (taken out) or another chunk."""
        if not line.startswith(b"data:"):
            return _UNCHANGED
        data = line[5:].strip()
        if not data.startswith(b"{"):
            if data and data != b"[DONE]":
                raise MalformedEvent(data[:40].decode("utf-8", "replace"))
            return _UNCHANGED
        try:
            chunk = _decode(data)
        except msgspec.DecodeError:
            raise MalformedEvent(data[:40].decode("utf-8", "replace")) from None
        sent = self.chunk(chunk)
        return _UNCHANGED if sent is chunk else sent


def ask_for_usage(request: dict[str, Any], params: ParamPolicy) -> tuple[dict[str, Any], StreamUsage]:
    """Ask the upstream to end the stream with its usage (when the mapping passes `stream_options` on),
    and a StreamUsage that reads it and, if the client did not ask for it, takes it out again."""
    options = request.get("stream_options")
    options = options if isinstance(options, dict) else {}
    wanted = bool(options.get("include_usage"))
    if not wanted and params.actions.get("stream_options", params.other) == "pass":
        request = {**request, "stream_options": {**options, "include_usage": True}}
    return request, StreamUsage(strip=not wanted)
