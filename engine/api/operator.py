"""GET /turnout/deployments: every deployment with its live state, for operators (master key).

The states and fields are engine/routing/states.py's (the console's overview shows the same).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from engine.api.auth import require_operator
from engine.api.state import gateway_of
from engine.pipeline.translate import encode_json
from engine.routing.states import deployment_states

__all__ = ["deployments"]


@get("/turnout/deployments", guards=[require_operator])
async def deployments(request: Request[Any, Any, Any]) -> Response[bytes]:
    gateway = gateway_of(request)
    rows = deployment_states(gateway.table, gateway.router, gateway.redactor.text)
    return Response(encode_json({"object": "list", "data": rows}), media_type="application/json")
