"""Health: liveness (the process answers) and readiness (database reachable, mappings loaded)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from engine.pipeline.translate import encode_json

__all__ = ["liveness", "readiness"]


@get(["/health", "/health/liveness", "/health/liveliness"])
async def liveness() -> Response[bytes]:
    return Response(b'{"status":"ok"}', media_type="application/json")


@get("/health/readiness")
async def readiness(request: Request[Any, Any, Any]) -> Response[bytes]:
    gateway = request.app.state.gateway
    database = await gateway.database_ok()
    mappings = gateway.registry is not None and bool(gateway.registry.providers)
    body = {
        "status": "ok" if database and mappings else "unavailable",
        "database": "ok" if database else "unreachable",
        "mappings": len(gateway.registry.providers) if mappings else 0,
        "aliases": len(gateway.table.aliases),
    }
    return Response(
        encode_json(body), media_type="application/json", status_code=200 if body["status"] == "ok" else 503
    )
