"""GET /metrics: the Prometheus text exposition of this process's counters and the router's state.

Open by default, like most scrape targets on a private network. With `metrics_require_key` it wants
the master key, as Prometheus sends it with `authorization: {credentials: <key>}`.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from engine.api.auth import require_master
from engine.api.state import gateway_of
from engine.errors import PermissionDenied

__all__ = ["metrics", "require_metrics_key"]


async def require_metrics_key(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """The master key when the settings ask for one; nobody may scrape if they ask and none is set."""
    settings = gateway_of(connection).settings
    if not settings.metrics_require_key:
        return
    if not settings.master_key:
        raise PermissionDenied(
            "metrics_require_key is set but no master key is: set TURNOUT_MASTER_KEY or "
            "general_settings.master_key",
            code="master_key_not_set",
        )
    await require_master(connection, handler)


@get("/metrics", guards=[require_metrics_key])
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    gateway = gateway_of(request)
    body, content_type = gateway.metrics.render(gateway.router, gateway.table)
    # as a header: given as media_type, Litestar would append a second charset to this text/ type
    return Response(body, headers={"content-type": content_type})
