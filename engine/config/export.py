"""The routing in SQL written out as a LiteLLM proxy config that `turnout serve --config` reads back
to the same rows: every source's deployments, the effective router settings and fallbacks.

What `engine.config.litellm` reads, written the way it reads it: `litellm_params.model` is
"<prefix>/<upstream model>" with a prefix the catalogue resolves to the deployment's mapping;
`model_info` carries the id, mode, privacy tier, capabilities, context sizes and prices; Turnout's
extensions (`turnout_forced_params`, `model_info.routing_strategy`) are written where they apply.
Settings and fallbacks are the winners of `SOURCE_PRECEDENCE`, so the file states what is in force.

Secrets: a provider key stored as an `os.environ/NAME` reference is written as that reference; a literal
key (stored encrypted) is never written in clear: it becomes `os.environ/TURNOUT_<MAPPING>_<ID>_API_KEY`,
and the comment at the top lists every variable the file needs and which deployments need it. The
output is deterministic (no dates, sorted), so exporting what an export imported gives the same bytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from engine.config.catalog import ProviderCatalog
from engine.config.litellm import CAPABILITY_FLAGS, CONTEXT_KEYS, COST_KEYS, RESERVED_PARAMS
from engine.config.litellm_router import FALLBACK_KEYS, SETTING_KEYS
from engine.config.secrets import env_ref_name
from engine.store.load import effective_fallbacks, effective_router_settings
from engine.store.models import CapabilityRow, DeploymentRow, FallbackRow, ProviderRow, RouterSettingRow

__all__ = ["LiteLLMExport", "export_litellm", "generated_key_name"]

# capability -> the model_info flag written for it (the first LiteLLM spelling the parser knows)
_FLAG_OF: dict[str, str] = {}
for _key, _capability in CAPABILITY_FLAGS.items():
    _FLAG_OF.setdefault(_capability, _key)
_CAPABILITY_COLUMNS = {
    "tools": "supports_tools",
    "vision": "supports_vision",
    "reasoning": "supports_reasoning",
    "streaming": "supports_streaming",
    "system_messages": "supports_system_messages",
    "json_schema": "supports_json_schema",
}
_PRICE_KEY = {unit: key for key, unit in COST_KEYS.items()}
_FALLBACK_KEY = {kind: key for key, kind in FALLBACK_KEYS.items()}


@dataclass
class LiteLLMExport:
    text: str  # the YAML file
    env: dict[str, list[str]] = field(default_factory=dict)  # variable -> deployments that need it
    warnings: list[str] = field(default_factory=list)


def generated_key_name(provider: ProviderRow) -> str:
    """The variable a literal provider key is exported as: stable for the provider row."""
    return re.sub(r"[^A-Z0-9]+", "_", f"TURNOUT_{provider.mapping}_{provider.id}_API_KEY".upper())


def _quoted(text: str) -> str:
    """A name for a YAML comment: JSON-quoted, so no newline or '#' of a hostile name escapes it."""
    return json.dumps(text, ensure_ascii=True)


class _Writer:
    def __init__(self, catalog: ProviderCatalog) -> None:
        self.catalog = catalog
        self.env: dict[str, list[str]] = {}
        self.warnings: list[str] = []
        self.ids: set[str] = set()

    def model(self, row: DeploymentRow) -> str:
        mapping = row.provider.mapping
        defaults = self.catalog.providers.get(mapping)
        for prefix in (*(defaults.prefixes if defaults else ()), mapping):
            found = self.catalog.by_prefix(prefix)
            if found is not None and found.name == mapping:
                return f"{prefix}/{row.upstream_model}"
        self.warnings.append(
            f"{_quoted(row.alias.name)}: provider mapping {_quoted(mapping)} is not installed"
        )
        return f"{mapping}/{row.upstream_model}"

    def api_key(self, provider: ProviderRow, who: str) -> str | None:
        if provider.api_key_ref is not None and env_ref_name(provider.api_key_ref):
            reference = provider.api_key_ref
        elif provider.api_key_encrypted is not None or provider.api_key_ref is not None:
            reference = f"os.environ/{generated_key_name(provider)}"
        else:
            return None
        self.env.setdefault(reference.removeprefix("os.environ/"), []).append(who)
        return reference

    def model_id(self, row: DeploymentRow, position: int) -> str | None:
        """The id to write: none when the importer derives the same key ("<alias>#<n>") by itself."""
        key = row.source_key
        if key in self.ids:  # two sources used the same key: keep both, told apart by source
            key = f"{row.source}/{key}"
        self.ids.add(key)
        return None if key == f"{row.alias.name}#{position}" else key

    def params(self, row: DeploymentRow, who: str) -> dict[str, Any]:
        provider = row.provider
        params: dict[str, Any] = {"model": self.model(row)}
        if provider.api_base is not None:
            params["api_base"] = provider.api_base
        api_key = self.api_key(provider, who)
        if api_key is not None:
            params["api_key"] = api_key
        if provider.api_version is not None:
            params["api_version"] = provider.api_version
        for name in sorted(row.params):
            if name in RESERVED_PARAMS:
                self.warnings.append(f"{who}: parameter default {_quoted(name)} left out (a reserved name)")
            else:
                params[name] = row.params[name]
        optional = {
            "weight": None if row.weight == 1.0 else row.weight,
            "order": row.priority or None,
            "timeout": row.timeout,
            "rpm": row.rpm,
            "tpm": row.tpm,
            "max_parallel_requests": row.max_parallel_requests,
            "tags": list(row.tags) or None,
            "turnout_forced_params": dict(row.forced_params) or None,
        }
        params.update({key: value for key, value in optional.items() if value is not None})
        return params

    def info(self, row: DeploymentRow, model_id: str | None) -> dict[str, Any]:
        info: dict[str, Any] = {}
        if model_id is not None:
            info["id"] = model_id
        if row.mode != "chat":
            info["mode"] = row.mode
        if row.provider.privacy_tier is not None:
            info["privacy_tier"] = row.provider.privacy_tier
        if row.alias.routing_strategy is not None:
            info["routing_strategy"] = row.alias.routing_strategy
        if row.capability is not None:
            info.update(_capabilities(row.capability))
        prices = {cost.unit: cost.price for cost in row.costs}
        for unit, key in _PRICE_KEY.items():
            if unit in prices:
                info[key] = _number(prices[unit])
        return info

    def entry(self, row: DeploymentRow, position: int) -> dict[str, Any]:
        model_id = self.model_id(row, position)
        who = _quoted(row.alias.name) + (f" (id {_quoted(model_id)})" if model_id else "")
        entry: dict[str, Any] = {"model_name": row.alias.name, "litellm_params": self.params(row, who)}
        info = self.info(row, model_id)
        if info:
            entry["model_info"] = info
        return entry


def _capabilities(capability: CapabilityRow) -> dict[str, Any]:
    """The stated flags and context sizes as model_info keys (unstated ones are left out)."""
    found: dict[str, Any] = {}
    for name, column in _CAPABILITY_COLUMNS.items():
        if getattr(capability, column) is not None:
            found[_FLAG_OF[name]] = getattr(capability, column)
    for key in sorted(capability.extra):
        found[key] = capability.extra[key]
    for key in CONTEXT_KEYS:
        if getattr(capability, key) is not None:
            found[key] = getattr(capability, key)
    return found


def _number(price: Decimal) -> float | int:
    """A price as YAML writes numbers the parser reads back (it takes ints and floats)."""
    return int(price) if price == price.to_integral_value() else float(price)


def _router_settings(settings: list[RouterSettingRow], fallbacks: list[FallbackRow]) -> dict[str, Any]:
    section: dict[str, Any] = {}
    stated = effective_router_settings(settings)
    for key in SETTING_KEYS:
        if key in stated:
            section[key] = stated[key][0]
    lists = effective_fallbacks(fallbacks)
    for kind, key in _FALLBACK_KEY.items():
        found = [{alias: list(targets)} for (alias, k), (targets, _) in sorted(lists.items()) if k == kind]
        if found:
            section[key] = found
    return section


def _header(export: LiteLLMExport) -> str:
    lines = [
        "# Turnout's routing, exported from its database as a LiteLLM proxy config.",
        "# Serve it with `turnout serve --config <this file>`: it imports back to the same routing.",
        "# Router settings and fallbacks are the ones in force (console over config over defaults).",
        "# general_settings (the master key) are not exported.",
    ]
    if export.env:
        lines.append("# Provider keys are never written here. Set these environment variables first:")
        for name in sorted(export.env):
            lines.append(f"#   {name}: needed by {', '.join(export.env[name])}")
    else:
        lines.append("# No provider key is needed.")
    lines += [f"# warning: {warning}" for warning in export.warnings]
    return "\n".join(lines) + "\n"


async def export_litellm(session: AsyncSession, catalog: ProviderCatalog) -> LiteLLMExport:
    """Everything routing-related in SQL, as a LiteLLM config (see the module docstring)."""
    rows = list(
        await session.scalars(
            select(DeploymentRow).options(
                selectinload(DeploymentRow.alias),
                selectinload(DeploymentRow.provider),
                selectinload(DeploymentRow.capability),
                selectinload(DeploymentRow.costs),
            )
        )
    )
    rows.sort(key=lambda row: (row.alias.name, row.priority, row.id))
    writer = _Writer(catalog)
    positions: dict[str, int] = {}
    model_list = []
    for row in rows:
        position = positions.get(row.alias.name, 0)
        positions[row.alias.name] = position + 1
        model_list.append(writer.entry(row, position))
    document: dict[str, Any] = {"model_list": model_list}
    router = _router_settings(
        list(await session.scalars(select(RouterSettingRow))),
        list(await session.scalars(select(FallbackRow))),
    )
    if router:
        document["router_settings"] = router
    export = LiteLLMExport("", writer.env, writer.warnings)
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000)
    export.text = _header(export) + body
    return export
