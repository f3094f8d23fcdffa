"""What mappings see of a deployment: the `deployment` variable of every provider mapping section."""

from __future__ import annotations

from typing import Any

from engine.mapping.runtime import MISSING
from engine.routing.table import Deployment

__all__ = ["deployment_view"]


def deployment_view(deployment: Deployment) -> dict[str, Any]:
    """What mappings see as `deployment` (a plain dict: cheap lookups, nothing else reachable)."""
    return {
        "model": deployment.upstream_model,
        "alias": deployment.alias,
        "provider": deployment.provider,
        "api_base": (deployment.api_base or "").rstrip("/") or MISSING,
        "api_key": deployment.api_key or MISSING,
        "api_version": deployment.api_version or MISSING,
        "params": dict(deployment.params),
        "timeout": deployment.timeout,
        "max_output_tokens": deployment.capabilities.max_output_tokens or MISSING,
        "capabilities": {
            name: getattr(deployment.capabilities, name)
            for name in deployment.capabilities.__slots__
            if getattr(deployment.capabilities, name) is not None
        },
    }
