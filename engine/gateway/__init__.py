"""The composition root: every part of one running gateway, built before it serves.

`open_gateway` builds the parts in order (database, the stored routing table and keys, the upstream
client, usage recorder, limits, change bus, router, pipeline, discovery), hands out a complete
`Gateway`, runs its background watchers (model discovery, reloads from SQL, looks at the mapping and
config files (engine.reload), purging stored exchanges) while the app serves, and closes the parts in
reverse when the app stops. No part is ever missing: handlers and the console read them as plain typed
attributes (`engine.api.state.gateway_of`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from engine.cache import open_cache
from engine.gateway.parts import (
    CooldownAnnouncer,
    counters_for,
    gen_ai_names,
    image_fetcher,
    load_table,
    pipeline_options,
    redactor_for,
    upstream_client,
    usage_recorder,
)
from engine.gateway.watchers import watching
from engine.keys import KeyRing, KeyService
from engine.limits.admission import Limiter
from engine.logs import redacting_with
from engine.mapping.loader import MappingRegistry
from engine.pipeline.attempt import Attempter
from engine.pipeline.dispatch import Dispatcher
from engine.pipeline.grace import StreamGrace
from engine.pipeline.run import Pipeline
from engine.redact import Redactor
from engine.reload import FileWatch, MappingSet, Reloader, ReloadStatus, load_mapping_set
from engine.replicas.bus import ChangeBus, create_bus
from engine.routing.discovery import Discovery
from engine.routing.router import Router
from engine.routing.table import RoutingTable
from engine.settings import Settings
from engine.stopping import on_stop_signal
from engine.store.conversation import ConversationStore
from engine.store.db import create_engine, session_factory
from engine.tracing import open_tracer
from engine.usage.metrics import Metrics
from engine.usage.sink import GatewaySink

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

__all__ = ["Gateway", "open_gateway"]

log = logging.getLogger("turnout")


class Routes:
    """The routing table in force, the redactor that knows every credential in it, and the mappings it
    was built with, replaced as one. The parts that read them per request (pipeline, metrics, redaction)
    hold this object; a request takes the mappings once, at its start (engine.pipeline.call.Call)."""

    __slots__ = ("mappings", "redactor", "table")

    def __init__(self, table: RoutingTable, redactor: Redactor, mappings: MappingSet) -> None:
        self.table = table
        self.redactor = redactor  # every credential held: kept out of what leaves
        self.mappings = mappings

    def replace(self, table: RoutingTable, redactor: Redactor, mappings: MappingSet | None = None) -> None:
        self.redactor = redactor  # first: the new credentials are known before they are used
        if mappings is not None:  # no await between these: no request sees one without the other
            self.mappings = mappings
        self.table = table


@dataclass(eq=False)
class Gateway:
    settings: Settings
    # the wall clock (epoch seconds) of keys' expiry, rate-limit windows, budget periods and stored
    # exchanges' expiry (tests inject a clock they move, so that none depends on the wall clock)
    clock: Callable[[], float]
    database: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]  # reports, admin changes; the request path never uses it
    conversations: ConversationStore  # stored exchanges, for dialects that continue conversations by id
    key_service: KeyService  # virtual keys in SQL; `keys_changed` after a change
    routes: Routes
    keys: KeyRing  # the active virtual keys, read by every authenticated request
    metrics: Metrics
    bus: ChangeBus  # tells other replicas of changes (Redis), or no one
    router: Router
    attempts: Attempter  # one try on one deployment, without routing (the console's connection test)
    pipeline: Pipeline
    discovery: Discovery
    files: Reloader  # hot reload of the mapping folders and the config file (engine.reload)
    # one reload at a time: an interval reload that read SQL before an admin change must not swap its
    # older ring in after the admin change's own reload
    _keys_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def table(self) -> RoutingTable:
        return self.routes.table

    @property
    def redactor(self) -> Redactor:
        return self.routes.redactor

    @property
    def mappings(self) -> MappingSet:
        """The mappings in force: providers and dialects, of one version."""
        return self.routes.mappings

    @property
    def registry(self) -> MappingRegistry:
        """The provider mappings in force."""
        return self.routes.mappings.registry

    async def keys_changed(self) -> None:
        """After an admin change to the keys: this process at once, the other replicas through the bus."""
        await self.reload_keys()
        await self.bus.publish("keys", {})

    async def routes_changed(self) -> None:
        """After an admin change to providers, deployments, aliases, fallbacks or router settings: this
        process at once, the other replicas through the bus."""
        await self.reload()
        await self.bus.publish("routes", {})

    async def reload_keys(self) -> None:
        """Rebuild the in-memory key ring from SQL and swap it in whole."""
        async with self._keys_lock:
            self.keys = await self.key_service.ring()

    async def reload(self, mappings: MappingSet | None = None) -> None:
        """Rebuild the in-memory routing table from SQL; swap it in whole when it changed (an unchanged
        table is kept, so nothing derived from it is rebuilt). With `mappings` (newly loaded), the table
        is built with their providers and both are swapped in at once."""
        while True:
            current = self.routes.mappings
            table = await load_table(self.settings, self.sessions, (mappings or current).registry)
            if mappings is None and self.routes.mappings is not current:
                continue  # new mappings came in meanwhile: their providers may build another table
            if mappings is not None or table != self.routes.table:
                self.routes.replace(table, redactor_for(self.settings, table), mappings)
            return

    async def check_files(self) -> bool:
        """Look at the mapping folders and the config file now, and reload what changed (engine.reload);
        True when a new version serves. The watcher calls it every `reload_interval` seconds."""
        return await self.files.check(self)

    async def refresh_missing_models(self) -> None:
        """Ask the backends which models they serve; the router puts deployments they do not list last."""
        self.router.set_missing(await self.discovery.missing_models(self.table))

    async def purge_conversations(self) -> None:
        """Delete the stored exchanges that expired or whose key was revoked."""
        purged = await self.conversations.purge()
        if purged:
            log.info("deleted %d expired stored exchanges", purged)

    async def on_change(self, kind: str, data: dict[str, Any]) -> None:
        """A notice from another replica."""
        if kind == "keys":
            await self.reload_keys()
        elif kind == "routes":
            await self.reload()
        elif kind == "cooldown":
            self.router.cool_down(int(data["deployment_id"]), float(data["seconds"]))

    async def database_ok(self) -> bool:
        try:
            async with self.database.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:  # readiness reports, it does not raise
            log.warning("readiness: database unreachable", exc_info=True)
            return False
        return True


@asynccontextmanager
async def open_gateway(
    settings: Settings,
    registry: MappingRegistry | MappingSet | None = None,
    *,
    clock: Callable[[], float] | None = None,
    tracer_provider: TracerProvider | None = None,
) -> AsyncIterator[Gateway]:
    """A complete gateway, serving until the block ends; then every part is closed, in reverse order.
    `registry`: the mappings already loaded (default: loaded from the settings' folders). `clock`
    (epoch seconds) replaces the wall clock and the router's monotonic one, for tests;
    `tracer_provider` turns tracing on with spans going there (tests), else the settings decide."""
    wall_clock = clock or time.time
    # the files as they are before loading: a change made while loading is seen at the first look
    watch = FileWatch(settings.mapping_folders, settings.config)
    files = Reloader(watch, ReloadStatus(wall_clock))
    mappings = (
        registry
        if isinstance(registry, MappingSet)
        else load_mapping_set(settings.mapping_folders, 1, registry=registry)
    )
    registry = mappings.registry
    async with AsyncExitStack() as parts:
        database = create_engine(settings.database_url)
        parts.push_async_callback(database.dispose)
        sessions = session_factory(database)
        key_service = KeyService(sessions)
        table = await load_table(settings, sessions, registry)
        routes = Routes(table, redactor_for(settings, table), mappings)
        parts.enter_context(redacting_with(lambda: routes.redactor))  # every log line, at every level
        keys = await key_service.ring()
        client = upstream_client(settings)
        parts.push_async_callback(client.close)
        images = image_fetcher(settings)
        parts.push_async_callback(images.close)
        limiter = Limiter(counters_for(settings), clock=wall_clock)
        parts.push_async_callback(limiter.close)
        bus = create_bus(settings.redis_url, settings.redis_prefix)
        parts.push_async_callback(bus.close)
        metrics = Metrics(lambda: routes.table.aliases, max_age=settings.metrics_max_age)
        recorder = usage_recorder(settings, sessions, metrics)
        recorder.start()
        parts.push_async_callback(recorder.close)  # closed first: every record left is written
        router = Router(clock=clock or time.monotonic, on_cooldown=CooldownAnnouncer(bus))
        options = pipeline_options(settings)
        current_registry = lambda: routes.mappings.registry  # noqa: E731  # the mappings in force
        attempts = Attempter(
            current_registry, client, options, images=images, redactor=lambda: routes.redactor
        )
        grace = StreamGrace()
        cache = open_cache(settings, clock=wall_clock)  # None: caching is off
        if cache is not None:
            parts.push_async_callback(cache.close)
            metrics.watch(cache.metrics.families)
        tracer = open_tracer(settings, gen_ai_names(current_registry), tracer_provider)
        if tracer is not None:
            parts.callback(tracer.close)  # after the recorder: the last requests' spans are ended
        pipeline = Pipeline(
            lambda: routes.table,
            Dispatcher(router, lambda: routes.table, attempts, drop_params=options.drop_params),
            options,
            limiter=limiter,
            sink=GatewaySink(recorder, metrics),
            grace=grace,
            cache=cache,
            registry=current_registry,
            tracer=tracer,
        )
        gateway = Gateway(
            settings=settings,
            clock=wall_clock,
            database=database,
            sessions=sessions,
            conversations=ConversationStore(sessions, ttl=settings.stored_response_ttl, clock=wall_clock),
            key_service=key_service,
            routes=routes,
            keys=keys,
            metrics=metrics,
            bus=bus,
            router=router,
            attempts=attempts,
            pipeline=pipeline,
            discovery=Discovery(current_registry, client, redactor=lambda: routes.redactor),
            files=files,
        )
        metrics.watch(files.status.families)
        bus.subscribe(gateway.on_change)
        await bus.start()
        parts.callback(on_stop_signal(lambda: grace.begin(settings.shutdown_grace)))
        parts.enter_context(watching(gateway))
        log.info(
            "turnout ready: %d aliases, %d provider mappings",
            len(table.aliases),
            len(registry.providers),
            extra={"aliases": len(table.aliases), "provider_mappings": len(registry.providers)},
        )
        # Everything built so far (imported modules, compiled mappings) lives as long as the process.
        # Freezing it keeps the cyclic GC from rescanning ~100k objects: a full pass drops from ~30 ms
        # to microseconds, which was the source of multi-millisecond p99 spikes.
        gc.collect()
        gc.freeze()
        yield gateway
