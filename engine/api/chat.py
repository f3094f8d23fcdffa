"""POST /v1/chat/completions (and /chat/completions, as LiteLLM serves it)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.response import Stream

from engine.api.auth import require_key

__all__ = ["chat_completions"]

_STREAM_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


@post(["/v1/chat/completions", "/chat/completions"], guards=[require_key], status_code=200)
async def chat_completions(request: Request[Any, Any, Any]) -> Response[Any]:
    outcome = await request.app.state.gateway.chat.complete(await request.body())
    if outcome.stream is not None:
        return Stream(
            outcome.stream, media_type="text/event-stream", headers={**_STREAM_HEADERS, **outcome.headers}
        )
    return Response(outcome.body, media_type="application/json", headers=outcome.headers)
