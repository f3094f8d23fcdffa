"""Streams to the client: upstream bytes -> canonical SSE chunks, ending in `data: [DONE]`.

An error after the first byte has gone out cannot change the HTTP status any more, so it is sent as a
final `data: {"error": ...}` event and the stream ends (the OpenAI SDK raises it as an APIError).
When the client goes away, the generator is closed and the upstream connection with it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from engine.errors import TurnoutError, UpstreamBadResponse, UpstreamError
from engine.mapping.framing import DONE, decoder_for
from engine.mapping.runtime import MappingRuntimeError
from engine.mapping.spec import StreamSpec
from engine.pipeline.stream_usage import StreamUsage
from engine.pipeline.translate import encode_json, evaluate, mapped_error, mapping_failed
from engine.upstream import UpstreamResponse

__all__ = ["passthrough_stream", "raw_stream", "translated_stream"]

log = logging.getLogger("turnout.stream")
_decode = msgspec.json.Decoder().decode
DONE_EVENT = b"data: [DONE]\n\n"


def sse_event(payload: Any) -> bytes:
    return b"data: " + encode_json(payload) + b"\n\n"


def error_event(error: TurnoutError) -> bytes:
    return b"data: " + error.to_json() + b"\n\n"


async def passthrough_stream(
    response: UpstreamResponse, label: str, usage: StreamUsage | None = None
) -> AsyncIterator[bytes]:
    """Forward an already-canonical SSE stream unchanged; flag one that stops before `[DONE]`.

    With `usage`, bytes go on in whole events, each noted (and a usage chunk the client did not ask for
    taken out)."""
    tail = b""
    held = b""  # the start of an event whose end has not arrived (only with `usage`)
    upstream_error_seen = False
    try:
        async for data in response.chunks():
            tail = (tail + data)[-64:]
            # an upstream's own in-band error already ends the stream for the client; do not add a second
            upstream_error_seen = upstream_error_seen or b'{"error"' in data
            if usage is not None:
                held += data
                cut = _last_event_end(held)
                if not cut:
                    continue
                data, held = usage.sse(held[:cut]), held[cut:]
                if not data:
                    continue
            yield data
        if usage is not None and held:
            yield usage.sse(held)
        if DONE.encode() not in tail and not upstream_error_seen:
            problem = UpstreamBadResponse(f"{label} ended the stream before it was complete")
            _note_error(usage, problem)
            yield _event_boundary(tail) + error_event(problem)
    except UpstreamError as exc:
        _note_error(usage, exc)
        yield held + _event_boundary(held or tail) + error_event(exc)
    finally:
        response.close()


def _last_event_end(data: bytes) -> int:
    """The offset just past the last blank line (event end) in `data`; 0 when there is none."""
    return max(data.rfind(b"\n\n") + 2, data.rfind(b"\r\n\r\n") + 4, 0) if data else 0


def _note_error(usage: StreamUsage | None, error: TurnoutError) -> None:
    if usage is not None:
        usage.error = (error.type, error.code)


def _event_boundary(tail: bytes) -> bytes:
    """A blank line when the upstream stopped mid-event, so that the error event is an event of its own
    (otherwise its `data:` line would be glued to the unfinished one and lost to the client)."""
    return b"" if not tail or tail.endswith((b"\n\n", b"\r\n\r\n", b"\r\r")) else b"\n\n"


async def raw_stream(response: UpstreamResponse) -> AsyncIterator[bytes]:
    """Bytes as they arrive (audio, plain-text transcripts): no framing to keep, so a break just ends it."""
    try:
        async for data in response.chunks():
            yield data
    except UpstreamError as exc:
        log.warning("raw upstream body broke off: %s", exc.message)
    finally:
        response.close()


async def translated_stream(
    response: UpstreamResponse,
    spec: StreamSpec,
    request: dict[str, Any],
    view: dict[str, Any],
    label: str,
    usage: StreamUsage | None = None,
) -> AsyncIterator[bytes]:
    """Translate each upstream event with the mapping's one compiled step function."""
    state: dict[str, Any] = dict(evaluate(spec.start, request, view)) if spec.start is not None else {}
    decoder = decoder_for(spec.framing)
    finished = False
    try:
        async for data in response.chunks():
            for raw in decoder.feed(data):
                out, finished = _step(raw.data, raw.event_type, spec, state, request, view, label, usage)
                if out:
                    yield out
        for raw in decoder.close():
            out, finished = _step(raw.data, raw.event_type, spec, state, request, view, label, usage)
            if out:
                yield out
        if not finished:
            raise UpstreamBadResponse(f"{label} ended the stream before it was complete")
        yield DONE_EVENT
    except _StreamEnded:
        yield DONE_EVENT
    except TurnoutError as exc:
        if not isinstance(exc, UpstreamError):
            log.warning("stream translation failed: %s", exc.message)
        _note_error(usage, exc)
        yield error_event(exc)
    finally:
        response.close()


class _StreamEnded(Exception):
    """The upstream's end marker arrived (e.g. SSE `[DONE]`)."""


def _step(
    data: bytes,
    event_type: str | None,
    spec: StreamSpec,
    state: dict[str, Any],
    request: dict[str, Any],
    view: dict[str, Any],
    label: str,
    usage: StreamUsage | None,
) -> tuple[bytes, bool]:
    if data == b"[DONE]":
        raise _StreamEnded
    try:
        event = _decode(data)
    except msgspec.DecodeError:
        raise UpstreamBadResponse(f"{label} sent a malformed stream event") from None
    if spec.error is not None:
        problem = evaluate(spec.error, event, event_type, state, request, view)
        if problem:
            raise mapped_error(problem, label, "reported an error mid-stream")
    assert spec.event is not None
    try:
        step = spec.event(event, event_type, state, request, view)
    except MappingRuntimeError as exc:
        raise mapping_failed(exc) from exc
    state.update(step.get("state") or {})
    chunks = step.get("chunks")
    if isinstance(chunks, dict):
        chunks = [chunks]
    if usage is not None and chunks:
        chunks = [sent for sent in map(usage.chunk, chunks) if sent is not None]
    out = b"".join(sse_event(chunk) for chunk in chunks or ())
    return out, bool(step.get("done"))
