"""Every model imported in one place, so `Base.metadata` is complete (Alembic, tests)."""

from __future__ import annotations

from engine.store.admin_user import AdminUserRow
from engine.store.alias import AliasRow
from engine.store.api_key import ApiKeyRow
from engine.store.audit import AuditRow
from engine.store.base import Base
from engine.store.capability import CapabilityRow
from engine.store.conversation import StoredExchange
from engine.store.cost import COST_UNITS, CostRow
from engine.store.deployment import DeploymentRow
from engine.store.fallback import FallbackRow
from engine.store.provider import ProviderRow
from engine.store.request_log import RequestLogRow
from engine.store.request_rollup import request_rollup
from engine.store.router_setting import RouterSettingRow

__all__ = [
    "COST_UNITS",
    "AdminUserRow",
    "AliasRow",
    "ApiKeyRow",
    "AuditRow",
    "Base",
    "CapabilityRow",
    "CostRow",
    "DeploymentRow",
    "FallbackRow",
    "ProviderRow",
    "RequestLogRow",
    "RouterSettingRow",
    "StoredExchange",
    "request_rollup",
]
