"""POST /v1/chat/completions (and /chat/completions, as LiteLLM serves it)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post

from engine.api.auth import request_key, require_key
from engine.api.respond import respond

__all__ = ["chat_completions"]


@post(
    ["/v1/chat/completions", "/chat/completions"],
    guards=[require_key],
    status_code=200,
    opt={"operation": "chat"},
)
async def chat_completions(request: Request[Any, Any, Any]) -> Response[Any]:
    privacy = request.headers.get("x-turnout-privacy")
    return respond(
        await request.app.state.gateway.pipeline.complete(
            await request.body(), privacy=privacy, key=request_key(request)
        )
    )
