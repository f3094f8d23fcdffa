"""The composition root: everything one running gateway owns, created and closed by the app lifespan."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from engine.config.secrets import SecretBox
from engine.keys import KeyRing, KeyService
from engine.limits.admission import Limiter
from engine.limits.counters import Counters
from engine.limits.local import LocalCounters
from engine.mapping.loader import MappingRegistry, load_registry
from engine.netguard import AddressPolicy
from engine.pipeline.images import ImageFetcher, ImageLimits
from engine.pipeline.run import Pipeline, PipelineOptions
from engine.redact import Redactor, credentials_of
from engine.replicas.bus import ChangeBus, LocalBus, create_bus
from engine.routing.discovery import Discovery, endpoint_key
from engine.routing.router import Router
from engine.routing.table import RoutingTable
from engine.settings import Settings
from engine.stopping import on_stop_signal
from engine.store.conversation import ConversationStore
from engine.store.db import create_engine, session_factory
from engine.store.load import load_routing_table
from engine.upstream import UpstreamClient
from engine.usage.metrics import Metrics
from engine.usage.recorder import UsageRecorder
from engine.usage.sink import GatewaySink
from engine.usage.writer import SqlWriter

__all__ = ["Gateway"]

log = logging.getLogger("turnout")
# seconds between deletions of expired stored exchanges (and revoked keys' ones); until then an expired
# row is only refused
_PURGE_EVERY = 3600.0


class Gateway:
    def __init__(
        self,
        settings: Settings,
        registry: MappingRegistry | None = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        # the wall clock (epoch seconds) of keys' expiry, rate-limit windows, budget periods and stored
        # exchanges' expiry, and the router's clock of cooldowns (monotonic unless a test injects one):
        # tests inject a clock they move, so that none depends on the wall clock
        self.clock = clock or time.time
        self._router_clock = clock or time.monotonic
        self.table = RoutingTable()
        self.redactor = self._redactor_for(self.table)  # every credential held: kept out of what leaves
        self.keys = KeyRing()  # the active virtual keys, read by every authenticated request
        # labels only for the aliases configured now
        self.metrics = Metrics(lambda: self.table.aliases, max_age=settings.metrics_max_age)
        self.bus: ChangeBus = LocalBus()  # tells other replicas of changes (Redis), or no one
        self._recorder: UsageRecorder | None = None
        self._limiter: Limiter | None = None
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._client: UpstreamClient | None = None
        self._images: ImageFetcher | None = None
        self._pipeline: Pipeline | None = None
        self._discovery: Discovery | None = None
        self._conversations: ConversationStore | None = None
        self._key_service: KeyService | None = None
        # one reload at a time: an interval reload that read SQL before an admin change must not swap
        # its older ring in after the admin change's own reload
        self._keys_lock = asyncio.Lock()
        self._notices: set[asyncio.Future[None]] = set()  # cooldown notices being published

    @property
    def pipeline(self) -> Pipeline:
        assert self._pipeline is not None, "the gateway has not started"
        return self._pipeline

    @property
    def discovery(self) -> Discovery:
        assert self._discovery is not None, "the gateway has not started"
        return self._discovery

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """The SQL session factory (reports, admin changes); the request path never uses it."""
        assert self._sessions is not None, "the gateway has not started"
        return self._sessions

    @property
    def conversations(self) -> ConversationStore:
        """Stored exchanges, for dialects that continue conversations by id."""
        assert self._conversations is not None, "the gateway has not started"
        return self._conversations

    @property
    def key_service(self) -> KeyService:
        """Virtual keys in SQL; call `reload_keys` after a change so this process sees it at once."""
        assert self._key_service is not None, "the gateway has not started"
        return self._key_service

    @asynccontextmanager
    async def lifespan(self, _app: Any = None) -> AsyncIterator[None]:
        settings = self.settings
        if self.registry is None:
            self.registry = load_registry(settings.mappings_dir)
        self._engine = create_engine(settings.database_url)
        self._sessions = session_factory(self._engine)
        self._conversations = ConversationStore(
            self._sessions, ttl=settings.stored_response_ttl, clock=self.clock
        )
        self._key_service = KeyService(self._sessions)
        await self.reload()
        await self.reload_keys()
        self._client = UpstreamClient(
            pool_size=settings.pool_size,
            pool_size_per_host=settings.pool_size_per_host,
            connect_timeout=settings.connect_timeout,
        )
        options = PipelineOptions(
            drop_params=settings.drop_params,
            answer_alias=settings.response_model == "alias",
            request_timeout=settings.request_timeout,
            topology_headers_for_keys=settings.topology_headers_for_keys,
            max_answer_bytes=settings.max_upstream_answer_bytes,
            max_stream_event_bytes=settings.max_stream_event_bytes,
        )
        self._images = ImageFetcher(
            ImageLimits(
                timeout=settings.image_fetch_timeout,
                max_bytes=settings.image_fetch_max_bytes,
                max_images=settings.image_fetch_max_images,
                max_total_bytes=settings.image_fetch_max_total_bytes,
            ),
            AddressPolicy.parse(settings.image_fetch_allow),
            connect_timeout=settings.connect_timeout,
            pool_size=settings.pool_size_per_host,
        )
        self._recorder = UsageRecorder(
            SqlWriter(self._sessions),
            flush_interval=settings.usage_flush_interval,
            batch_size=settings.usage_batch_size,
            buffer_limit=settings.usage_buffer_limit,
            on_dropped=self.metrics.dropped,
        )
        self._recorder.start()
        self._limiter = Limiter(self._counters(), clock=self.clock)
        self.bus = create_bus(settings.redis_url, settings.redis_prefix)
        self.bus.subscribe(self._on_change)
        await self.bus.start()
        self._pipeline = Pipeline(
            self.registry,
            lambda: self.table,
            self._client,
            options,
            Router(clock=self._router_clock),
            limiter=self._limiter,
            sink=GatewaySink(self._recorder, self.metrics),
            images=self._images,
            redactor=lambda: self.redactor,
        )
        self._pipeline.router.on_cooldown = self._announce_cooldown
        grace = self._pipeline.grace
        stop_listening = on_stop_signal(lambda: grace.begin(settings.shutdown_grace))
        self._discovery = Discovery(self.registry, self._client, redactor=lambda: self.redactor)
        watchers = [
            asyncio.create_task(self._watch_models(), name="turnout-discovery"),
            asyncio.create_task(
                self._every(settings.key_refresh_interval, self.reload_keys, "virtual keys"),
                name="turnout-keys",
            ),
            asyncio.create_task(
                self._every(settings.routes_refresh_interval, self.reload, "routing table"),
                name="turnout-routes",
            ),
            asyncio.create_task(
                self._every(_PURGE_EVERY, self.purge_conversations, "expired stored exchanges"),
                name="turnout-purge",
            ),
        ]
        log.info(
            "turnout ready: %d aliases, %d provider mappings",
            len(self.table.aliases),
            len(self.registry.providers),
        )
        # Everything built so far (imported modules, compiled mappings) lives as long as the process.
        # Freezing it keeps the cyclic GC from rescanning ~100k objects: a full pass drops from ~30 ms
        # to microseconds, which was the source of multi-millisecond p99 spikes.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            # the server has finished (or given up on) its requests by now: write every record left
            stop_listening()
            for watcher in watchers:
                watcher.cancel()
            await self._recorder.close()
            await self.bus.close()
            await self._limiter.close()
            await self._client.close()
            await self._images.close()
            await self._engine.dispose()

    def _counters(self) -> Counters:
        if self.settings.redis_url is None:
            return LocalCounters()
        from engine.limits.redis_counters import RedisCounters  # imports redis: only in this mode

        return RedisCounters(self.settings.redis_url, self.settings.redis_prefix)

    def _announce_cooldown(self, deployment_id: int, seconds: float) -> None:
        """Tell the other replicas; fire and forget (a lost notice only means they find out themselves)."""
        task = asyncio.ensure_future(
            self.bus.publish("cooldown", {"deployment_id": deployment_id, "seconds": seconds})
        )
        self._notices.add(task)
        task.add_done_callback(self._notices.discard)

    async def _on_change(self, kind: str, data: dict[str, Any]) -> None:
        """A notice from another replica."""
        if kind == "keys":
            await self.reload_keys()
        elif kind == "routes":
            await self.reload()
        elif kind == "cooldown":
            self.pipeline.router.cool_down(int(data["deployment_id"]), float(data["seconds"]))

    async def keys_changed(self) -> None:
        """After an admin change to the keys: this process at once, the other replicas through the bus."""
        await self.reload_keys()
        await self.bus.publish("keys", {})

    async def routes_changed(self) -> None:
        """After an admin change to providers, deployments, aliases, fallbacks or router settings: this
        process at once, the other replicas through the bus."""
        await self.reload()
        await self.bus.publish("routes", {})

    async def _watch_models(self) -> None:
        """Ask the backends which models they serve at start and every `discovery_interval` seconds; the
        router then prefers deployments whose model is listed (others are skipped unless none is left)."""
        interval = self.settings.discovery_interval
        while interval > 0:
            try:
                await self.refresh_missing_models()
            except Exception:  # a failing backend must never stop the watcher
                log.warning("model discovery failed", exc_info=True)
            await asyncio.sleep(interval)

    @staticmethod
    async def _every(interval: float, reload: Callable[[], Awaitable[None]], what: str) -> None:
        """Reload `what` from SQL every `interval` seconds (0: never), where other processes change it:
        keys through other replicas and `turnout keys`; aliases and deployments through `turnout serve
        --config` on another replica, `turnout import` or `turnout probe --write`."""
        while interval > 0:
            await asyncio.sleep(interval)
            try:
                await reload()
            except Exception:  # an unreachable database keeps what was loaded; the watcher goes on
                log.warning("reloading the %s failed", what, exc_info=True)

    async def purge_conversations(self) -> None:
        """Delete the stored exchanges that expired or whose key was revoked."""
        purged = await self.conversations.purge()
        if purged:
            log.info("deleted %d expired stored exchanges", purged)

    async def reload_keys(self) -> None:
        """Rebuild the in-memory key ring from SQL and swap it in whole."""
        async with self._keys_lock:
            self.keys = await self.key_service.ring()

    async def refresh_missing_models(self) -> frozenset[int]:
        table = self.table
        reports = await self.discovery.reports(table)
        missing = set()
        for alias in table.aliases.values():
            for deployment in alias.deployments:
                report = reports.get(endpoint_key(deployment))
                if (
                    report is not None
                    and report.models is not None
                    and deployment.upstream_model not in report.models
                ):
                    missing.add(deployment.id)
        router = self.pipeline.router
        for deployment_id in missing - router.missing:
            log.warning(
                "deployment %s: its backend does not list its model; other deployments go first",
                deployment_id,
            )
        router.missing = frozenset(missing)
        return router.missing

    async def reload(self) -> None:
        """Rebuild the in-memory routing table from SQL; swap it in whole when it changed (an unchanged
        table is kept, so nothing derived from it is rebuilt)."""
        assert self._sessions is not None and self.registry is not None
        secrets = SecretBox.from_settings(self.settings)
        async with self._sessions() as session:
            table = await load_routing_table(session, self.registry.catalog(), secrets)
        if table != self.table:
            self.redactor = self._redactor_for(table)  # first: the new keys are known before they are used
            self.table = table

    def _redactor_for(self, table: RoutingTable) -> Redactor:
        settings = self.settings
        return Redactor(credentials_of(table, settings.master_key, settings.salt_key))

    async def database_ok(self) -> bool:
        if self._engine is None:
            return False
        try:
            async with self._engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:  # readiness reports, it does not raise
            log.warning("readiness: database unreachable", exc_info=True)
            return False
        return True
