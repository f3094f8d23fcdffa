"""The model name answers carry: by default the one the client asked for (the alias), not the backend's.

A gateway hides its backends: a client (or a virtual key) that asked for `gpt-4` gets answers whose
`model` is `gpt-4`, on every route, whichever deployment served it (`qwen3:32b`, `gpt-4o-2024-08-06`),
and after a fallback too. The setting `response_model: upstream` keeps what the backend (or its mapping)
said instead. Pipeline.run applies the rule after the mapping, in one place per kind of answer: whole
JSON answers and SSE streams, translated or passed through, so golden snapshots of a mapping's own
translation do not depend on it, and dialects render the canonical answer's `model` as they get it.

It works on what each kind of answer already is, without decoding or encoding JSON for it:

- a translated stream's chunks (not encoded yet): each chunk's top-level `model` is replaced;
- a whole answer: the decoded answer (the pipeline decodes every JSON answer anyway) says what its
  top-level `model` is; its bytes `"model":"<that>"` are replaced at their first place;
- a pass-through stream's bytes (a chunk costs about a microsecond): each piece is whole SSE events.
  Every `"model": "..."` key in it is replaced. The exact bytes of the last one found are remembered,
  so later chunks, which repeat them, cost one count and one replace.

A `"model"` inside a JSON string is escaped (`\\"model\\"`), so it is never taken for the key; the
careful scan also checks that a key starts where one can (after `{`, `,` or whitespace).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from engine.pipeline.stream_events import Chunks, StreamPiece

__all__ = ["ModelRename", "renamed_stream"]

_KEY = b'"model"'
# a "model" key and its string value, in any JSON spacing and escaping
_FIELD = re.compile(rb'"model"[ \t\r\n]*:[ \t\r\n]*"(?:[^"\\]|\\.)*"')
_KEY_STARTS_AFTER = frozenset(b"{, \t\r\n")
_encode = msgspec.json.Encoder().encode


class ModelRename:
    """Puts `"model": <asked>` in place of the backend's model name in one request's answer."""

    __slots__ = ("_asked", "_replacement", "_seen")

    def __init__(self, asked: str) -> None:
        self._asked = asked
        self._replacement = _KEY + b":" + _encode(asked)
        self._seen: bytes | None = None  # the exact bytes of the last "model" field replaced

    def answer(self, body: bytes, answer: Any) -> bytes:
        """A whole JSON answer, with `answer` its decoded form."""
        model = answer.get("model") if isinstance(answer, dict) else None
        if not isinstance(model, str) or model == self._asked:
            return body
        compact = _KEY + b":" + _encode(model)
        at = body.find(compact)
        if at > 0 and body[at - 1] in _KEY_STARTS_AFTER:
            return body[:at] + self._replacement + body[at + len(compact) :]
        return self._rewrite(body)  # spaced or escaped otherwise: the careful way

    def events(self, data: bytes) -> bytes:
        """Whole SSE events (a stream's piece)."""
        seen = self._seen
        if seen is not None and data.count(seen) == data.count(_KEY):
            return data.replace(seen, self._replacement)
        return self._rewrite(data)

    def chunks(self, chunks: Chunks) -> Chunks:
        """A translated stream's canonical chunks (dicts, each one new from the mapping)."""
        asked = self._asked
        for at, chunk in enumerate(chunks.items):
            if isinstance(chunk, dict):
                model = chunk.get("model")
                if isinstance(model, str) and model != asked:
                    chunks.items[at] = {**chunk, "model": asked}
        return chunks

    def _rewrite(self, data: bytes) -> bytes:
        at = data.find(_KEY)
        if at < 0:
            return data
        parts: list[bytes] = []
        done = 0
        while at >= 0:
            found = _FIELD.match(data, at)
            if found is not None and at > 0 and data[at - 1] in _KEY_STARTS_AFTER:
                parts += (data[done:at], self._replacement)
                done = found.end()
                self._seen = found.group()
            at = data.find(_KEY, at + len(_KEY))
        if not parts:
            return data
        parts.append(data[done:])
        return b"".join(parts)


async def renamed_stream(
    stream: AsyncIterator[StreamPiece], rename: ModelRename
) -> AsyncIterator[StreamPiece]:
    """The stream, each piece (whole SSE events, or chunks) with the model name replaced."""
    async for piece in stream:
        if isinstance(piece, bytes):
            yield rename.events(piece)
        elif isinstance(piece, Chunks):
            yield rename.chunks(piece)
        else:
            yield piece
