"""Every deployment's live state, as this process's router sees it: what `GET /turnout/deployments`
answers and what the console's overview shows.

States: `healthy`; `cooling_down` (too many recent failures; `cooldown_seconds` says how long);
`missing_model` (its backend's model list lacks it; tried only when nothing else is left);
`failing` (its last attempt failed, not yet enough to cool down).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.routing.router import DeploymentStats, Router
from engine.routing.table import Deployment, RoutingTable

__all__ = ["STATES", "deployment_states"]

STATES = ("healthy", "cooling_down", "failing", "missing_model")


def _state(deployment: Deployment, stats: DeploymentStats, router: Router, now: float) -> str:
    if stats.cooldown_until > now:
        return "cooling_down"
    if deployment.id in router.missing:
        return "missing_model"
    if stats.last_error is not None and stats.failed > 0 and stats.served == 0:
        return "failing"
    return "healthy"


def _milliseconds(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def deployment_states(
    table: RoutingTable, router: Router, redact: Callable[[str], str]
) -> list[dict[str, Any]]:
    """One item per deployment of every alias (by alias name), errors passed through `redact`: they
    are redacted where they arise, this is a last look before they leave."""
    now = router.now()
    rows = []
    for alias in sorted(table.aliases.values(), key=lambda a: a.name):
        for deployment in alias.deployments:
            stats = router.stats(deployment)
            rows.append(
                {
                    "alias": alias.name,
                    "id": deployment.id,
                    "model_id": deployment.model_id,
                    "provider": deployment.provider,
                    "upstream_model": deployment.upstream_model,
                    "privacy_tier": deployment.privacy_tier,
                    "priority": deployment.priority,
                    "weight": deployment.weight,
                    "state": _state(deployment, stats, router, now),
                    "cooldown_seconds": max(0, round(stats.cooldown_until - now)),
                    "in_flight": stats.inflight,
                    "served": stats.served,
                    "failed": stats.failed,
                    "last_error": redact(stats.last_error) if stats.last_error else stats.last_error,
                    "latency_ms": _milliseconds(stats.latency),
                    "first_byte_ms": _milliseconds(stats.first_byte),
                }
            )
    return rows
