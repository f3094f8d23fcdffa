"""A plan's router settings and fallbacks written into SQL under its source, idempotently.

Rows are matched by (source, key) and (source, alias, kind, position); a value is only assigned when it
differs, so a re-import of the same file writes nothing. Part of `engine.config.importer.sync_source`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.config.plan import ImportPlan
from engine.store.models import FallbackRow, RouterSettingRow

__all__ = ["remove_router_config", "sync_router_config"]


async def _sync_settings(session: AsyncSession, source: str, wanted: dict[str, Any]) -> int:
    rows = await session.scalars(select(RouterSettingRow).where(RouterSettingRow.source == source))
    changed = 0
    for row in rows:
        if row.key not in wanted:
            await session.delete(row)
            changed += 1
            continue
        value = wanted.pop(row.key)
        # 1 == True in Python: tell flags from numbers. 5 vs 5.0 is no change: SQLite's JSON column has
        # numeric affinity and hands a stored 5.0 back as 5 (the loader types it again).
        if row.value != value or isinstance(row.value, bool) is not isinstance(value, bool):
            row.value = value
            changed += 1
    for key, value in wanted.items():
        session.add(RouterSettingRow(source=source, key=key, value=value))
        changed += 1
    return changed


async def _sync_fallbacks(session: AsyncSession, source: str, plan: ImportPlan) -> int:
    wanted = {
        (alias, kind, position): target
        for kind, lists in plan.fallbacks.items()
        for alias, targets in lists.items()
        for position, target in enumerate(targets)
    }
    rows = await session.scalars(select(FallbackRow).where(FallbackRow.source == source))
    changed = 0
    for row in rows:
        target = wanted.pop((row.alias, row.kind, row.position), None)
        if target is None:
            await session.delete(row)
            changed += 1
        elif row.target != target:
            row.target = target
            changed += 1
    for (alias, kind, position), target in wanted.items():
        session.add(FallbackRow(source=source, alias=alias, kind=kind, position=position, target=target))
        changed += 1
    return changed


async def sync_router_config(session: AsyncSession, plan: ImportPlan, source: str) -> int:
    """Make `source`'s router settings and fallbacks match the plan; the number of rows written."""
    changed = await _sync_settings(session, source, dict(plan.router_settings))
    return changed + await _sync_fallbacks(session, source, plan)


async def remove_router_config(session: AsyncSession, source: str) -> int:
    """Delete `source`'s router settings and fallbacks; the number of rows deleted."""
    settings = await session.execute(
        delete(RouterSettingRow).where(RouterSettingRow.source == source).returning(RouterSettingRow.id)
    )
    fallbacks = await session.execute(
        delete(FallbackRow).where(FallbackRow.source == source).returning(FallbackRow.id)
    )
    return len(settings.all()) + len(fallbacks.all())
