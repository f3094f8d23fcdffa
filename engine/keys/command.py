"""`turnout keys create | list | revoke`: the admin API's key operations, straight against SQL.

A running gateway sees the change within its `key_refresh_interval`. The key is printed once, by create.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from engine.errors import TurnoutError
from engine.keys.service import KeyService, key_changes, key_info
from engine.settings import Settings
from engine.store.db import create_engine, session_factory

__all__ = ["run_keys"]


def run_keys(settings: Settings, command: str, options: dict[str, Any]) -> int:
    if settings.migrate_on_start:
        from engine.store.migrate import upgrade_to_head

        upgrade_to_head(settings.database_url)
    actions: dict[str, Callable[[KeyService, dict[str, Any]], Awaitable[None]]] = {
        "create": _create,
        "list": _list,
        "revoke": _revoke,
    }
    try:
        asyncio.run(_with_service(settings, actions[command], options))
    except TurnoutError as exc:
        print(f"turnout: {exc.message}", file=sys.stderr)
        return 2
    return 0


async def _with_service(
    settings: Settings,
    action: Callable[[KeyService, dict[str, Any]], Awaitable[None]],
    options: dict[str, Any],
) -> None:
    engine = create_engine(settings.database_url)
    try:
        await action(KeyService(session_factory(engine)), options)
    finally:
        await engine.dispose()


async def _create(service: KeyService, options: dict[str, Any]) -> None:
    body: dict[str, Any] = {
        "models": [name.strip() for name in (options["models"] or "").split(",") if name.strip()],
        "max_budget": options["budget"],
        "rpm_limit": options["rpm"],
        "tpm_limit": options["tpm"],
        "key_alias": options["name"],
        "duration": options["expires"],
        "privacy": options["privacy"],
    }
    key, row = await service.create(key_changes({k: v for k, v in body.items() if v is not None}))
    info = key_info(row)
    print(key)
    print(
        f"  {info['key_name']} {info['key_alias'] or ''} models: {', '.join(info['models']) or 'all'}; "
        f"expires: {info['expires'] or 'never'}. The key is shown only now: keep it.",
        file=sys.stderr,
    )


async def _list(service: KeyService, _options: dict[str, Any]) -> None:
    rows = [key_info(row) for row in await service.active()]
    if not rows:
        print("no active keys")
        return
    print(f"{'KEY':<12} {'NAME':<20} {'MODELS':<30} {'BUDGET':>8} {'RPM':>6} {'EXPIRES':<25} PRIVACY")
    for info in rows:
        print(
            f"{info['key_name']:<12} {info['key_alias'] or '-':<20} {', '.join(info['models']) or 'all':<30} "
            f"{_or_dash(info['max_budget']):>8} {_or_dash(info['rpm_limit']):>6} "
            f"{info['expires'] or 'never':<25} {info['privacy'] or '-'}"
        )


def _or_dash(value: Any) -> str:
    return "-" if value is None else f"{value:g}"


async def _revoke(service: KeyService, options: dict[str, Any]) -> None:
    row = await service.revoke_prefix(options["key"])
    print(f"revoked {row.key_prefix}... {row.key_alias or ''}".rstrip())
