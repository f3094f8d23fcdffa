"""An `ImportPlan` written into SQL, idempotently, under a source label ("config", "defaults").

Rows are matched by stable identities (provider name derived from its endpoint, alias name,
(source, source_key) for deployments), and a column is only assigned when its value differs, so a
re-import of the same file issues no UPDATE and keeps ids and updated_at. Router settings and
fallbacks are kept per source too (`engine.config.router_import`).

An alias row is shared by every source serving that name; its `routing_strategy` is set by the source
that states one, and cleared only by the source that owns the row.
The caller owns the transaction: `async with factory() as s, s.begin(): await sync_source(...)`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from engine.config.catalog import ProviderCatalog
from engine.config.plan import ConfigError, DeploymentSpec, ImportPlan
from engine.config.router_import import remove_router_config, sync_router_config
from engine.config.secrets import SecretBox, env_ref_name
from engine.store.base import utcnow
from engine.store.models import AliasRow, CapabilityRow, CostRow, DeploymentRow, ProviderRow

__all__ = [
    "ImportReport",
    "SourceSync",
    "check_modes",
    "delete_orphans",
    "deployment_values",
    "remove_source",
    "sync_children",
    "sync_source",
]


@dataclass(slots=True)
class ImportReport:
    source: str
    created: int = 0  # deployments
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    aliases_deleted: int = 0
    providers_deleted: int = 0
    settings_changed: int = 0  # router settings and fallback rows created, updated or deleted
    warnings: list[str] = field(default_factory=list)


def _assign(row: Any, values: dict[str, Any]) -> bool:
    """Set only the attributes whose value differs; True when something changed."""
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


def check_modes(plan: ImportPlan) -> dict[str, str]:
    """alias -> mode, refusing an alias whose deployments mix modes."""
    modes: dict[str, set[str]] = {}
    for spec in plan.deployments:
        modes.setdefault(spec.alias, set()).add(spec.mode)
    for alias, found in modes.items():
        if len(found) > 1:
            raise ConfigError(
                f"{plan.origin}: alias {alias!r} mixes modes ({', '.join(sorted(found))}); "
                "one alias serves one kind of request: give the others their own model_name"
            )
    _check_embedding_models(plan, modes)
    return {alias: found.pop() for alias, found in modes.items()}


def _check_embedding_models(plan: ImportPlan, modes: dict[str, set[str]]) -> None:
    """Refuse an embedding alias served by different models: their vectors are not comparable.

    A vector store built with one model answers nonsense to queries embedded by another, so fallback
    between deployments of an embedding alias is only safe across copies of the same model.
    """
    models: dict[str, set[str]] = {}
    for spec in plan.deployments:
        if modes[spec.alias] == {"embedding"}:
            models.setdefault(spec.alias, set()).add(f"{spec.provider}/{spec.upstream_model}")
    for alias, found in models.items():
        if len(found) > 1:
            raise ConfigError(
                f"{plan.origin}: embedding alias {alias!r} mixes models ({', '.join(sorted(found))}); "
                "vectors from different models cannot be compared, so one alias must serve one model "
                "(deployments of the same model on several servers are fine): give the others their own "
                "model_name"
            )


class SourceSync:
    """Finds or creates the provider and alias rows one source's deployments use (also the console's)."""

    def __init__(self, session: AsyncSession, source: str, catalog: ProviderCatalog, box: SecretBox) -> None:
        self.session = session
        self.source = source
        self.catalog = catalog
        self.box = box
        self.providers: dict[str, ProviderRow] = {}
        self.aliases: dict[str, AliasRow] = {}

    def provider_name(self, spec: DeploymentSpec) -> str:
        """Stable and unique per endpoint identity; a literal key enters only as a keyed fingerprint."""
        key = spec.api_key
        key_identity = "" if key is None else (key if env_ref_name(key) else self.box.fingerprint(key))
        identity = "\x1f".join(
            [
                spec.provider,
                spec.api_base or "",
                key_identity,
                spec.api_version or "",
                spec.privacy_tier or "",
            ]
        )
        return f"{self.source}/{spec.provider}/{hashlib.sha256(identity.encode()).hexdigest()[:12]}"

    async def load(self, specs: Iterable[DeploymentSpec]) -> None:
        specs = list(specs)
        names = {self.provider_name(spec) for spec in specs}
        rows = await self.session.scalars(select(ProviderRow).where(ProviderRow.name.in_(names)))
        self.providers = {row.name: row for row in rows}
        aliases = await self.session.scalars(
            select(AliasRow).where(AliasRow.name.in_({spec.alias for spec in specs}))
        )
        self.aliases = {row.name: row for row in aliases}

    def provider(self, spec: DeploymentSpec) -> ProviderRow:
        name = self.provider_name(spec)
        row = self.providers.get(name)
        literal_key = spec.api_key if spec.api_key is not None and not env_ref_name(spec.api_key) else None
        if row is None:
            row = ProviderRow(name=name, source=self.source, api_key_encrypted=None)
            self.session.add(row)
            self.providers[name] = row
        encrypted = row.api_key_encrypted
        if literal_key is None:
            encrypted = None
        elif encrypted is None or not self.box.matches(encrypted, literal_key):
            encrypted = self.box.encrypt(literal_key)
        _assign(
            row,
            {
                "mapping": spec.provider,
                "api_base": spec.api_base,
                "api_key_ref": spec.api_key if literal_key is None else None,
                "api_key_encrypted": encrypted,
                "api_version": spec.api_version,
                "privacy_tier": spec.privacy_tier,
            },
        )
        return row

    def alias(self, name: str, mode: str, strategy: str | None) -> AliasRow:
        row = self.aliases.get(name)
        if row is None:
            row = AliasRow(name=name, mode=mode, source=self.source, display_name=None, routing_strategy=None)
            self.session.add(row)
            self.aliases[name] = row
        if (strategy is not None or row.source == self.source) and row.routing_strategy != strategy:
            row.routing_strategy = strategy
        if row.mode != mode:
            if row.source != self.source:
                raise ConfigError(
                    f"alias {name!r} is already served as {row.mode} (from {row.source}); "
                    f"{self.source} asks for {mode}"
                )
            row.mode = mode
        return row


def _capability_values(spec: DeploymentSpec) -> dict[str, Any]:
    caps = spec.capabilities
    return {
        "supports_tools": caps.tools,
        "supports_vision": caps.vision,
        "supports_reasoning": caps.reasoning,
        "supports_streaming": caps.streaming,
        "supports_system_messages": caps.system_messages,
        "supports_json_schema": caps.json_schema,
        "max_tokens": caps.max_tokens,
        "max_input_tokens": caps.max_input_tokens,
        "max_output_tokens": caps.max_output_tokens,
        "extra": dict(spec.extra_capabilities),
    }


def _sync_costs(row: DeploymentRow, costs: dict[str, Decimal]) -> bool:
    changed = False
    current = {cost.unit: cost for cost in row.costs}
    for unit, cost in current.items():
        if unit not in costs:
            row.costs.remove(cost)
            changed = True
    for unit, price in costs.items():
        if unit in current:
            changed |= _assign(current[unit], {"price": price})
        else:
            row.costs.append(CostRow(unit=unit, price=price))
            changed = True
    return changed


# flags a file may leave unstated; then they keep what is stored (e.g. verified by `turnout probe --write`)
_VERIFIABLE = ("supports_tools", "supports_vision", "supports_reasoning", "supports_streaming")


def sync_children(row: DeploymentRow, spec: DeploymentSpec) -> bool:
    values = _capability_values(spec)
    if row.capability is None:
        row.capability = CapabilityRow(**values)
        changed = True
    else:
        for flag in _VERIFIABLE:
            if values[flag] is None:
                values.pop(flag)
        changed = _assign(row.capability, values)
    return _sync_costs(row, spec.costs) or changed


def deployment_values(spec: DeploymentSpec, alias: AliasRow, provider: ProviderRow) -> dict[str, Any]:
    return {
        "alias": alias,
        "provider": provider,
        "upstream_model": spec.upstream_model,
        "weight": spec.weight,
        "priority": spec.priority,
        "params": dict(spec.params),
        "forced_params": dict(spec.forced_params),
        "rpm": spec.limits.get("rpm"),
        "tpm": spec.limits.get("tpm"),
        "max_parallel_requests": spec.limits.get("max_parallel_requests"),
        "timeout": spec.timeout,
        "tags": list(spec.tags),
        "mode": spec.mode,
    }


async def _existing_deployments(session: AsyncSession, source: str) -> dict[str, DeploymentRow]:
    rows = await session.scalars(
        select(DeploymentRow)
        .where(DeploymentRow.source == source)
        .options(
            selectinload(DeploymentRow.alias),
            selectinload(DeploymentRow.provider),
            selectinload(DeploymentRow.capability),
            selectinload(DeploymentRow.costs),
        )
    )
    return {row.source_key: row for row in rows}


async def delete_orphans(session: AsyncSession, source: str, report: ImportReport) -> None:
    """Aliases and providers of this source that no deployment uses any more."""
    await session.flush()
    aliases = await session.execute(
        delete(AliasRow)
        .where(AliasRow.source == source, ~exists().where(DeploymentRow.alias_id == AliasRow.id))
        .returning(AliasRow.id)
    )
    report.aliases_deleted = len(aliases.all())
    providers = await session.execute(
        delete(ProviderRow)
        .where(ProviderRow.source == source, ~exists().where(DeploymentRow.provider_id == ProviderRow.id))
        .returning(ProviderRow.id)
    )
    report.providers_deleted = len(providers.all())


async def sync_source(
    session: AsyncSession, plan: ImportPlan, source: str, catalog: ProviderCatalog, secrets: SecretBox
) -> ImportReport:
    """Make the rows of `source` match the plan exactly (idempotent; flushes, does not commit)."""
    modes = check_modes(plan)
    report = ImportReport(source=source, warnings=list(plan.warnings))
    sync = SourceSync(session, source, catalog, secrets)
    existing = await _existing_deployments(session, source)
    await sync.load(plan.deployments)
    for spec in plan.deployments:
        if spec.provider not in catalog.providers:
            report.warnings.append(f"{spec.alias}: provider mapping {spec.provider!r} is not installed")
        alias = sync.alias(spec.alias, modes[spec.alias], plan.alias_strategies.get(spec.alias))
        values = deployment_values(spec, alias, sync.provider(spec))
        row = existing.pop(spec.source_key, None)
        if row is None:
            row = DeploymentRow(source=source, source_key=spec.source_key, **values)
            session.add(row)
            row.costs = []
            sync_children(row, spec)
            report.created += 1
        elif _assign(row, values):
            sync_children(row, spec)
            report.updated += 1
        elif sync_children(row, spec):
            row.updated_at = utcnow()  # a capability or a price changed: the deployment did
            report.updated += 1
        else:
            report.unchanged += 1
    for row in existing.values():
        await session.delete(row)
        report.deleted += 1
    await delete_orphans(session, source, report)
    report.settings_changed = await sync_router_config(session, plan, source)
    return report


async def remove_source(session: AsyncSession, source: str) -> ImportReport:
    """Delete every deployment of `source`, its aliases and providers left unused, its router settings."""
    report = ImportReport(source=source)
    for row in (await _existing_deployments(session, source)).values():
        await session.delete(row)
        report.deleted += 1
    await delete_orphans(session, source, report)
    report.settings_changed = await remove_router_config(session, source)
    return report
