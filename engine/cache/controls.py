"""What one request asks of the cache: the `Cache-Control` header and LiteLLM's `cache` body field.

    no-cache    do not answer from the cache (the fresh answer is still stored)
    no-store    do not store this answer (a cached one may still answer)
    ttl         seconds to keep this answer (body only; 0: not stored), at most the gateway's max ttl
    s-maxage    accept only an entry at most this many seconds old (`max-age` in the header too)
    namespace   a space of the caller's own entries (body only): never another tenant's
    use-cache   false: neither read nor store (body only)

The header and the body add up: a `no-cache` in either one holds. A malformed body field is a 400
naming it; a header directive this does not know is ignored, as HTTP caches do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from engine.errors import InvalidRequest

__all__ = ["CacheControls", "read_controls"]

_MAX_NAMESPACE = 200
_KNOWN = frozenset({"no-cache", "no-store", "ttl", "s-maxage", "s-max-age", "namespace", "use-cache"})


@dataclass(frozen=True, slots=True)
class CacheControls:
    read: bool = True
    write: bool = True
    ttl: float | None = None  # None: the gateway's
    max_age: float | None = None  # None: any age
    namespace: str = ""


def read_controls(header: str | None, field: Any, max_ttl: float) -> CacheControls:
    """The controls of one request: its `Cache-Control` header and its body's `cache` field."""
    read, write, max_age = True, True, None
    if header:
        for directive in header.lower().split(","):
            name, _, value = directive.strip().partition("=")
            if name == "no-cache":
                read = False
            elif name == "no-store":
                write = False
            elif name in ("max-age", "s-maxage") and value.strip().isascii() and value.strip().isdigit():
                max_age = _smaller(max_age, float(value.strip()))
    if field is None:
        return CacheControls(read=read, write=write, max_age=max_age)
    if not isinstance(field, dict):
        raise InvalidRequest('cache must be an object such as {"no-cache": true}', param="cache")
    unknown = sorted(str(name) for name in field if name not in _KNOWN)
    if unknown:
        raise InvalidRequest(
            f"cache.{unknown[0][:40]} is not a cache control; use no-cache, no-store, ttl, s-maxage, "
            "namespace or use-cache",
            param="cache",
        )
    use = _flag(field, "use-cache", default=True)
    no_cache, no_store = _flag(field, "no-cache"), _flag(field, "no-store")  # both checked, always
    read = read and use and not no_cache
    write = write and use and not no_store
    ttl = _seconds(field, "ttl")
    if ttl is not None:
        ttl = min(ttl, max_ttl)
        write = write and ttl > 0
    for name in ("s-maxage", "s-max-age"):
        max_age = _smaller(max_age, _seconds(field, name))
    return CacheControls(read=read, write=write, ttl=ttl, max_age=max_age, namespace=_namespace(field))


def _smaller(current: float | None, new: float | None) -> float | None:
    if new is None:
        return current
    return new if current is None else min(current, new)


def _flag(field: dict[str, Any], name: str, *, default: bool = False) -> bool:
    value = field.get(name, default)
    if not isinstance(value, bool):
        raise InvalidRequest(f"cache.{name} must be true or false", param=f"cache.{name}")
    return value


def _seconds(field: dict[str, Any], name: str) -> float | None:
    value = field.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise InvalidRequest(f"cache.{name} must be a number of seconds, 0 or more", param=f"cache.{name}")
    return float(value)


def _namespace(field: dict[str, Any]) -> str:
    value = field.get("namespace")
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > _MAX_NAMESPACE or "\x00" in value:
        raise InvalidRequest(
            f"cache.namespace must be a string of at most {_MAX_NAMESPACE} characters",
            param="cache.namespace",
        )
    return value
