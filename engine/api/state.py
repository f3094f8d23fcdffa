"""The one typed way handlers reach the running gateway: `app.state` is untyped, this is not.

The gateway is built by the app's lifespan before the first request (engine.gateway.open_gateway), so
every part it holds is there for every handler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection

    from engine.gateway import Gateway

__all__ = ["gateway_of"]


def gateway_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Gateway:
    return cast("Gateway", connection.app.state.gateway)
