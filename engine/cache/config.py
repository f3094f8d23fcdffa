"""LiteLLM's cache settings in a config file, as Turnout's settings (bootstrap applies them unless the
environment set them):

    litellm_settings:
      cache: true                         -> cache
      cache_params:
        type: local | redis               -> cache_type (LiteLLM's other types are refused)
        ttl / default_in_memory_ttl / default_in_redis_ttl -> cache_ttl (ttl first, then the type's)
        namespace                         -> cache_namespace
        supported_call_types              -> cache_call_types (types Turnout does not cache: warned)
        host, port, username, password, url / redis_url -> cache_redis_url (else TURNOUT_REDIS_URL)
        turnout_scope: key | shared       -> cache_scope (Turnout's own)

Other cache_params keys (LiteLLM's pool sizes, timeouts, cloud buckets) are warned about, not used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from engine.cache.options import LITELLM_CALL_TYPES, operations_of

__all__ = ["UNCACHED_CALL_TYPES", "parse_cache_settings", "redis_url_of"]

# LiteLLM call types Turnout serves without caching them (audio and rerank answers)
UNCACHED_CALL_TYPES = frozenset(
    {"transcription", "atranscription", "speech", "aspeech", "rerank", "arerank", "moderation", "amoderation"}
)
_REDIS_KEYS = ("host", "port", "username", "password", "url", "redis_url")
_TTL_KEYS = {"local": "default_in_memory_ttl", "redis": "default_in_redis_ttl"}
_USED = {
    "type", "ttl", "namespace", "supported_call_types", "turnout_scope", *_REDIS_KEYS, *_TTL_KEYS.values(),
}  # fmt: skip


def parse_cache_settings(
    cache: Any, params: Any, fail: Callable[[str], Exception], warn: Callable[[str], None]
) -> dict[str, Any]:
    """The settings `litellm_settings.cache` and `.cache_params` ask for (`cache_redis`: the Redis
    parts, resolved by bootstrap); `fail` makes the error for a value that cannot be used."""
    found: dict[str, Any] = {}
    if cache is not None:
        if not isinstance(cache, bool):
            raise fail("cache must be true or false")
        found["cache"] = cache
    if params is None:
        return found
    if not isinstance(params, dict):
        raise fail("cache_params must be a mapping")
    for key in sorted(str(key) for key in params.keys() - _USED):
        warn(f"litellm_settings.cache_params.{key}")
    kind = params.get("type", "local")
    if kind not in ("local", "redis"):
        raise fail(f"cache_params.type {str(kind)[:40]!r} is not supported by Turnout: use local or redis")
    found["cache_type"] = kind
    found.update(_values(params, kind, fail))
    if params.get("supported_call_types") is not None:
        found["cache_call_types"] = _call_types(params["supported_call_types"], fail, warn)
    redis = {key: params[key] for key in _REDIS_KEYS if params.get(key) is not None}
    if redis:
        found["cache_redis"] = redis
    return found


def _values(params: dict[str, Any], kind: str, fail: Callable[[str], Exception]) -> dict[str, Any]:
    """ttl, namespace and turnout_scope, checked."""
    found: dict[str, Any] = {}
    ttl = params.get("ttl", params.get(_TTL_KEYS[kind]))
    if ttl is not None:
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl > 0:
            raise fail("cache_params.ttl must be a number of seconds above 0")
        found["cache_ttl"] = float(ttl)
    if params.get("namespace") is not None:
        if not isinstance(params["namespace"], str):
            raise fail("cache_params.namespace must be a string")
        found["cache_namespace"] = params["namespace"]
    scope = params.get("turnout_scope")
    if scope is not None:
        if scope not in ("key", "shared"):
            raise fail("cache_params.turnout_scope must be key or shared")
        found["cache_scope"] = scope
    return found


def _call_types(value: Any, fail: Callable[[str], Exception], warn: Callable[[str], None]) -> str:
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise fail("cache_params.supported_call_types must be a list of call types")
    kept = []
    for name in value:
        if name in UNCACHED_CALL_TYPES:
            warn(f"litellm_settings.cache_params.supported_call_types: {name} (Turnout does not cache it)")
        elif name in LITELLM_CALL_TYPES or name in LITELLM_CALL_TYPES.values():
            kept.append(name)
        else:
            raise fail(f"cache_params.supported_call_types: unknown call type {name[:40]!r}")
    operations = sorted(operations_of(",".join(kept)))
    return ",".join(operations)


def redis_url_of(parts: dict[str, Any], resolve: Callable[[Any], Any]) -> str | None:
    """A Redis URL from cache_params' url, or host / port / username / password (each may be an
    `os.environ/NAME` reference, resolved by `resolve`)."""
    url = resolve(parts.get("url") or parts.get("redis_url"))
    if url:
        return str(url)
    host = resolve(parts.get("host"))
    if not host:
        return None
    port = resolve(parts.get("port")) or 6379
    username = resolve(parts.get("username"))
    password = resolve(parts.get("password"))
    login = ""
    if password:
        login = f"{quote(str(username), safe='') if username else ''}:{quote(str(password), safe='')}@"
    return f"redis://{login}{host}:{port}"
