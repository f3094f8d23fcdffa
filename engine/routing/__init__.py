"""Routing: alias -> ordered deployments, read from an in-memory table built from SQL."""

from __future__ import annotations

from engine.routing.table import (
    Alias,
    Capabilities,
    Cost,
    Deployment,
    Fallbacks,
    Limits,
    RouterSettings,
    RoutingTable,
)

__all__ = [
    "Alias",
    "Capabilities",
    "Cost",
    "Deployment",
    "Fallbacks",
    "Limits",
    "RouterSettings",
    "RoutingTable",
]
