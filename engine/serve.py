"""`turnout serve`: load the mappings, bring the database to head and import the config (also what
`turnout import` and `probe --config` do), then run uvicorn with one worker or several."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.logs import LogFormat, configure_logging
from engine.settings import Settings

if TYPE_CHECKING:
    from engine.mapping.loader import MappingRegistry

__all__ = ["PrepareFailed", "migrate_child", "prepare", "serve"]

SERVER_CUT_AFTER_GRACE = 2.0  # seconds after `shutdown_grace` the server cuts requests still running


def serve(settings: Settings, workers: int) -> int:
    import os

    import uvicorn

    from engine.app import create_app
    from engine.tracing import tracing_problem

    if (problem := tracing_problem(settings)) is not None:  # before the database is touched
        print(f"turnout: {problem}", file=sys.stderr)
        return 2
    prepared = prepare(settings, migrate=functools.partial(migrate_in_child, log_format=settings.log_format))
    if isinstance(prepared, str):
        print(f"turnout: {prepared}", file=sys.stderr)
        return 2
    settings, registry = prepared
    announce_console(settings)
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop" if sys.platform != "win32" else "asyncio",
        "http": "httptools",
        "ws": "none",  # Turnout serves no WebSocket route: no WebSocket library imported at start
        "access_log": settings.access_log,
        "log_level": settings.log_level,
        "log_config": None,  # the server's lines go through Turnout's handler (engine.logs): one format
        # the gateway ends its event streams at the grace (engine.pipeline.grace); the server's own
        # limit, which cuts whatever still runs, comes just after, so that those streams end first
        "timeout_graceful_shutdown": settings.shutdown_grace + SERVER_CUT_AFTER_GRACE,
    }
    if workers > 1:
        # workers rebuild the app from the environment; the import above has already run once
        os.environ.update(settings_environment(settings))
        uvicorn.run("engine.asgi:app", workers=workers, **common)
        return 0
    uvicorn.run(create_app(settings, registry=registry), **common)
    return 0


def announce_console(settings: Settings) -> None:
    """Say where the admin console is, and how to open it, before the server's own start lines."""
    if not settings.ui_enabled:
        return
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    host = f"[{host}]" if ":" in host else host
    how = (
        "sign in with the master key or an admin password"
        if settings.master_key or settings.admin_password
        else "to sign in, set TURNOUT_MASTER_KEY or run `turnout admin set-password`"
    )
    where = f"admin console at http://{host}:{settings.port}{settings.ui_path} ({how})"
    if settings.log_format == "json":  # a log shipper reads standard output too: one JSON object per line
        logging.getLogger("turnout").info(where)
        return
    print(f"turnout: {where}", flush=True)


class PrepareFailed(Exception):
    pass


def prepare(
    settings: Settings, *, migrate: Callable[[str], None] | None = None
) -> tuple[Settings, MappingRegistry] | str:
    """Load the mappings, bring the database to head and import the config: the resolved settings and
    the mappings, or the error to print. `migrate` runs Alembic when the database is behind (default:
    in this process)."""
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from engine.bootstrap import prepare as prepare_database
    from engine.config.plan import ConfigError
    from engine.mapping.compiler import MappingLoadError
    from engine.mapping.loader import load_registry

    try:
        registry = load_registry(settings.mapping_folders)
        return prepare_database(settings, registry, migrate=migrate), registry
    except (ConfigError, MappingLoadError, PrepareFailed) as exc:
        return str(exc)


def migrate_in_child(database_url: str, log_format: LogFormat = "text") -> None:
    """Alembic's migrations in a process that exits, so that a serving process never imports Alembic
    and Mako (~10 MB of memory). Only a database behind the newest revision needs them: an empty one is
    created and one at head is left alone in this process (engine.store.migrate).

    A plain subprocess rather than multiprocessing, which would leave a resource-tracker interpreter
    running beside the server. The URL (it may hold a password) travels over stdin, never the command
    line.
    """
    import json
    import subprocess

    level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    child = subprocess.run(
        [sys.executable, "-c", "from engine.serve import migrate_child; migrate_child()"],
        input=json.dumps({"database_url": database_url, "log_level": level, "log_format": log_format}),
        text=True,
        check=False,
    )
    if child.returncode != 0:
        raise PrepareFailed(f"migrating the database failed (exit {child.returncode})")


def migrate_child() -> None:
    """The child side of `migrate_in_child`: the database URL and the log settings in on stdin."""
    import json

    given = json.loads(sys.stdin.read())
    configure_logging(given["log_level"], given["log_format"])
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from engine.store.migrate import run_migrations

    run_migrations(given["database_url"])


def settings_environment(settings: Settings) -> dict[str, str]:
    """The settings for workers, which rebuild them from the environment. The config file's path is
    passed for watching it (engine.reload): workers never import it at start."""
    import os

    values = settings.model_dump(exclude={"config", "mappings_path"}, exclude_none=True)
    env = {f"TURNOUT_{k.upper()}": str(v) for k, v in values.items()}
    env["TURNOUT_MAPPINGS_PATH"] = os.pathsep.join(str(folder) for folder in settings.mappings_path)
    if settings.config is not None:
        env["TURNOUT_CONFIG"] = str(settings.config.resolve())
    env["TURNOUT_MIGRATE_ON_START"] = "false"
    return env
