"""POST /v1/chat/completions (and /chat/completions, as LiteLLM serves it)."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.types import ASGIApp

from engine.api.auth import check_key
from engine.api.body_limits import read_body
from engine.api.respond import respond
from engine.api.state import gateway_of

__all__ = ["chat_completions"]


@post(["/v1/chat/completions", "/chat/completions"], status_code=200, opt={"operation": "chat"})
async def chat_completions(request: Request[Any, Any, Any]) -> ASGIApp:
    # auth is called here, not as a guard: Litestar copies the handler object for every guard call,
    # which cost ~6% of the CPU of a request
    key = check_key(request)
    privacy = request.headers.get("x-turnout-privacy")
    pipeline = gateway_of(request).pipeline
    cache_control = request.headers.get("cache-control") if pipeline.caches else None
    reply = await pipeline.complete(
        await read_body(request), privacy=privacy, key=key, cache_control=cache_control
    )
    return respond(reply)
