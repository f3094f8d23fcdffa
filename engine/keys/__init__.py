"""Virtual keys: API keys with per-key model access, issued by the admin API or `turnout keys`."""

from __future__ import annotations

from engine.keys.ring import KeyRing, VirtualKey, hash_key, new_key, parse_duration
from engine.keys.service import KeyChanges, KeyService, key_changes, key_info

__all__ = [
    "KeyChanges",
    "KeyRing",
    "KeyService",
    "VirtualKey",
    "hash_key",
    "key_changes",
    "key_info",
    "new_key",
    "parse_duration",
]
