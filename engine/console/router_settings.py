"""Router settings and fallbacks as the console shows and changes them, and a config file's upload.

What is shown is what the loader uses: each setting's winning value and the source it comes from
(`engine.store.load.effective_router_settings`), each fallback list likewise. The console writes rows
of its own source, "console", which wins over "config" and "defaults" (`SOURCE_PRECEDENCE`) and which
no import touches (an import syncs only its own source: `engine.config.router_import`), so a value set
here survives every re-import of the config file until it is reset here (its row deleted).

Values typed here are checked by the same code that checks a config file (`parse_router_settings`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.config.catalog import ProviderCatalog
from engine.config.importer import ImportReport, remove_source, sync_source
from engine.config.litellm import parse_litellm_text
from engine.config.litellm_router import FALLBACK_KEYS, SETTING_KEYS, WILDCARD, parse_router_settings
from engine.config.plan import FALLBACK_KINDS, ConfigError
from engine.config.secrets import SecretBox
from engine.routing.table import RouterSettings
from engine.store.load import effective_fallbacks, effective_router_settings
from engine.store.models import FallbackRow, RouterSettingRow
from engine.store.sources import CONFIG_SOURCE, CONSOLE_SOURCE, DEFAULTS_SOURCE

__all__ = [
    "BUILT_IN",
    "CONSOLE_SOURCE",
    "SETTING_HINTS",
    "FallbackView",
    "FieldError",
    "SettingView",
    "fallback_views",
    "import_config",
    "report_dict",
    "reset_fallback",
    "reset_setting",
    "set_fallback",
    "set_setting",
    "setting_views",
    "typed_fallback",
    "typed_setting",
]

BUILT_IN = "built-in default"  # the source shown for a setting no source states
_DEFAULTS = RouterSettings()
_NUMBER = re.compile(r"^\d{1,12}(\.\d{1,9})?$")  # finite, plain decimal: no "inf", "nan", "1e999"
_MAX_TARGETS = 20
_NAME_LENGTH = 200  # fallbacks.alias and .target are VARCHAR(200)
_KIND_KEY = {kind: key for key, kind in FALLBACK_KEYS.items()}
# what each setting does, shown beside it (LiteLLM's meaning, as engine.routing implements it)
SETTING_HINTS = {
    "routing_strategy": "how a deployment of an alias is picked (an alias may state its own)",
    "num_retries": "attempts beyond the first, per deployment, on a retryable failure",
    "allowed_fails": "failures per minute a deployment may have before it cools down",
    "retry_after": "minimum seconds to wait before a retry",
    "cooldown_time": "seconds a failing deployment is skipped",
    "enable_pre_call_checks": "skip deployments whose context window the prompt exceeds",
}


class FieldError(ValueError):
    """A typed value refused: which form field, and the problem."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem


@dataclass(frozen=True)
class SettingView:
    key: str
    value: Any  # in force
    source: str  # console | config | defaults | BUILT_IN
    console: Any  # the console's own value, None when it states none


@dataclass(frozen=True)
class FallbackView:
    alias: str
    kind: str
    targets: tuple[str, ...]  # in force
    source: str
    console: tuple[str, ...] | None  # the console's own list, None when it states none


def _problem(error: ConfigError) -> str:
    """A config error's problem without its "origin: where:" prefix (the form names the field)."""
    return str(error).split(": ", 2)[-1]


def typed_setting(key: str, text: str) -> Any:
    """The value typed for `key`, checked as a config file's would be; FieldError("value", problem)."""
    text = text.strip()
    if not text:
        raise FieldError("value", "type a value, or reset the setting to let the config file's apply")
    value: Any = text
    if key == "enable_pre_call_checks":
        value = {"true": True, "false": False}.get(text.lower(), text)
    elif key != "routing_strategy" and _NUMBER.match(text):
        value = float(text) if "." in text else int(text)
    try:
        return parse_router_settings({"router_settings": {key: value}}, "console", ()).settings[key]
    except ConfigError as error:
        raise FieldError("value", _problem(error)) from None


def typed_fallback(alias: str, kind: str, text: str, served: Collection[str]) -> tuple[str, ...]:
    """The targets typed (comma-separated, in order) for `alias`'s `kind` list; FieldError naming the
    field ("alias", "kind" or "targets") and the problem."""
    if kind not in _KIND_KEY:
        raise FieldError("kind", f"one of {', '.join(FALLBACK_KINDS)}")
    if alias != WILDCARD and alias not in served:
        raise FieldError("alias", "choose an alias the gateway serves, or * for every alias")
    targets = [name.strip() for name in text.split(",") if name.strip()]
    if not targets:
        raise FieldError("targets", "name at least one alias to try")
    if len(targets) > _MAX_TARGETS or any(len(name) > _NAME_LENGTH for name in targets):
        raise FieldError("targets", f"at most {_MAX_TARGETS} aliases of at most {_NAME_LENGTH} characters")
    unknown = [name for name in targets if name not in served]
    if unknown:
        raise FieldError("targets", f"nothing serves {', '.join(map(repr, unknown))}")
    try:
        parsed = parse_router_settings(
            {"router_settings": {_KIND_KEY[kind]: [{alias: targets}]}}, "console", served
        )
    except ConfigError as error:
        raise FieldError("targets", _problem(error)) from None
    found = parsed.fallbacks.get(kind, {}).get(alias, ())
    if not found:
        raise FieldError("targets", "an alias cannot fall back to itself: name another")
    return found


