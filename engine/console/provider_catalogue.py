"""The provider catalogue the console shows, read from the loaded provider mappings (no provider is
named in code: a mapping file added to `mappings/providers/` appears here as it is).

Also which alias modes a mapping can serve: a mode is served through one operation of the mapping.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.mapping.loader import MappingRegistry
from engine.mapping.spec import ProviderMapping

__all__ = ["MODE_OPERATIONS", "CatalogueEntry", "catalogue", "modes_of"]

# alias mode (LiteLLM's model_info.mode) -> the operation a deployment of that mode is asked through
MODE_OPERATIONS = {
    "chat": "chat",
    "completion": "completions",
    "embedding": "embeddings",
    "audio_transcription": "transcriptions",
    "audio_speech": "speech",
    "image_generation": "images",
    "rerank": "rerank",
}


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    name: str
    description: str
    privacy_tier: str
    api_base: str | None  # the mapping's default base URL
    operations: tuple[str, ...]
    modes: tuple[str, ...]  # alias modes a deployment of this provider can serve
    lists_models: bool  # the mapping has a `discovery` section ("Fetch models", "Refresh models")
    file: str


def modes_of(mapping: ProviderMapping) -> tuple[str, ...]:
    return tuple(mode for mode, operation in MODE_OPERATIONS.items() if operation in mapping.operations)


def catalogue(registry: MappingRegistry) -> list[CatalogueEntry]:
    """Every provider mapping, by name."""
    return [
        CatalogueEntry(
            name=mapping.name,
            description=mapping.description,
            privacy_tier=mapping.privacy_tier,
            api_base=mapping.api_base,
            operations=tuple(mapping.operations),
            modes=modes_of(mapping),
            lists_models=mapping.discovery is not None,
            file=mapping.file,
        )
        for mapping in sorted(registry.providers.values(), key=lambda mapping: mapping.name)
    ]
