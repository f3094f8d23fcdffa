"""SQL storage: typed SQLAlchemy models, the async engine, migrations and the routing-table loader."""

from __future__ import annotations

from engine.store.models import (
    COST_UNITS,
    AliasRow,
    Base,
    CapabilityRow,
    CostRow,
    DeploymentRow,
    FallbackRow,
    ProviderRow,
    RouterSettingRow,
)

__all__ = [
    "COST_UNITS",
    "AliasRow",
    "Base",
    "CapabilityRow",
    "CostRow",
    "DeploymentRow",
    "FallbackRow",
    "ProviderRow",
    "RouterSettingRow",
]