async def setting_views(session: AsyncSession) -> list[SettingView]:
    rows = list(await session.scalars(select(RouterSettingRow)))
    stated = effective_router_settings(rows)
    console = {row.key: row.value for row in rows if row.source == CONSOLE_SOURCE}
    views = []
    for key in SETTING_KEYS:
        value, source = stated.get(key, (getattr(_DEFAULTS, key), BUILT_IN))
        views.append(SettingView(key, value, source, console.get(key)))
    return views


async def fallback_views(session: AsyncSession) -> list[FallbackView]:
    rows = list(await session.scalars(select(FallbackRow)))
    console: dict[tuple[str, str], list[FallbackRow]] = {}
    for row in rows:
        if row.source == CONSOLE_SOURCE:
            console.setdefault((row.alias, row.kind), []).append(row)
    views = []
    for (alias, kind), (targets, source) in sorted(effective_fallbacks(rows).items()):
        own = console.get((alias, kind))
        mine = None if own is None else tuple(row.target for row in sorted(own, key=lambda row: row.position))
        views.append(FallbackView(alias, kind, targets, source, mine))
    return views


async def set_setting(session: AsyncSession, key: str, value: Any) -> Any:
    """Write the console's value of `key`; the console's value before (None: it stated none)."""
    row = await session.scalar(
        select(RouterSettingRow).where(RouterSettingRow.source == CONSOLE_SOURCE, RouterSettingRow.key == key)
    )
    if row is None:
        session.add(RouterSettingRow(source=CONSOLE_SOURCE, key=key, value=value))
        return None
    before = row.value
    row.value = value
    return before


async def reset_setting(session: AsyncSession, key: str) -> Any:
    """Delete the console's value of `key`; the value it had (None: there was none)."""
    row = await session.scalar(
        select(RouterSettingRow).where(RouterSettingRow.source == CONSOLE_SOURCE, RouterSettingRow.key == key)
    )
    if row is None:
        return None
    await session.delete(row)
    return row.value


async def _console_list(session: AsyncSession, alias: str, kind: str) -> list[str] | None:
    rows = list(
        await session.scalars(
            select(FallbackRow)
            .where(FallbackRow.source == CONSOLE_SOURCE, FallbackRow.alias == alias, FallbackRow.kind == kind)
            .order_by(FallbackRow.position)
        )
    )
    return [row.target for row in rows] or None


async def reset_fallback(session: AsyncSession, alias: str, kind: str) -> list[str] | None:
    """Delete the console's list for (alias, kind); the list it had (None: there was none)."""
    before = await _console_list(session, alias, kind)
    await session.execute(
        delete(FallbackRow).where(
            FallbackRow.source == CONSOLE_SOURCE, FallbackRow.alias == alias, FallbackRow.kind == kind
        )
    )
    return before


async def set_fallback(
    session: AsyncSession, alias: str, kind: str, targets: tuple[str, ...]
) -> list[str] | None:
    """Replace the console's list for (alias, kind) with `targets`; the list it had."""
    before = await reset_fallback(session, alias, kind)
    await session.flush()  # the deletes first: (source, alias, kind, position) is unique
    for position, target in enumerate(targets):
        session.add(
            FallbackRow(source=CONSOLE_SOURCE, alias=alias, kind=kind, position=position, target=target)
        )
    return before


async def import_config(
    session: AsyncSession, text: str, filename: str, catalog: ProviderCatalog, secrets: SecretBox
) -> ImportReport:
    """An uploaded LiteLLM config applied as `turnout import` applies one: it becomes the "config"
    source, replacing the default alias set; ConfigError (nothing written) when it cannot be."""
    plan = parse_litellm_text(text, catalog, origin=filename)
    await remove_source(session, DEFAULTS_SOURCE)
    report = await sync_source(session, plan, CONFIG_SOURCE, catalog, secrets)
    if plan.settings:
        stated = ", ".join(sorted(plan.settings))
        report.warnings.append(
            f"{stated}: general and litellm settings apply only when the file is given to "
            "turnout serve --config"
        )
    return report


def report_dict(report: ImportReport) -> dict[str, Any]:
    return dataclasses.asdict(report)
