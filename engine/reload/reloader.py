"""Hot reload: a changed mapping file or config file is checked and, when valid, served from the next
request on; an invalid one is refused, reported, and the last good version keeps serving.

Each process reloads by itself (every `--workers` process and every replica watches its own files), so
no process depends on another to see a change. What a config file changes lands in SQL, which replicas
share: after importing it, a process tells the others through the change bus ("routes"), and they
rebuild their routing tables from SQL as for any other change.

One check, top to bottom:
  look at the files -> nothing changed: done
  mapping files changed -> compile them all aside (in a thread: requests go on) -> refused if invalid
  mapping or source file changed -> parse the source file with the (new) providers -> import into SQL
  rebuild the routing table with the (new) providers -> swap mappings and table in at once
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from engine.bootstrap import import_plan, source_plan
from engine.config.plan import ConfigError, ImportPlan
from engine.mapping.compiler import MappingLoadError
from engine.mapping.folders import relative_name
from engine.reload.snapshot import MappingSet, load_mapping_set, route_shape
from engine.reload.status import ReloadRecord, ReloadStatus
from engine.reload.watch import FileWatch, Look, Stamp

if TYPE_CHECKING:
    from engine.gateway import Gateway

__all__ = ["Reloader"]

log = logging.getLogger("turnout.reload")


class _Refused(Exception):
    """A change that cannot be served: the record it counts against, and why (for the log)."""

    def __init__(self, record: ReloadRecord, reason: str) -> None:
        super().__init__(reason)
        self.record = record


class Reloader:
    """Looks at the files when `check` is called (every `reload_interval` seconds by the gateway's
    watcher; directly by tests) and reloads what changed."""

    def __init__(self, watch: FileWatch, status: ReloadStatus) -> None:
        self.status = status
        self._watch = watch
        self._seen = watch.look()  # the files as the version in force was loaded from them
        self._lock = asyncio.Lock()  # one check at a time
        # mappings compiled for files not yet served (the import or the table failed): not compiled
        # again while those files stay as they are
        self._compiled: tuple[frozenset[Stamp], MappingSet] | None = None

    async def check(self, gateway: Gateway) -> bool:
        """Reload what changed since the last look; True when a new version now serves."""
        async with self._lock:
            look = self._watch.look()
            mappings_changed = look.mappings != self._seen.mappings
            source_changed = look.source != self._seen.source
            if not (mappings_changed or source_changed):
                return False
            try:
                await self._reload(gateway, look, mappings_changed, source_changed)
            except _Refused as refused:
                self._seen = look  # an invalid file is not tried again until it changes
                self._report(gateway, refused.record, refused)
                return False
            except Exception as error:  # e.g. the database is unreachable: tried again at the next look
                log.warning("process %d could not finish a reload, trying again", os.getpid(), exc_info=True)
                # its text may hold what readiness must not show (a database address): the log has it
                self.status.config.failed(f"reloading failed ({type(error).__name__}); see the gateway's log")
                return False
            self._seen = look
            return True

    async def _reload(
        self, gateway: Gateway, look: Look, mappings_changed: bool, source_changed: bool
    ) -> None:
        settings = gateway.settings
        current = gateway.mappings
        mappings = current
        if mappings_changed:
            if self._compiled is None or self._compiled[0] != look.mappings:
                self._compiled = (look.mappings, await self._compile(settings.mapping_folders, current))
            mappings = self._compiled[1]
        plan, source, replaces = self._plan(gateway, mappings, source_changed)
        try:
            async with _one_import_at_a_time(_source_folder(gateway)):
                report = await import_plan(settings, mappings.registry, plan, source, replaces=replaces)
        except ConfigError as error:  # a rule only the import checks (an alias mixing embedding models)
            raise self._refusal(error, source_changed) from None
        await gateway.reload(mappings if mappings is not current else None)
        self._compiled = None
        now = self.status.clock()
        if mappings is not current:
            self.status.mappings.succeeded(now)
            log.info(
                "process %d serves mappings version %d (%d providers, %d dialects) from %s",
                os.getpid(),
                mappings.version,
                len(mappings.registry.providers),
                len(mappings.dialects),
                ", ".join(str(folder) for folder in settings.mapping_folders),
            )
        if source_changed:
            self.status.config.succeeded(now)
            log.info("process %d imported %s again: %s", os.getpid(), plan.origin, report)
        await gateway.bus.publish("routes", {})  # the other replicas read SQL again

    async def _compile(self, folders: tuple[Path, ...], current: MappingSet) -> MappingSet:
        try:
            mappings = await asyncio.to_thread(load_mapping_set, folders, current.version + 1)
        except MappingLoadError as error:
            raise _Refused(self.status.mappings, str(error)) from None
        except Exception as error:  # the loader failed otherwise on a file it could not read
            log.debug("loading the changed mappings failed", exc_info=True)
            raise _Refused(self.status.mappings, f"{type(error).__name__}: {error}") from None
        if route_shape(mappings.dialects) != route_shape(current.dialects):
            raise _Refused(
                self.status.mappings,
                "the dialects' routes changed (a dialect added or removed, or its paths): the server "
                "registers routes at start, so restart to serve them",
            )
        return mappings

    def _plan(
        self, gateway: Gateway, mappings: MappingSet, source_changed: bool
    ) -> tuple[ImportPlan, str, str]:
        try:
            return source_plan(gateway.settings, mappings.registry)
        except ConfigError as error:
            raise self._refusal(error, source_changed) from None

    def _refusal(self, error: ConfigError, source_changed: bool) -> _Refused:
        if source_changed:
            return _Refused(self.status.config, str(error))
        # only the mappings changed, and the file imported at start does not fit them
        return _Refused(self.status.mappings, f"the changed mappings do not fit the config: {error}")

    def _report(self, gateway: Gateway, record: ReloadRecord, error: Exception) -> None:
        what = "mappings" if record is self.status.mappings else "config"
        log.error(
            "process %d refused a change of the %s, version %d keeps serving: %s",
            os.getpid(),
            what,
            gateway.mappings.version if what == "mappings" else record.version,
            error,
        )
        # readiness is unauthenticated: no credential, and folders by name rather than server paths
        shown = gateway.redactor.text(str(error))
        folders = [*gateway.settings.mapping_folders, _source_folder(gateway)]
        record.failed(relative_name(shown, folders))


def _source_folder(gateway: Gateway) -> Path:
    """The folder of the file imported at start (the --config file's, else the base mappings folder)."""
    settings = gateway.settings
    return settings.config.resolve().parent if settings.config is not None else settings.mappings_dir


@asynccontextmanager
async def _one_import_at_a_time(folder: Path) -> AsyncIterator[None]:
    """Workers of one machine import a changed file one after another, not at once (their writes would
    collide); the second then finds nothing left to change. The lock is on the file's folder, which an
    editor's write-and-rename leaves in place, and creates nothing. Where flock is missing, none."""
    try:
        import fcntl
    except ImportError:  # not on Unix: a collision only fails that worker's check, tried again later
        yield
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        await asyncio.to_thread(fcntl.flock, descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock
