"""GET /v1/models (and /models): the aliases, in OpenAI's list format."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from engine.api.auth import require_key
from engine.pipeline.translate import encode_json

__all__ = ["list_models"]


@get(["/v1/models", "/models"], guards=[require_key])
async def list_models(request: Request[Any, Any, Any]) -> Response[bytes]:
    table = request.app.state.gateway.table
    data = [
        {
            "id": alias.name,
            "object": "model",
            "created": alias.created,
            "owned_by": "turnout",
            "mode": alias.mode,
        }
        for alias in sorted(table.aliases.values(), key=lambda a: a.name)
    ]
    return Response(encode_json({"object": "list", "data": data}), media_type="application/json")
