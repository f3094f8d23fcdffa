"""The pipeline's Reply as the route's response: a whole body, or a stream as it arrives.

A whole body goes out as a small ASGI app of its own (`WholeBody`), not as Litestar's `Response`,
which builds header objects and resolves layered headers, cookies and encoders Turnout never sets
(1.19 M -> 1.10 M instructions per pass-through chat request, `bench.instructions --steady`). The
routes that return it are annotated `ASGIApp`, so that Litestar sends what they return as it is (a
`Stream` is still a Response, which Litestar converts as before).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

from litestar import Request, Response
from litestar.response import Stream
from litestar.types import ASGIApp, Receive, Scope, Send

from engine.api.auth import request_key
from engine.api.event_stream import EventStream
from engine.api.state import gateway_of
from engine.errors import TurnoutError
from engine.pipeline.outcome import Reply

__all__ = ["WholeBody", "note_refusal", "respond"]

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class WholeBody:
    """A 200 with a whole body, its headers encoded as Litestar's Response would: the reply's own,
    then content-type (text/* with its charset) and content-length, unless the reply set them."""

    __slots__ = ("_body", "_headers")

    def __init__(self, body: bytes, media_type: str, headers: dict[str, str]) -> None:
        encoded = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
        ]
        names = {name for name, _ in encoded}
        if b"content-type" not in names:
            encoded.append((b"content-type", _content_type(media_type).encode("latin-1")))
        if b"content-length" not in names:
            encoded.append((b"content-length", b"%d" % len(body)))
        self._body = body
        self._headers = encoded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self._headers})
        await send({"type": "http.response.body", "body": self._body, "more_body": False})


def respond(reply: Reply) -> ASGIApp:
    """What a route returns: a WholeBody, or a Litestar Response (which Litestar, seeing one, converts
    whatever the route's annotation says; hence the casts). A stream names its content type in its
    headers: given as `media_type`, it would lose to the JSON an `ASGIApp` route defaults to."""
    if reply.stream is None:
        if reply.body is None:  # (no operation answers so; Litestar renders it as before)
            return cast("ASGIApp", Response(reply.body, media_type=reply.media_type, headers=reply.headers))
        return WholeBody(reply.body, reply.media_type, reply.headers)
    if reply.media_type == "text/event-stream":  # canonical pieces, rendered as the OpenAI dialect's SSE
        headers = {**_SSE_HEADERS, **reply.headers}  # EventStream sets its own content type
        return cast("ASGIApp", EventStream(reply.stream, headers=headers))
    raw = cast("AsyncIterator[bytes]", reply.stream)  # audio, transcripts: the upstream's bytes
    headers = {**reply.headers, "content-type": _content_type(reply.media_type)}
    return cast("ASGIApp", Stream(raw, headers=headers))


def _content_type(media_type: str) -> str:
    """As Litestar writes it: text types with their charset."""
    return f"{media_type}; charset=utf-8" if media_type.startswith("text/") else media_type


def note_refusal(request: Request[Any, Any, Any], error: TurnoutError, operation: str | None = None) -> None:
    """Record a request to an operation route that failed before the pipeline took it (bad JSON, a bad
    upload). Failed authentication (401) is not recorded: it names no one, and it is cheap to flood."""
    operation = operation or request.route_handler.opt.get("operation")
    if operation is None or error.status == 401:
        return
    gateway_of(request).pipeline.refused(operation, error, request_key(request))
