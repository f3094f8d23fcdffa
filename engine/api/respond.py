"""The pipeline's Reply as a Litestar response: a body, or a stream as it arrives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

from litestar import Request, Response
from litestar.response import Stream

from engine.api.auth import request_key
from engine.api.event_stream import EventStream
from engine.api.state import gateway_of
from engine.errors import TurnoutError
from engine.pipeline.outcome import Reply

__all__ = ["note_refusal", "respond"]

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def respond(reply: Reply) -> Response[Any]:
    if reply.stream is None:
        return Response(reply.body, media_type=reply.media_type, headers=reply.headers)
    if reply.media_type == "text/event-stream":  # canonical pieces, rendered as the OpenAI dialect's SSE
        headers = {**_SSE_HEADERS, **reply.headers}
        return EventStream(reply.stream, headers=headers)
    raw = cast("AsyncIterator[bytes]", reply.stream)  # audio, transcripts: the upstream's bytes
    return Stream(raw, media_type=reply.media_type, headers=reply.headers)


def note_refusal(request: Request[Any, Any, Any], error: TurnoutError, operation: str | None = None) -> None:
    """Record a request to an operation route that failed before the pipeline took it (bad JSON, a bad
    upload). Failed authentication (401) is not recorded: it names no one, and it is cheap to flood."""
    operation = operation or request.route_handler.opt.get("operation")
    if operation is None or error.status == 401:
        return
    gateway_of(request).pipeline.refused(operation, error, request_key(request))
