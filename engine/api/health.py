"""Health: liveness (the process answers) and readiness (database reachable, mappings loaded).

Readiness also tells the version of the mappings and of the config file in force, and why the last
change was refused while it stands (engine.reload): still ready, since the last good version serves.

Readiness also says how many backends answered their discovery question. That is information, not a
condition: a gateway whose backends are down still serves errors that say so, and other replicas
would find the same backends down.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from litestar import Request, Response, get

from engine.api.state import gateway_of
from engine.pipeline.translate import encode_json

if TYPE_CHECKING:
    from engine.gateway import Gateway

__all__ = ["liveness", "readiness"]


@get(["/health", "/health/liveness", "/health/liveliness"])
async def liveness() -> Response[bytes]:
    return Response(b'{"status":"ok"}', media_type="application/json")


@get("/health/readiness")
async def readiness(request: Request[Any, Any, Any]) -> Response[bytes]:
    gateway = gateway_of(request)
    database = await gateway.database_ok()
    mappings = bool(gateway.registry.providers)
    body = {
        "status": "ok" if database and mappings else "unavailable",
        "database": "ok" if database else "unreachable",
        "mappings": len(gateway.registry.providers) if mappings else 0,
        "aliases": len(gateway.table.aliases),
        "backends": await _backends(gateway),
        # the mappings and config file in force, and a refused change's error while it stands
        "reload": gateway.files.status.detail(),
    }
    return Response(
        encode_json(body), media_type="application/json", status_code=200 if body["status"] == "ok" else 503
    )


async def _backends(gateway: Gateway) -> dict[str, int]:
    try:
        reports = await asyncio.wait_for(gateway.discovery.reports(gateway.table), timeout=3)
    except TimeoutError:
        return {"reachable": 0, "unreachable": 0, "still_checking": 1}
    reachable = sum(1 for r in reports.values() if r.reachable)
    return {"reachable": reachable, "unreachable": len(reports) - reachable}
