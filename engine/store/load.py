"""SQL rows into the immutable routing table the request path reads.

Credentials are resolved here, at load time: `os.environ/NAME` references from the environment,
literal keys decrypted. Deployments whose provider mapping is not installed are skipped with a warning.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from engine.config.catalog import ProviderCatalog, ProviderDefaults
from engine.config.secrets import SecretBox, env_ref_name, resolve_env_ref
from engine.routing.table import Alias, Capabilities, Cost, Deployment, RoutingTable
from engine.store.models import AliasRow, CapabilityRow, DeploymentRow, ProviderRow

__all__ = ["load_routing_table"]

log = logging.getLogger(__name__)


def _unix(moment: datetime) -> int:
    # SQLite hands back naive datetimes; they were written in UTC.
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def _capabilities(row: CapabilityRow | None) -> Capabilities:
    if row is None:
        return Capabilities()
    return Capabilities(
        tools=row.supports_tools,
        vision=row.supports_vision,
        reasoning=row.supports_reasoning,
        streaming=row.supports_streaming,
        system_messages=row.supports_system_messages,
        json_schema=row.supports_json_schema,
        max_tokens=row.max_tokens,
        max_input_tokens=row.max_input_tokens,
        max_output_tokens=row.max_output_tokens,
    )


def _api_base(provider: ProviderRow, defaults: ProviderDefaults) -> str | None:
    """The row's URL; an `os.environ/NAME` reference to an unset variable means the mapping default."""
    if provider.api_base is None:
        return defaults.api_base
    return resolve_env_ref(provider.api_base) or defaults.api_base


def _api_key(provider: ProviderRow, secrets: SecretBox) -> str | None:
    if provider.api_key_encrypted is not None:
        return secrets.decrypt(provider.api_key_encrypted)
    if provider.api_key_ref is not None and env_ref_name(provider.api_key_ref):
        return resolve_env_ref(provider.api_key_ref)
    return provider.api_key_ref


def _deployment(row: DeploymentRow, defaults: ProviderDefaults, secrets: SecretBox) -> Deployment:
    provider = row.provider
    return Deployment(
        id=row.id,
        alias=row.alias.name,
        provider=provider.mapping,
        upstream_model=row.upstream_model,
        api_base=_api_base(provider, defaults),
        api_key=_api_key(provider, secrets),
        api_version=resolve_env_ref(provider.api_version),
        mode=row.mode,
        params=dict(row.params),
        timeout=row.timeout,
        weight=row.weight,
        priority=row.priority,
        privacy_tier=provider.privacy_tier or defaults.privacy_tier,
        capabilities=_capabilities(row.capability),
        costs=tuple(Cost(cost.unit, cost.price) for cost in sorted(row.costs, key=lambda cost: cost.unit)),
        tags=tuple(row.tags),
        source=row.source,
    )


async def load_routing_table(
    session: AsyncSession, catalog: ProviderCatalog, secrets: SecretBox
) -> RoutingTable:
    """Every alias with its usable deployments, ordered by (priority, id)."""
    rows = await session.scalars(
        select(AliasRow)
        .order_by(AliasRow.name)
        .options(
            selectinload(AliasRow.deployments).options(
                selectinload(DeploymentRow.alias),
                selectinload(DeploymentRow.provider),
                selectinload(DeploymentRow.capability),
                selectinload(DeploymentRow.costs),
            )
        )
    )
    aliases: dict[str, Alias] = {}
    for alias in rows:
        deployments: list[Deployment] = []
        for row in sorted(alias.deployments, key=lambda row: (row.priority, row.id)):
            defaults = catalog.providers.get(row.provider.mapping)
            if defaults is None:
                log.warning("skipping deployment %s of alias %s: provider mapping %r is not installed",
                            row.id, alias.name, row.provider.mapping)  # fmt: skip
                continue
            deployments.append(_deployment(row, defaults, secrets))
        if not deployments:
            log.warning("alias %s has no usable deployment; not served", alias.name)
            continue
        aliases[alias.name] = Alias(
            name=alias.name,
            deployments=tuple(deployments),
            mode=alias.mode,
            created=_unix(alias.created_at),
            source=alias.source,
        )
    return RoutingTable(aliases=aliases)
