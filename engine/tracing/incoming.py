"""The client's W3C trace context (`traceparent`, `tracestate`) as the current context of its request.

Pure ASGI middleware, installed by `create_app` only when tracing is on: the request's server span
(engine.tracing.otel) then starts as the child of the client's span. A malformed or repeated
`traceparent` is ignored (W3C Trace Context: the receiver starts a new trace); `tracestate` headers
are joined, as the specification allows them to be split.
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send
from opentelemetry.context import attach, detach
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = ["TraceContextMiddleware"]

PROPAGATOR = TraceContextTextMapPropagator()  # W3C traceparent / tracestate only: baggage is not read
_MAX_TRACESTATE = 8192  # W3C: at most 32 members of 256 characters; a longer header is cut here


class TraceContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        carrier = _carrier(scope) if scope["type"] == ScopeType.HTTP else None
        if not carrier:
            await self.app(scope, receive, send)
            return
        token = attach(PROPAGATOR.extract(carrier))
        try:
            await self.app(scope, receive, send)
        finally:
            detach(token)


def _carrier(scope: Scope) -> dict[str, str] | None:
    parents: list[bytes] = []
    states: list[bytes] = []
    for name, value in scope["headers"]:
        if name == b"traceparent":
            parents.append(value)
        elif name == b"tracestate":
            states.append(value)
    if len(parents) != 1:
        return None
    carrier = {"traceparent": parents[0].decode("latin-1")}
    if states:
        carrier["tracestate"] = b",".join(states)[:_MAX_TRACESTATE].decode("latin-1")
    return carrier
