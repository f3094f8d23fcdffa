"""An Outcome of the pipeline as a Litestar response: a body, or a stream as it arrives."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.response import Stream

from engine.api.auth import request_key
from engine.errors import TurnoutError
from engine.pipeline.run import Outcome

__all__ = ["note_refusal", "respond"]

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def respond(outcome: Outcome) -> Response[Any]:
    if outcome.stream is None:
        return Response(outcome.body, media_type=outcome.media_type, headers=outcome.headers)
    extra = _SSE_HEADERS if outcome.media_type == "text/event-stream" else {}
    return Stream(outcome.stream, media_type=outcome.media_type, headers={**extra, **outcome.headers})


def note_refusal(request: Request[Any, Any, Any], error: TurnoutError, operation: str | None = None) -> None:
    """Record a request to an operation route that failed before the pipeline took it (bad JSON, a bad
    upload). Failed authentication (401) is not recorded: it names no one, and it is cheap to flood."""
    operation = operation or request.route_handler.opt.get("operation")
    if operation is None or error.status == 401:
        return
    gateway = request.app.state.gateway
    gateway.pipeline.refused(operation, error, request_key(request))
