"""The response cache's settings as the cache reads them, and the call types it can cache."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CACHEABLE", "LITELLM_CALL_TYPES", "CacheOptions", "operations_of"]

# operations whose answers are JSON or event streams the cache can keep and tell again exactly
CACHEABLE = ("chat", "completions", "embeddings", "images")
# LiteLLM's names of call types (`cache_params.supported_call_types`) -> Turnout's operations; the
# dialect routes (/v1/messages, /v1/responses) are chat requests in the pipeline
LITELLM_CALL_TYPES = {
    "completion": "chat",
    "acompletion": "chat",
    "responses": "chat",
    "aresponses": "chat",
    "text_completion": "completions",
    "atext_completion": "completions",
    "embedding": "embeddings",
    "aembedding": "embeddings",
    "image_generation": "images",
    "aimage_generation": "images",
}


@dataclass(frozen=True, slots=True)
class CacheOptions:
    ttl: float = 600.0  # seconds an answer is kept unless its request says otherwise
    max_ttl: float = 86400.0  # the longest a request may ask for
    namespace: str = ""  # prefix of every entry's name (LiteLLM's cache_params.namespace)
    operations: frozenset[str] = frozenset({"chat", "completions", "embeddings"})
    shared: bool = False  # every caller shares entries (else each tenant its own: engine.cache.key)
    max_entry_bytes: int = 1024 * 1024  # a larger answer is not kept


def operations_of(call_types: str) -> frozenset[str]:
    """Comma-separated operations (or LiteLLM call type names) as operations; ValueError naming one
    that cannot be cached."""
    found = set()
    for name in (part.strip() for part in call_types.split(",")):
        if not name:
            continue
        operation = LITELLM_CALL_TYPES.get(name, name)
        if operation not in CACHEABLE:
            raise ValueError(f"{name!r} cannot be cached; cacheable: {', '.join(CACHEABLE)}")
        found.add(operation)
    return frozenset(found)
