"""Who may call: the master key as a Bearer token (or `x-api-key`), compared in constant time."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from engine.errors import AuthenticationFailed

__all__ = ["check_key", "presented_key", "require_key"]


def presented_key(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    authorization = connection.headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None
    return connection.headers.get("x-api-key")


def check_key(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """A no-op without a master key; else the presented key must match (AuthenticationFailed if not)."""
    expected = connection.app.state.gateway.settings.master_key
    if not expected:
        return
    key = presented_key(connection)
    if key is None:
        raise AuthenticationFailed(
            "missing API key: send it as 'Authorization: Bearer <key>'", code="missing_api_key"
        )
    if not hmac.compare_digest(key.encode(), expected.encode()):
        raise AuthenticationFailed("invalid API key")


async def require_key(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """Litestar guard around check_key.

    Async on purpose: Litestar runs a sync guard in a thread pool, which cost ~20% of CPU per request.
    """
    check_key(connection)
