"""An Outcome of the pipeline as a Litestar response: a body, or a stream as it arrives."""

from __future__ import annotations

from typing import Any

from litestar import Response
from litestar.response import Stream

from engine.pipeline.run import Outcome

__all__ = ["respond"]

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def respond(outcome: Outcome) -> Response[Any]:
    if outcome.stream is None:
        return Response(outcome.body, media_type=outcome.media_type, headers=outcome.headers)
    extra = _SSE_HEADERS if outcome.media_type == "text/event-stream" else {}
    return Stream(outcome.stream, media_type=outcome.media_type, headers={**extra, **outcome.headers})
