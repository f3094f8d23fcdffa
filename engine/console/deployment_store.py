"""Deployments in SQL as the console reads and writes them.

The console writes rows of its own source, "console", through the config importer's own pieces
(`SourceSync`, `deployment_values`, `sync_children`, `check_modes`), so a console deployment is stored
exactly like an imported one: a provider row per endpoint identity (`console/<mapping>/<hash>`, its
literal key encrypted), a shared alias row, capability and cost rows. Rows of a file's source
("config", "defaults") are never written here: the next import of the file would overwrite them, and
an import only ever touches its own source's rows (engine/config/importer.py), so console rows
survive every import.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from engine.config.catalog import ProviderCatalog
from engine.config.importer import (
    ImportReport,
    SourceSync,
    check_modes,
    delete_orphans,
    deployment_values,
    sync_children,
)
from engine.config.plan import DeploymentSpec, ImportPlan
from engine.config.secrets import SecretBox, SecretError, env_ref_name
from engine.console.audit import mask
from engine.console.deployment_form import FLAGS, DeploymentInput, stored_form
from engine.store.models import AliasRow, DeploymentRow, ProviderRow
from engine.store.sources import CONSOLE_SOURCE

__all__ = [
    "CONSOLE_SOURCE",
    "AliasGroup",
    "delete_deployment",
    "deployment_rows",
    "find_deployment",
    "key_label",
    "provider_rows",
    "save_deployment",
    "snapshot",
    "stored_key",
]


@dataclass(frozen=True, slots=True)
class AliasGroup:
    name: str
    mode: str
    source: str
    deployments: list[DeploymentRow]


def _loaded(statement: Select[Any]) -> Select[Any]:
    return statement.options(
        selectinload(DeploymentRow.alias),
        selectinload(DeploymentRow.provider),
        selectinload(DeploymentRow.capability),
        selectinload(DeploymentRow.costs),
    )


async def deployment_rows(session: AsyncSession) -> list[AliasGroup]:
    """Every deployment of every source, grouped by alias (by name), in routing order (priority, id)."""
    rows = await session.scalars(
        _loaded(select(DeploymentRow)).order_by(DeploymentRow.priority, DeploymentRow.id)
    )
    groups: dict[str, AliasGroup] = {}
    row: DeploymentRow
    for row in rows:
        alias = row.alias
        groups.setdefault(
            alias.name, AliasGroup(alias.name, alias.mode, alias.source, [])
        ).deployments.append(row)
    return [groups[name] for name in sorted(groups)]


async def find_deployment(session: AsyncSession, deployment_id: int) -> DeploymentRow | None:
    row: DeploymentRow | None = await session.scalar(
        _loaded(select(DeploymentRow)).where(DeploymentRow.id == deployment_id)
    )
    return row


async def provider_rows(session: AsyncSession) -> list[ProviderRow]:
    """Every stored endpoint (the backends "Refresh models" can ask)."""
    return list(await session.scalars(select(ProviderRow).order_by(ProviderRow.mapping, ProviderRow.id)))


def stored_key(provider: ProviderRow, box: SecretBox) -> str | None:
    """The endpoint's key as stored: the decrypted literal, or its `os.environ/NAME` reference."""
    if provider.api_key_encrypted is not None:
        return box.decrypt(provider.api_key_encrypted)
    return provider.api_key_ref


def key_label(provider: ProviderRow, box: SecretBox) -> str:
    """What the console shows of a stored key: masked, or the environment variable it names."""
    if provider.api_key_encrypted is not None:
        try:
            return mask(box.decrypt(provider.api_key_encrypted)) or "none"
        except SecretError:
            return "cannot be decrypted"
    reference = env_ref_name(provider.api_key_ref)
    if reference is not None:
        return f"${reference}"
    return "none" if not provider.api_key_ref else mask(provider.api_key_ref) or "none"


def snapshot(row: DeploymentRow, api_key: str | None) -> dict[str, Any]:
    """The deployment as the audit log records it (`api_key` is masked by engine.console.audit)."""
    return {
        "source": row.source,
        "source_key": row.source_key,
        **stored_form(row),
        "api_key": api_key,
        "clear_key": None,
    }


async def _check_alias(session: AsyncSession, spec: DeploymentSpec, editing: DeploymentRow | None) -> None:
    """The importer's rules for an alias, with every source's deployments of it: one mode per alias,
    one model per embedding alias. Raises ConfigError."""
    others = await session.scalars(
        select(DeploymentRow)
        .join(AliasRow, DeploymentRow.alias_id == AliasRow.id)
        .where(AliasRow.name == spec.alias)
        .options(selectinload(DeploymentRow.provider))
    )
    specs = [
        DeploymentSpec(
            alias=spec.alias,
            source_key=f"{other.source}:{other.source_key}",
            provider=other.provider.mapping,
            upstream_model=other.upstream_model,
            mode=other.mode,
        )
        for other in others
        if editing is None or other.id != editing.id
    ]
    check_modes(ImportPlan(origin="this deployment", deployments=[*specs, spec]))


async def save_deployment(
    session: AsyncSession,
    data: DeploymentInput,
    catalog: ProviderCatalog,
    box: SecretBox,
    row: DeploymentRow | None = None,
) -> tuple[DeploymentRow, str | None]:
    """Create (row None) or update a console deployment; returns it with the key now stored.

    An empty key field keeps the stored key (unless `clear_key`). Raises ConfigError when the alias
    cannot take it (another mode, or another model behind an embedding alias)."""
    assert row is None or row.source == CONSOLE_SOURCE, "only console rows are written here"
    api_key: str | None
    if data.api_key is not None:
        api_key = data.api_key
    elif row is not None and not data.clear_key:
        api_key = stored_key(row.provider, box)
    else:
        api_key = None
    spec = data.spec(row.source_key if row is not None else uuid.uuid4().hex, api_key)
    await _check_alias(session, spec, row)
    sync = SourceSync(session, CONSOLE_SOURCE, catalog, box)
    await sync.load([spec])
    known = sync.aliases.get(spec.alias)
    alias = sync.alias(spec.alias, spec.mode, known.routing_strategy if known is not None else None)
    values = deployment_values(spec, alias, sync.provider(spec))
    if row is None:
        row = DeploymentRow(source=CONSOLE_SOURCE, source_key=spec.source_key, **values)
        session.add(row)
        row.costs = []
    else:
        for name, value in values.items():
            setattr(row, name, value)
    sync_children(row, spec)
    assert row.capability is not None
    # the form states every flag; "not stated" clears one (an import keeps flags its file leaves unstated)
    for flag in FLAGS:
        setattr(row.capability, f"supports_{flag}", getattr(spec.capabilities, flag))
    await delete_orphans(session, CONSOLE_SOURCE, ImportReport(CONSOLE_SOURCE))
    return row, api_key


async def delete_deployment(session: AsyncSession, row: DeploymentRow) -> None:
    """Delete a console deployment, and its alias and endpoint when nothing else uses them."""
    assert row.source == CONSOLE_SOURCE, "only console rows are deleted here"
    await session.delete(row)
    await delete_orphans(session, CONSOLE_SOURCE, ImportReport(CONSOLE_SOURCE))
