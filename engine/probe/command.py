"""`turnout probe` as a command: choose the aliases, probe each deployment, print, optionally write."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from engine.config.secrets import SecretBox
from engine.mapping.loader import MappingRegistry, load_registry
from engine.pipeline.attempt import Attempter
from engine.pipeline.options import PipelineOptions
from engine.probe.report import render, write_notice, write_verdicts
from engine.probe.steps import CHAT_MODES, DeploymentReport, probe_deployment
from engine.redact import Redactor, credentials_of
from engine.routing.table import Alias, RoutingTable
from engine.settings import Settings
from engine.store.db import create_engine, session_factory
from engine.store.load import load_routing_table
from engine.upstream import UpstreamClient

__all__ = ["run_probe"]


# ---- the command ----------------------------------------------------------------------------------


def _choose(table: RoutingTable, names: Sequence[str]) -> list[Alias] | str:
    """The aliases to probe, or the usage error to print."""
    if not table.aliases:
        return "the database holds no aliases to probe: pass --config FILE, or run `turnout import` first"
    unknown = [name for name in names if name not in table.aliases]
    if unknown:
        return f"no alias named {', '.join(unknown)}; configured: {', '.join(table.aliases)}"
    return [table.aliases[name] for name in dict.fromkeys(names or table.aliases)]


async def _probe(
    settings: Settings, registry: MappingRegistry, names: Sequence[str], write: bool, timeout: float
) -> int:
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    try:
        async with sessions() as session:
            table = await load_routing_table(session, registry.catalog(), SecretBox.from_settings(settings))
        chosen = _choose(table, names)
        if isinstance(chosen, str):
            print(f"turnout: {chosen}", file=sys.stderr)
            return 2
        notes = [
            f"{a.name}: serves {a.mode} requests; not probed" for a in chosen if a.mode not in CHAT_MODES
        ]
        chat = [alias for alias in chosen if alias.mode in CHAT_MODES]
        redactor = Redactor(credentials_of(table, settings.master_key, settings.salt_key))
        reports = await _probe_aliases(settings, registry, table, chat, timeout, redactor)
        print(render(reports, redactor))
        if notes:
            print("\n".join(["", *notes]))
        if write:
            print()
            print(write_notice(reports, await write_verdicts(sessions, reports)))
        return 0
    finally:
        await engine.dispose()


async def _probe_aliases(
    settings: Settings,
    registry: MappingRegistry,
    table: RoutingTable,
    aliases: list[Alias],
    timeout: float,
    redactor: Redactor,
) -> list[DeploymentReport]:
    connect_timeout = min(settings.connect_timeout, timeout)
    client = UpstreamClient(pool_size=4, pool_size_per_host=4, connect_timeout=connect_timeout)
    options = PipelineOptions(
        drop_params=False,  # a parameter the mapping cannot express is a finding, not a warning
        request_timeout=timeout,
    )  # no image fetcher: the probe's image is a data: URL
    attempts = Attempter(registry, client, options, redactor=lambda: redactor)
    reports = []
    try:
        for alias in aliases:
            for deployment in alias.deployments:
                label = f"{deployment.provider}/{deployment.upstream_model}"
                print(f"probing {alias.name} ({label}) ...", file=sys.stderr, flush=True)
                reports.append(await probe_deployment(attempts, deployment, timeout))
    finally:
        await client.close()
    return reports


def run_probe(
    settings: Settings, *, aliases: Sequence[str] = (), write: bool = False, timeout: float = 120.0
) -> int:
    """Probe the aliases held in SQL (all, or the named ones) and print the report; the exit status."""
    return asyncio.run(_probe(settings, load_registry(settings.mapping_folders), aliases, write, timeout))
