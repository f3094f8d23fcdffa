"""The key of one cache entry: whose it is and exactly what was asked, hashed.

    sha256( sorted-key JSON of {"v": 1, "scope", "namespace", "operation", "privacy", "request"} )

- scope: the tenant. `key:<id>` for a virtual key; `ns:<name>` for every key whose metadata names
  that `cache_namespace` (an operator shares on purpose); `gateway` for the master key (and every
  caller of a gateway without one); `shared` for everyone when the operator set `cache_scope: shared`.
- namespace: the request's own `cache.namespace` (a space inside its scope, never outside it).
- operation: chat, completions, embeddings, images.
- privacy: the level the request is held to (its `x-turnout-privacy` or its key's), so that an answer
  made under a looser level never answers a stricter request.
- request: the canonical request as the client sent it, `model` (the alias) and `stream` included,
  without the fields that do not change the answer: VOLATILE.

`stream_options` stays in: `include_usage` adds a chunk, `include_obfuscation` pads every chunk.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from engine.keys.ring import VirtualKey

__all__ = ["VOLATILE", "entry_key", "scope_of"]

# who asked (user, safety_identifier), what for (metadata), where it is kept (store), how the
# provider's own prompt cache is routed (prompt_cache_key), and the cache's own controls
VOLATILE = frozenset({"user", "metadata", "store", "safety_identifier", "prompt_cache_key", "cache"})
_encode = msgspec.json.Encoder(order="sorted").encode


def scope_of(key: VirtualKey | None, *, shared: bool) -> str:
    if shared:
        return "shared"
    if key is None:
        return "gateway"
    if key.cache_namespace:
        return "ns:" + key.cache_namespace
    return f"key:{key.id}"


def entry_key(
    scope: str, namespace: str, operation: str, privacy: str | None, request: dict[str, Any]
) -> str:
    """The hex digest naming one entry; TypeError when the request holds what JSON cannot (an upload)."""
    asked = {name: value for name, value in request.items() if name not in VOLATILE}
    document = {
        "v": 1,
        "scope": scope,
        "namespace": namespace,
        "operation": operation,
        "privacy": privacy,
        "request": asked,
    }
    return hashlib.sha256(_encode(document)).hexdigest()
