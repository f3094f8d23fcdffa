"""SQL rows into the immutable routing table the request path reads.

Credentials are resolved here, at load time: `os.environ/NAME` references from the environment,
literal keys decrypted. Deployments whose provider mapping is not installed are skipped with a warning.

Router settings and fallbacks are stored per source. When several sources state the same setting, or
a fallback list for the same (alias, kind), the first source in `SOURCE_PRECEDENCE` wins: the operator's
config over Turnout's default alias set (other sources follow, by name). Settings no source states keep
`RouterSettings`' defaults. The fallback alias "*" serves every alias without its own list of that kind;
targets that no loaded alias serves are dropped with a warning.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from engine.config.catalog import ProviderCatalog, ProviderDefaults
from engine.config.litellm_router import WILDCARD, normalize_strategy
from engine.config.plan import FALLBACK_KINDS
from engine.config.secrets import SecretBox, env_ref_name, resolve_env_ref
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
from engine.store.models import (
    AliasRow,
    CapabilityRow,
    DeploymentRow,
    FallbackRow,
    ProviderRow,
    RouterSettingRow,
)
from engine.store.sources import CONFIG_SOURCE, CONSOLE_SOURCE, DEFAULTS_SOURCE

__all__ = ["SOURCE_PRECEDENCE", "effective_fallbacks", "effective_router_settings", "load_routing_table"]

# the winner first: what an operator changed in the console, then the files engine.bootstrap imports
SOURCE_PRECEDENCE = (CONSOLE_SOURCE, CONFIG_SOURCE, DEFAULTS_SOURCE)

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


def _model_id(row: DeploymentRow) -> str | None:
    """The config's `model_info.id`: the row's source key, unless it is the importer's own
    "<alias>#<n>" (what an entry without an id is keyed by)."""
    number = row.source_key.removeprefix(f"{row.alias.name}#")
    return None if number != row.source_key and number.isdigit() else row.source_key


def _deployment(row: DeploymentRow, defaults: ProviderDefaults, secrets: SecretBox) -> Deployment:
    provider = row.provider
    return Deployment(
        id=row.id,
        alias=row.alias.name,
        provider=provider.mapping,
        upstream_model=row.upstream_model,
        model_id=_model_id(row),
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
        limits=Limits(rpm=row.rpm, tpm=row.tpm, max_parallel_requests=row.max_parallel_requests),
        forced_params=dict(row.forced_params),
    )


def _ranked(rows: Iterable[Any], precedence: Sequence[str]) -> list[Any]:
    """Rows with a `source`, the winning source LAST (so later assignments win), then by id."""

    def rank(row: Any) -> tuple[int, str, int]:
        known = precedence.index(row.source) if row.source in precedence else len(precedence)
        return (known, row.source, row.id)

    return sorted(rows, key=rank, reverse=True)


_SETTING_TYPES = {field.name: type(field.default) for field in dataclasses.fields(RouterSettings)}


def _setting(key: str, value: Any) -> Any:
    """The value as `RouterSettings` types it, or None when it is not one (a row from elsewhere)."""
    kind = _SETTING_TYPES.get(key)
    if key == "routing_strategy":
        return normalize_strategy(value)
    if kind is None or isinstance(value, bool) is not (kind is bool):
        return None
    if kind is float and isinstance(value, int | float):
        return float(value)
    return value if isinstance(value, kind) else None


def effective_router_settings(
    rows: Iterable[RouterSettingRow], precedence: Sequence[str] = SOURCE_PRECEDENCE
) -> dict[str, tuple[Any, str]]:
    """key -> (typed value, source) of every setting some source states; the winning source's value.
    What the console's router page shows, and what `_router_settings` builds the table from."""
    values: dict[str, tuple[Any, str]] = {}
    for row in _ranked(rows, precedence):
        value = _setting(row.key, row.value)
        if value is None:
            log.warning("ignoring router setting %s=%r from %s", row.key, row.value, row.source)
        else:
            values[row.key] = (value, row.source)
    return values


def _router_settings(rows: Iterable[RouterSettingRow], precedence: Sequence[str]) -> RouterSettings:
    return RouterSettings(
        **{key: value for key, (value, _) in effective_router_settings(rows, precedence).items()}
    )


def effective_fallbacks(
    rows: Iterable[FallbackRow], precedence: Sequence[str] = SOURCE_PRECEDENCE
) -> dict[tuple[str, str], tuple[tuple[str, ...], str]]:
    """(alias, kind) -> (targets, source), each list whole from the winning source (lists are never
    merged), targets as stated (the loader then drops those no alias serves)."""
    by_source: dict[tuple[str, str], dict[str, list[FallbackRow]]] = {}
    for row in _ranked(rows, precedence):
        by_source.setdefault((row.alias, row.kind), {}).setdefault(row.source, []).append(row)
    # _ranked puts the winner last; dicts keep insertion order
    found: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {}
    for key, sources in by_source.items():
        source, winning = list(sources.items())[-1]
        found[key] = (tuple(row.target for row in sorted(winning, key=lambda row: row.position)), source)
    return found


def _fallback_lists(
    rows: Iterable[FallbackRow], precedence: Sequence[str]
) -> dict[tuple[str, str], tuple[str, ...]]:
    return {key: targets for key, (targets, _) in effective_fallbacks(rows, precedence).items()}


def _with_fallbacks(aliases: dict[str, Alias], lists: dict[tuple[str, str], tuple[str, ...]]) -> None:
    """Attach each alias's fallbacks, dropping targets no alias serves (and the alias itself)."""
    unknown = sorted({t for targets in lists.values() for t in targets if t not in aliases})
    if unknown:
        log.warning("fallbacks name aliases nothing serves; dropped: %s", ", ".join(unknown))
    for name, alias in aliases.items():
        found: dict[str, tuple[str, ...]] = {}
        for kind in FALLBACK_KINDS:
            targets = lists.get((name, kind), lists.get((WILDCARD, kind), ()))
            found[kind] = tuple(t for t in targets if t in aliases and t != name)
        if any(found.values()):
            aliases[name] = dataclasses.replace(alias, fallbacks=Fallbacks(**found))


def _strategy(alias: AliasRow) -> str | None:
    strategy = normalize_strategy(alias.routing_strategy)
    if alias.routing_strategy is not None and strategy is None:
        log.warning("alias %s: unknown routing strategy %r; using the router's", alias.name,
                    alias.routing_strategy)  # fmt: skip
    return strategy


async def load_routing_table(
    session: AsyncSession,
    catalog: ProviderCatalog,
    secrets: SecretBox,
    *,
    precedence: Sequence[str] = SOURCE_PRECEDENCE,
) -> RoutingTable:
    """Every alias with its usable deployments, ordered by (priority, id), its fallbacks; the settings."""
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
            routing_strategy=_strategy(alias),
        )
    _with_fallbacks(aliases, _fallback_lists(await session.scalars(select(FallbackRow)), precedence))
    settings = _router_settings(await session.scalars(select(RouterSettingRow)), precedence)
    return RoutingTable(aliases=aliases, settings=settings)
