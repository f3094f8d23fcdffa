"""The gateway's background work while it serves: model discovery, reloads of what other processes
change in SQL, looks at the mapping and config files, and the purge of expired stored exchanges."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.gateway import Gateway

__all__ = ["every", "watching"]

log = logging.getLogger("turnout")
# seconds between deletions of expired stored exchanges (and revoked keys' ones); until then an expired
# row is only refused
_PURGE_EVERY = 3600.0


@contextmanager
def watching(gateway: Gateway) -> Iterator[None]:
    """The gateway's background work while it serves: model discovery, reloads of what other processes
    change in SQL, and the purge of expired stored exchanges."""
    settings = gateway.settings
    # reloads pick up what other processes change in SQL: keys through other replicas and `turnout
    # keys`; aliases and deployments through `turnout serve --config` on another replica, `turnout
    # import` or `turnout probe --write`. Discovery asks the backends which models they serve, at once.
    work: list[tuple[str, float, Callable[[], Awaitable[object]], str, bool]] = [
        (
            "discovery",
            settings.discovery_interval,
            gateway.refresh_missing_models,
            "model discovery failed",
            True,
        ),
        (
            "keys",
            settings.key_refresh_interval,
            gateway.reload_keys,
            "reloading the virtual keys failed",
            False,
        ),
        (
            "routes",
            settings.routes_refresh_interval,
            gateway.reload,
            "reloading the routing table failed",
            False,
        ),
        (
            "files",
            settings.reload_interval,
            gateway.check_files,
            "checking the mapping and config files failed",
            False,
        ),
        (
            "purge",
            _PURGE_EVERY,
            gateway.purge_conversations,
            "purging expired stored exchanges failed",
            False,
        ),
    ]
    watchers = [
        asyncio.create_task(every(interval, job, failure, at_once=at_once), name=f"turnout-{name}")
        for name, interval, job, failure, at_once in work
    ]
    try:
        yield
    finally:
        for watcher in watchers:
            watcher.cancel()


async def every(
    interval: float, work: Callable[[], Awaitable[object]], failure: str, *, at_once: bool = False
) -> None:
    """Do `work` every `interval` seconds (0: never), the first time at once with `at_once`. A failure (an
    unreachable database or backend) keeps what was there, and the watcher goes on."""
    while interval > 0:
        if not at_once:
            await asyncio.sleep(interval)
        at_once = False
        try:
            await work()
        except Exception:
            log.warning(failure, exc_info=True)
