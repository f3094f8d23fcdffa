"""Request bodies in bounded memory: a limit per request and a byte budget for the whole process.

A body over `max_request_body_bytes` is a 413 (an audio upload may be as large as `audio_max_bytes`
and its form). A body over 64 KiB also takes its size from the process's budget
(`request_body_budget_bytes`) from its first byte read until its answer has ended, since the body
and what is decoded from it live that long; when it does not fit, the request is refused at once with
a 503 and `retry-after: 1` (the SDKs retry it), rather than held waiting with its connection open.
Smaller bodies, nearly every request, never wait and cost one look at the headers.

Both are checked when the handler reads the body, inside its own error handling: a key is checked
first (so an anonymous client cannot take the budget), and dialect routes answer in their own shape.
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from engine.errors import GatewayBusy, PayloadTooLarge

__all__ = ["SMALL_BODY", "BodyBudget", "BodyLimits", "read_body"]

SMALL_BODY = 64 * 1024  # at most this, a body is not counted against the budget
_FORM_SLACK = 1024 * 1024  # an upload's other form fields and multipart framing


class BodyBudget:
    """The bytes of request bodies this process holds now (one event loop: no lock needed)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0

    def take(self, size: int) -> bool:
        if self.used + size > self.capacity:
            return False
        self.used += size
        return True

    def give_back(self, size: int) -> None:
        self.used -= size


class BodyLimits:
    """ASGI middleware (every route): counts the body as the handler reads it; see the module doc."""

    def __init__(self, app: Any, *, budget: BodyBudget, limit: int, upload_limit: int) -> None:
        self.app = app
        self.budget = budget
        self.limit = limit
        self.upload_limit = max(limit, upload_limit + _FORM_SLACK)
        self._unchecked = min(SMALL_BODY, limit)  # a declared length up to this needs no counting

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = _framing(scope["headers"])
        if not chunked and (declared is None or declared <= self._unchecked):
            await self.app(scope, receive, send)  # no body, or a small one: nearly every request
            return
        route = scope.get("route_handler")
        upload = route is not None and route.opt.get("upload", False)
        body = _CountedBody(receive, self.budget, self.upload_limit if upload else self.limit, declared)
        try:
            await self.app(scope, body, send)
        finally:
            body.release()


class _CountedBody:
    """The `receive` of one request whose body is counted: the limit, and its share of the budget."""

    def __init__(self, receive: Any, budget: BodyBudget, limit: int, declared: int | None) -> None:
        self._receive = receive
        self._budget = budget
        self._limit = limit
        self._declared = declared
        self._received = 0
        self._taken = 0
        self._started = False

    async def __call__(self) -> Any:
        if not self._started:  # the handler asks for the body: refuse before reading a byte of it
            self._started = True
            if self._declared is not None:
                self._check(self._declared)
        message = await self._receive()
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            self._check(self._received)
        return message

    def _check(self, size: int) -> None:
        if size > self._limit:
            raise PayloadTooLarge(f"the request body is larger than {self._limit} bytes")
        if size > SMALL_BODY and size > self._taken:
            if not self._budget.take(size - self._taken):
                raise GatewayBusy(
                    "the gateway holds as many large request bodies as it may right now; retry shortly",
                    headers={"retry-after": "1"},
                )
            self._taken = size

    def release(self) -> None:
        self._budget.give_back(self._taken)
        self._taken = 0


async def read_body(request: Request[Any, Any, Any]) -> bytes | bytearray:
    """The request body, which (unlike `request.body()`) the framework does not keep for the rest of
    the request: once decoded, the bytes can go. A body of several pieces grows one bytearray in place
    (joining a list of them would hold the body twice)."""
    first = b""
    body: bytearray | None = None
    async for chunk in request.stream():
        if body is not None:
            body += chunk
        elif not first:
            first = chunk
        elif chunk:
            body = bytearray(first)
            body += chunk
    return first if body is None else body


def _framing(headers: list[tuple[bytes, bytes]]) -> tuple[int | None, bool]:
    """(declared content-length, whether the body is chunked) from the raw ASGI headers."""
    declared, chunked = None, False
    for name, value in headers:
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                declared = None  # the server refuses a malformed length before we are called
        elif name == b"transfer-encoding":
            chunked = True
    return declared, chunked
