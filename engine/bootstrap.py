"""Before serving: migrate the database and import the config file (or the default alias set) into SQL.

Runs synchronously, before the server's event loop exists (Alembic starts its own loop).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.cache import cache_problem
from engine.cache.config import redis_url_of
from engine.config.importer import ImportReport, remove_source, sync_source
from engine.config.litellm import load_model_set, parse_litellm_config
from engine.config.plan import ConfigError, ImportPlan
from engine.config.secrets import SecretBox, resolve_env_ref
from engine.mapping.folders import find_file
from engine.mapping.loader import MappingRegistry
from engine.settings import Settings
from engine.store.db import create_engine, session_factory
from engine.store.migrate import upgrade_to_head
from engine.store.sources import CONFIG_SOURCE, DEFAULTS_SOURCE

__all__ = ["CONFIG_SOURCE", "DEFAULTS_SOURCE", "import_plan", "prepare", "source_plan"]

log = logging.getLogger("turnout")


def prepare(
    settings: Settings, registry: MappingRegistry, *, migrate: Callable[[str], None] | None = None
) -> Settings:
    """Migrate, import, and return the settings with the config file's own settings applied. `migrate`
    runs Alembic's migrations on a database behind the newest revision (engine.store.migrate)."""
    if settings.migrate_on_start:
        upgrade_to_head(settings.database_url, migrate=migrate)
    plan, source, replaces = source_plan(settings, registry)
    # checked before the import: a file whose settings cannot work (a cache with no Redis URL) changes nothing
    resolved = _checked(apply_config_settings(settings, plan) if settings.config is not None else settings)
    asyncio.run(import_plan(settings, registry, plan, source, replaces=replaces))
    return resolved


def source_plan(settings: Settings, registry: MappingRegistry) -> tuple[ImportPlan, str, str]:
    """The file a gateway imports (at start, and again when it changes: engine.reload), parsed: the plan,
    its source label, and the source it replaces. File-sourced rows mirror what the gateway was started
    with: a config replaces the default set's rows, and the default set a config's."""
    catalog = registry.catalog()
    if settings.config is not None:
        return parse_litellm_config(settings.config, catalog), CONFIG_SOURCE, DEFAULTS_SOURCE
    return load_model_set(default_model_set(settings), catalog), DEFAULTS_SOURCE, CONFIG_SOURCE


def _checked(settings: Settings) -> Settings:
    """The settings, if what the file and the environment set can work as a whole."""
    problem = cache_problem(settings)
    if problem is not None:
        raise ConfigError(problem)
    return settings


def default_model_set(settings: Settings) -> Path:
    return find_file(settings.mapping_folders, "models/defaults.yaml")  # one's own folder may replace it


async def import_plan(
    settings: Settings,
    registry: MappingRegistry,
    plan: ImportPlan,
    source: str,
    *,
    replaces: str | None = None,
) -> ImportReport:
    for warning in plan.warnings:
        log.warning("%s: %s", plan.origin, warning)
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            if replaces is not None:
                await remove_source(session, replaces)
            report = await sync_source(
                session, plan, source, registry.catalog(), SecretBox.from_settings(settings)
            )
    finally:
        await engine.dispose()
    for warning in report.warnings[len(plan.warnings) :]:  # the plan's own were logged above
        log.warning("%s: %s", plan.origin, warning)
    log.info(
        "imported %s as %s: %s", plan.origin, source, _summary(report), extra={"import": _counts(report)}
    )
    return report


def _summary(report: ImportReport) -> str:
    """`17 deployments created, 0 updated, 0 unchanged` and what else changed, in words."""
    said = [f"{report.created} deployments created, {report.updated} updated, {report.unchanged} unchanged"]
    for count, what in (
        (report.deleted, "deployments deleted"),
        (report.aliases_deleted, "aliases deleted"),
        (report.providers_deleted, "providers deleted"),
        (report.settings_changed, "router settings or fallbacks changed"),
    ):
        if count:
            said.append(f"{count} {what}")
    return "; ".join(said)


def _counts(report: ImportReport) -> dict[str, Any]:
    """The report as JSON log fields (beside `message`)."""
    fields = {name: getattr(report, name) for name in report.__dataclass_fields__ if name != "warnings"}
    return {**fields, "warnings": len(report.warnings)}


def apply_config_settings(settings: Settings, plan: ImportPlan) -> Settings:
    """general_settings / litellm_settings from the file, unless the environment set them explicitly."""
    updates: dict[str, Any] = {}
    explicit = settings.model_fields_set
    master_key = resolve_env_ref(plan.settings.get("master_key"))
    if master_key and "master_key" not in explicit:
        updates["master_key"] = master_key
    if "drop_params" in plan.settings and "drop_params" not in explicit:
        updates["drop_params"] = bool(plan.settings["drop_params"])
    if plan.settings.get("request_timeout") and "request_timeout" not in explicit:
        updates["request_timeout"] = float(plan.settings["request_timeout"])
    updates.update(_cache_settings(plan.settings.get("cache_settings") or {}, explicit))
    return settings.model_copy(update=updates) if updates else settings


def _cache_settings(found: dict[str, Any], explicit: set[str]) -> dict[str, Any]:
    """litellm_settings.cache / cache_params (engine.cache.config), where the environment is silent."""
    updates = {name: value for name, value in found.items() if name != "cache_redis" and name not in explicit}
    if "cache_redis" in found and "cache_redis_url" not in explicit:
        updates["cache_redis_url"] = redis_url_of(
            found["cache_redis"], lambda value: resolve_env_ref(value) if isinstance(value, str) else value
        )
    return updates
