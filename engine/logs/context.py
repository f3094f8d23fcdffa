"""The id of the HTTP request being handled, on every log line written while handling it.

`RequestIds` gives each HTTP request a fresh id in a context variable for as long as the app handles it
(the server's access line included: the server writes it from inside the app's `send`). The pipeline's
meter takes the same id, so one id names a request in the logs, in the `x-turnout-request-id` header and
in the request log. Outside a request (start, background work) there is none.
"""

from __future__ import annotations

import os
from contextvars import ContextVar

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

__all__ = ["RequestIds", "current_request_id", "new_request_id"]

_REQUEST_ID: ContextVar[str | None] = ContextVar("turnout_request_id", default=None)


def new_request_id() -> str:
    return os.urandom(16).hex()  # uuid4().hex costs 4x as much


def current_request_id() -> str | None:
    """The id of the request this code runs for; None outside one."""
    return _REQUEST_ID.get()


class RequestIds:
    """Pure ASGI middleware around every route: one id per HTTP request, in the context while it runs."""

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        token = _REQUEST_ID.set(new_request_id())
        try:
            await self.app(scope, receive, send)
        finally:
            _REQUEST_ID.reset(token)
