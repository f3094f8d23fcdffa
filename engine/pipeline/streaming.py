"""Streams to the client: upstream bytes -> canonical stream pieces, ending in `data: [DONE]`.

A translated stream yields the mapping's canonical chunks unencoded; a pass-through stream yields the
upstream's SSE bytes as they are (engine.pipeline.stream_events: each route renders the pieces).

Nothing goes to the client before the stream's first good bytes: until then (`wait_until_ready`) a
failure is raised, so that an HTML page, a malformed first event or a stream that ends at once is an
upstream error and the next deployment is tried. An error after that cannot change the HTTP status any
more, so it ends the stream as a StreamError (on the OpenAI route a final `data: {"error": ...}` event,
which the OpenAI SDK raises as an APIError). When the client goes away, the generator is closed and
the upstream connection with it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec

from engine.errors import MappingFailed, TurnoutError, UpstreamBadResponse, UpstreamError
from engine.mapping.framing import (
    DONE,
    FrameTooLarge,
    MalformedEvent,
    SseSplitter,
    check_sse_events,
    decoder_for,
    split_sse_events,
)
from engine.mapping.runtime import MappingRuntimeError
from engine.mapping.spec import StreamSpec
from engine.pipeline.stream_events import Chunks, StreamError, StreamPiece, error_event
from engine.pipeline.stream_usage import StreamUsage
from engine.pipeline.translate import evaluate, mapped_error, mapping_failed
from engine.redact import GENERIC, Redactor
from engine.upstream import UpstreamResponse

__all__ = ["READY", "passthrough_stream", "raw_stream", "translated_stream", "wait_until_ready"]

log = logging.getLogger("turnout.stream")
_decode = msgspec.json.Decoder().decode
DONE_EVENT = b"data: [DONE]\n\n"
DONE_BYTES = DONE.encode()
# yielded once by every stream here before its first bytes for the client (see wait_until_ready)
READY = b""


async def wait_until_ready(stream: AsyncIterator[StreamPiece]) -> None:
    """Run a stream of this module up to its first bytes for the client; what fails before them (an
    HTML page, a malformed first event, a stream that ends at once) is raised, not sent as an event."""
    if await anext(stream) != READY:
        raise AssertionError("a pipeline stream must yield READY first")


async def passthrough_stream(
    response: UpstreamResponse,
    label: str,
    usage: StreamUsage | None = None,
    redactor: Redactor = GENERIC,
    *,
    max_event_bytes: int | None = None,
) -> AsyncIterator[StreamPiece]:
    """Forward an already-canonical SSE stream unchanged, in whole events whose data must be JSON; flag
    one that stops before `[DONE]`. With `usage`, each event is noted (and a usage chunk the client did
    not ask for taken out). From the first sign of an in-band error on, events are redacted (a
    backend's error event may echo the credential it was sent) and an error event is sent as Turnout's
    own error event. Other events are never scanned."""
    events = SseSplitter(max_event_bytes)
    check = usage.sse if usage is not None else _checked
    watch = _ErrorWatch(redactor, label)
    started = False
    try:
        _require_event_stream(response, label)
        async for data in response.chunks():
            watch.scan(data)
            whole = events.feed(data)
            if not whole:
                continue
            whole, malformed = _checked_events(check, watch.events(whole))
            if whole:
                if not started:
                    started = True
                    yield READY
                yield whole
            if malformed:
                raise MalformedEvent
        rest = events.rest()  # a last event without its blank line
        rest = check(watch.events(rest)) if rest else rest
        if DONE_BYTES not in watch.tail and not watch.upstream_error:
            problem = UpstreamBadResponse(f"{label} ended the stream before it was complete")
            if not started:
                raise problem
            _note_error(usage, problem)
            if rest:
                yield rest
            yield StreamError(problem)
            return
        if not started:
            yield READY
        if rest:
            yield rest
    except (UpstreamError, FrameTooLarge, MalformedEvent) as exc:
        yield _failure(exc, label, usage, started, redactor)  # what went out so far ended whole
    finally:
        response.close()


class _ErrorWatch:
    """What a pass-through stream's bytes say about in-band errors, read across network pieces."""

    __slots__ = ("_last", "guarded", "label", "redactor", "upstream_error")

    def __init__(self, redactor: Redactor, label: str) -> None:
        self.redactor = redactor
        self.label = label
        self._last = b""  # the last piece (at least its last 64 bytes): a marker cut in two is still found
        self.guarded = False  # an error showed: the rest is redacted
        self.upstream_error = False  # the upstream's own error event ends the stream: add no second

    @property
    def tail(self) -> bytes:
        """The last bytes seen."""
        return self._last[-64:]

    def scan(self, data: bytes) -> None:
        # the piece itself, and its seam with the last one (a marker cut in two) only when the last one
        # ends in a quote's reach: no copy of the piece. (bytes.find, not `in`: `in` first tries the
        # operand as an int, and the TypeError it builds costs more than the search.)
        last = self._last
        if data.find(b'"error"') >= 0 or (
            last.find(b'"', -6) >= 0 and _seam(last, data).find(b'"error"') >= 0
        ):
            self.guarded = True
            seam = _seam(last, data)
            self.upstream_error = self.upstream_error or b'{"error"' in data or b'{"error"' in seam
        # kept as it is (a reference, not a copy) unless it is too short to hold the tail alone
        self._last = data if len(data) >= 64 else (last[-64:] + data)[-64:]

    def events(self, events: bytes) -> bytes:
        """Whole events as they go on: once an error showed, redacted, and an in-band error event sent
        as Turnout's own (decoded only then: other events are never scanned)."""
        if not self.guarded:
            return events
        events = self.redactor.data(events)
        return _own_error_events(events, self.label) if b'"error"' in events else events


def _seam(last: bytes, data: bytes) -> bytes:
    """Where two pieces meet: enough of each for a marker of up to 8 bytes cut in two."""
    return last[-7:] + data[:7]


def _checked_events(check: Callable[[bytes], bytes], events: bytes) -> tuple[bytes, bool]:
    """The events as checked (and noted); on a malformed one, the good events before it and True."""
    try:
        return check(events), False
    except MalformedEvent:  # the good events before it still go out, however the bytes came
        return _good_events(events), True


def _require_event_stream(response: UpstreamResponse, label: str) -> None:
    media = response.headers.get("content-type", "").partition(";")[0].strip()
    if media and media.lower() != "text/event-stream":
        raise UpstreamBadResponse(
            f"{label} answered a stream request with {media[:60]!r}, not an event stream"
        )


def _checked(events: bytes) -> bytes:
    check_sse_events(events)
    return events


def _good_events(events: bytes) -> bytes:
    """The whole events before the first malformed one (already noted by the usage check that failed)."""
    good = []
    for event in split_sse_events(events):
        try:
            check_sse_events(event)
        except MalformedEvent:
            break
        good.append(event)
    return b"".join(good)


def _failure(
    exc: Exception, label: str, usage: StreamUsage | None, started: bool, redactor: Redactor
) -> StreamError:
    """The error event that ends a stream; raised instead while nothing has gone to the client."""
    if isinstance(exc, MappingFailed):  # the deployment's, whichever file the section came from
        exc.blame(label)
        error: TurnoutError = exc
    elif isinstance(exc, TurnoutError):
        error = exc
    elif isinstance(exc, FrameTooLarge):
        error = UpstreamBadResponse(
            f"{label} sent a stream event larger than {exc.limit} bytes (TURNOUT_MAX_STREAM_EVENT_BYTES)"
        )
    else:
        error = UpstreamBadResponse(f"{label} sent a malformed stream event")
    redactor.error(error)  # an error event the mapping read may echo the backend's credential
    if not isinstance(error, UpstreamError):
        log.warning("stream translation failed: %s", error.message)
    if not started:
        raise error from None
    _note_error(usage, error)
    return StreamError(error)


def _own_error_events(events: bytes, label: str) -> bytes:
    """Whole SSE events with each in-band `{"error": ...}` event sent as Turnout's own error event: an
    OpenAI error object (a server's numeric code or bare error text is not one) naming the backend, as
    translated streams report theirs."""
    out = []
    for event in split_sse_events(events):
        data = b"\n".join(line[5:].strip() for line in event.splitlines() if line.startswith(b"data:"))
        try:
            payload = _decode(data) if data.startswith(b"{") else None
        except msgspec.DecodeError:
            payload = None
        if isinstance(payload, dict) and "error" in payload:
            event = error_event(mapped_error(payload["error"], label, "reported an error mid-stream"))
        out.append(event)
    return b"".join(out)


def _note_error(usage: StreamUsage | None, error: TurnoutError) -> None:
    if usage is not None:
        usage.error = (error.type, error.code)


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
    redactor: Redactor = GENERIC,
    *,
    max_event_bytes: int | None = None,
) -> AsyncIterator[StreamPiece]:
    """Translate each upstream event with the mapping's one compiled step function."""
    state: dict[str, Any] = dict(evaluate(spec.start, request, view)) if spec.start is not None else {}
    decoder = decoder_for(spec.framing, max_event_bytes)
    finished = started = False
    try:
        async for data in response.chunks():
            for raw in decoder.feed(data):
                out, finished = _step(raw.data, raw.event_type, spec, state, request, view, label, usage)
                if out:
                    if not started:
                        started = True
                        yield READY
                    yield out
        for raw in decoder.close():  # at most one: a last event without its end
            out, finished = _step(raw.data, raw.event_type, spec, state, request, view, label, usage)
            if out:
                if not started:
                    started = True
                    yield READY
                yield out
        if not finished:
            raise UpstreamBadResponse(f"{label} ended the stream before it was complete")
        raise _StreamEnded
    except _StreamEnded:
        if not started:
            yield READY
        yield DONE_EVENT
    except (TurnoutError, FrameTooLarge) as exc:
        yield _failure(exc, label, usage, started, redactor)
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
) -> tuple[Chunks | None, bool]:
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
    envelope = step.get("envelope")
    if envelope and chunks:  # the stream's `envelope`: fields every chunk shares, each chunk's own win
        chunks = [{**envelope, **chunk} for chunk in chunks]
    if usage is not None and chunks:
        chunks = [sent for sent in map(usage.chunk, chunks) if sent is not None]
    return (Chunks(chunks) if chunks else None), bool(step.get("done"))
