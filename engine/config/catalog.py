"""What the importer and the routing-table loader need to know about provider mappings.

Built by the mapping registry from `mappings/providers/*.yaml`; the config code never names a provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ProviderCatalog", "ProviderDefaults"]


@dataclass(frozen=True, slots=True)
class ProviderDefaults:
    name: str  # the mapping's name (file stem), stored in SQL
    privacy_tier: str  # local | self-hosted | third-party
    api_base: str | None  # used when a deployment gives none
    prefixes: tuple[str, ...] = ()  # LiteLLM model prefixes that resolve to this mapping


@dataclass(frozen=True, slots=True)
class ProviderCatalog:
    providers: Mapping[str, ProviderDefaults]
    default_provider: str  # for LiteLLM model strings without a known prefix

    def by_prefix(self, prefix: str) -> ProviderDefaults | None:
        for provider in self.providers.values():
            if prefix in provider.prefixes or prefix == provider.name:
                return provider
        return None
