"""The response cache (README: Response cache): exact-match answers kept per tenant, locally or in Redis.

controls.py        a request's Cache-Control header and `cache` body field
key.py             an entry's key: the tenant's scope and the canonical request, hashed
entry.py           an answer as kept, and a stream recorded and replayed piece by piece
stores.py          LocalStore (bounded LRU with expiry) and RedisStore (every replica's)
response_cache.py  the pipeline's hook: hit, or dispatch and keep
metrics.py         hits, misses, stores and failures for /metrics
config.py          LiteLLM's `litellm_settings.cache` / `cache_params` as Turnout's settings
"""

from __future__ import annotations

from collections.abc import Callable

from engine.cache.options import CacheOptions, operations_of
from engine.cache.response_cache import CACHE_HEADER, ResponseCache
from engine.cache.stores import CacheStore, LocalStore, RedisStore
from engine.settings import Settings

__all__ = ["CACHE_HEADER", "ResponseCache", "cache_problem", "open_cache"]


def cache_problem(settings: Settings) -> str | None:
    """Why the cache settings cannot work (checked before serving), or None."""
    if not settings.cache:
        return None
    try:
        operations_of(settings.cache_call_types)
    except ValueError as exc:
        return f"TURNOUT_CACHE_CALL_TYPES: {exc}"
    if settings.cache_type == "redis" and not (settings.cache_redis_url or settings.redis_url):
        return "the redis cache type needs TURNOUT_CACHE_REDIS_URL, TURNOUT_REDIS_URL or cache_params.host"
    return None


def open_cache(settings: Settings, *, clock: Callable[[], float]) -> ResponseCache | None:
    """The gateway's response cache, or None when caching is off. ValueError for settings that cannot
    work (`cache_problem`: bootstrap refuses them before the gateway opens)."""
    problem = cache_problem(settings)
    if problem is not None:
        raise ValueError(problem)
    if not settings.cache:
        return None
    options = CacheOptions(
        ttl=settings.cache_ttl,
        max_ttl=max(settings.cache_max_ttl, settings.cache_ttl),
        namespace=settings.cache_namespace,
        operations=operations_of(settings.cache_call_types),
        shared=settings.cache_scope == "shared",
        max_entry_bytes=settings.cache_max_entry_bytes,
    )
    store: CacheStore
    if settings.cache_type == "redis":
        url = settings.cache_redis_url or settings.redis_url
        assert url is not None  # cache_problem said so
        store = RedisStore(url, settings.redis_prefix)
    else:
        store = LocalStore(
            max_entries=settings.cache_max_entries, max_bytes=settings.cache_max_bytes, clock=clock
        )
    return ResponseCache(store, options, clock=clock)
