"""Playground: chat with any chat alias from the browser, streamed, with the reasoning shown apart from
the answer and what the gateway reports of it (deployment, attempts, fallback, cost, latency).

The browser holds a session cookie, not an API key, so the page posts to `/playground/chat`, which
runs the body exactly as `POST /v1/chat/completions` does with the master key's authority: the same
body limits, pipeline, headers, stream and OpenAI-style errors, and one request-log row. The guard
makes it need a session and the CSRF header like every other console change; an Authorization header
is never read here, so a virtual key cannot use it.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.types import ASGIApp

from engine.api.body_limits import read_body
from engine.api.respond import respond
from engine.console.playground import chat_aliases, is_request_id, logged_request
from engine.console.render import render
from engine.console.state import console_gateway
from engine.errors import NotFound

__all__ = ["ROUTES", "playground_chat", "playground_logged", "playground_page"]


@get("/playground")
async def playground_page(request: Request[Any, Any, Any]) -> Response[str]:
    groups = chat_aliases(console_gateway(request).table.aliases)
    wanted = request.query_params.get("alias")  # e.g. a link from a deployment's page
    chosen = wanted if any(wanted in group.names for group in groups) else None
    return render(request, "playground/page.html", groups=groups, chosen=chosen)


# `operation` makes it a pipeline route like /v1/chat/completions: a client that leaves cancels the
# upstream call (engine/api/disconnect.py), and a request refused before the pipeline is logged
@post("/playground/chat", status_code=200, opt={"operation": "chat"})
async def playground_chat(request: Request[Any, Any, Any]) -> ASGIApp:
    gateway = console_gateway(request)
    return respond(await gateway.pipeline.complete(await read_body(request), key=None))


@get("/playground/requests/{request_id:str}")
async def playground_logged(request: Request[Any, Any, Any], request_id: FromPath[str]) -> Response[Any]:
    """What the request log recorded of one answer: 404 until the usage recorder has written it (it
    writes every `usage_flush_interval` seconds), so the page asks again for a few seconds."""
    found = None
    if is_request_id(request_id):
        found = await logged_request(console_gateway(request).sessions, request_id)
    if found is None:
        raise NotFound("this request is not in the request log (yet)")
    return Response(found, headers={"cache-control": "no-store"})


ROUTES = [playground_page, playground_chat, playground_logged]
