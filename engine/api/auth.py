"""Who may call: the master key or an active virtual key, as a Bearer token (or `x-api-key`).

The master key is compared in constant time; a virtual key is hashed and found in the gateway's
in-memory `KeyRing` (no SQL per request). The virtual key a request came with is left on
`request.state.api_key` (None for the master key) for the handlers to pass to the pipeline.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from engine.api.state import gateway_of
from engine.errors import AuthenticationFailed, PermissionDenied
from engine.keys.ring import VirtualKey

__all__ = ["check_key", "presented_key", "request_key", "require_key", "require_master", "require_operator"]


def presented_key(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    authorization = connection.headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None
    return connection.headers.get("x-api-key")


def _is_master(key: str, master: str) -> bool:
    return hmac.compare_digest(key.encode(), master.encode())


def _missing() -> AuthenticationFailed:
    return AuthenticationFailed(
        "missing API key: send it as 'Authorization: Bearer <key>'", code="missing_api_key"
    )


def check_key(connection: ASGIConnection[Any, Any, Any, Any]) -> VirtualKey | None:
    """The virtual key the caller presented, None for the master key (or no auth: no master key is set).

    AuthenticationFailed for a missing, unknown, revoked or expired key."""
    gateway = gateway_of(connection)
    master = gateway.settings.master_key
    connection.state.api_key = None
    if not master:
        return None
    key = presented_key(connection)
    if key is None:
        raise _missing()
    if _is_master(key, master):
        return None
    found = gateway.keys.find(key)
    if found is None:
        raise AuthenticationFailed("invalid API key")
    if found.expired(datetime.fromtimestamp(gateway.clock(), UTC)):
        raise AuthenticationFailed("this API key has expired", code="expired_api_key")
    connection.state.api_key = found
    return found


def request_key(connection: ASGIConnection[Any, Any, Any, Any]) -> VirtualKey | None:
    """The virtual key `check_key` left on the request, if any."""
    found: VirtualKey | None = getattr(connection.state, "api_key", None)
    return found


async def require_key(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """Litestar guard around check_key.

    Async on purpose: Litestar runs a sync guard in a thread pool, which cost ~20% of CPU per request.
    """
    check_key(connection)


async def require_master(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """The admin API's guard: the master key only, and one must be configured."""
    gateway = gateway_of(connection)
    master = gateway.settings.master_key
    if not master:
        raise PermissionDenied(
            "the admin API needs a master key: set TURNOUT_MASTER_KEY or general_settings.master_key",
            code="master_key_not_set",
        )
    key = presented_key(connection)
    if key is None:
        raise _missing()
    if _is_master(key, master):
        return
    if gateway.keys.find(key) is not None:
        raise PermissionDenied("only the master key may manage keys", code="master_key_required")
    raise AuthenticationFailed("invalid API key")


async def require_operator(
    connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler
) -> None:
    """Operator views: like require_key, but a virtual key is refused (they show every alias)."""
    if check_key(connection) is not None:
        raise PermissionDenied("operator routes need the master key", code="master_key_required")
