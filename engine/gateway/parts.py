"""How each part of the gateway is built from the settings (engine.gateway composes them)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from engine.config.secrets import SecretBox
from engine.limits.counters import Counters
from engine.limits.local import LocalCounters
from engine.mapping.loader import MappingRegistry
from engine.netguard import AddressPolicy
from engine.pipeline.images import ImageFetcher, ImageLimits
from engine.pipeline.options import PipelineOptions
from engine.redact import Redactor, credentials_of
from engine.replicas.bus import ChangeBus
from engine.routing.table import RoutingTable
from engine.settings import Settings
from engine.store.load import load_routing_table
from engine.upstream import UpstreamClient
from engine.usage.metrics import Metrics
from engine.usage.recorder import UsageRecorder
from engine.usage.writer import SqlWriter

__all__ = [
    "CooldownAnnouncer",
    "counters_for",
    "gen_ai_names",
    "image_fetcher",
    "load_table",
    "pipeline_options",
    "redactor_for",
    "upstream_client",
    "usage_recorder",
]


def gen_ai_names(registry: Callable[[], MappingRegistry]) -> Callable[[str], str]:
    """A mapping's name -> its gen_ai.provider.name in traces: its `gen_ai_provider`, else its name (read
    from the mappings in force, which a reload may replace)."""

    def name(provider: str) -> str:
        mapping = registry().get(provider)
        return (mapping.gen_ai_provider if mapping is not None else None) or provider

    return name


class CooldownAnnouncer:
    """Tells the other replicas of a cooldown this one started; fire and forget (a lost notice only
    means they find out themselves)."""

    __slots__ = ("_bus", "_notices")

    def __init__(self, bus: ChangeBus) -> None:
        self._bus = bus
        self._notices: set[asyncio.Future[None]] = set()  # notices being published

    def __call__(self, deployment_id: int, seconds: float) -> None:
        task = asyncio.ensure_future(
            self._bus.publish("cooldown", {"deployment_id": deployment_id, "seconds": seconds})
        )
        self._notices.add(task)
        task.add_done_callback(self._notices.discard)


async def load_table(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], registry: MappingRegistry
) -> RoutingTable:
    secrets = SecretBox.from_settings(settings)
    async with sessions() as session:
        return await load_routing_table(session, registry.catalog(), secrets)


def redactor_for(settings: Settings, table: RoutingTable) -> Redactor:
    return Redactor(credentials_of(table, settings.master_key, settings.salt_key))


def counters_for(settings: Settings) -> Counters:
    if settings.redis_url is None:
        return LocalCounters()
    from engine.limits.redis_counters import RedisCounters  # imports redis: only in this mode

    return RedisCounters(settings.redis_url, settings.redis_prefix)


def pipeline_options(settings: Settings) -> PipelineOptions:
    return PipelineOptions(
        drop_params=settings.drop_params,
        answer_alias=settings.response_model == "alias",
        request_timeout=settings.request_timeout,
        topology_headers_for_keys=settings.topology_headers_for_keys,
        max_answer_bytes=settings.max_upstream_answer_bytes,
        max_stream_event_bytes=settings.max_stream_event_bytes,
    )


def upstream_client(settings: Settings) -> UpstreamClient:
    return UpstreamClient(
        pool_size=settings.pool_size,
        pool_size_per_host=settings.pool_size_per_host,
        connect_timeout=settings.connect_timeout,
    )


def usage_recorder(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], metrics: Metrics
) -> UsageRecorder:
    return UsageRecorder(
        SqlWriter(sessions),
        flush_interval=settings.usage_flush_interval,
        batch_size=settings.usage_batch_size,
        buffer_limit=settings.usage_buffer_limit,
        on_dropped=metrics.dropped,
    )


def image_fetcher(settings: Settings) -> ImageFetcher:
    return ImageFetcher(
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
