"""GET /v1/models (and /models): the aliases, in OpenAI's list format.

With `?include_discovered=true`, each backend is asked which models it serves (through its mapping's
discovery section): every alias gains `available` (true, false, or null when no backend could say),
and models a backend serves that no alias names are listed too, marked `discovered`.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.params import FromQuery

from engine.api.auth import request_key, require_key
from engine.api.state import gateway_of
from engine.pipeline.translate import encode_json
from engine.routing.discovery import EndpointReport, endpoint_key
from engine.routing.table import Alias

__all__ = ["list_models"]


@get(["/v1/models", "/models"], guards=[require_key])
async def list_models(
    request: Request[Any, Any, Any], include_discovered: FromQuery[bool] = False
) -> Response[bytes]:
    gateway = gateway_of(request)
    table = gateway.table
    key = request_key(request)
    aliases = sorted(
        (alias for alias in table.aliases.values() if key is None or key.allows(alias.name)),
        key=lambda a: a.name,
    )
    data = [_entry(alias) for alias in aliases]
    if include_discovered and key is None:  # what backends serve beyond the aliases: not for keys
        reports = await gateway.discovery.reports(table)
        for entry, alias in zip(data, aliases, strict=True):
            entry["available"] = _available(alias, reports)
        listed = {entry["id"] for entry in data}
        for report in reports.values():
            for model in report.models or ():
                if model not in listed:
                    listed.add(model)
                    data.append(
                        {
                            "id": model,
                            "object": "model",
                            "created": 0,
                            "owned_by": report.provider,
                            "discovered": True,
                        }
                    )
    return Response(encode_json({"object": "list", "data": data}), media_type="application/json")


def _entry(alias: Alias) -> dict[str, Any]:
    return {
        "id": alias.name,
        "object": "model",
        "created": alias.created,
        "owned_by": "turnout",
        "mode": alias.mode,
    }


def _available(alias: Alias, reports: dict[Any, EndpointReport]) -> bool | None:
    """True when some deployment's backend lists its model; None when no backend of the alias could say."""
    known = False
    for deployment in alias.deployments:
        report = reports.get(endpoint_key(deployment))
        if report is None or report.models is None:
            continue
        known = True
        if deployment.upstream_model in report.models:
            return True
    return False if known else None
