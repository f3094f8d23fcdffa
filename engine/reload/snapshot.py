"""One loaded version of the mapping folders: providers and dialects, immutable, swapped whole.

A request takes the version in force when it starts and keeps it to its end (engine.pipeline.call.Call),
so a reload never shows it half a change: a new version is built aside and swapped in by reference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.mapping.dialects import DialectMapping, load_dialects
from engine.mapping.loader import MappingRegistry, load_registry

__all__ = ["MappingSet", "load_mapping_set", "route_shape"]


@dataclass(frozen=True, slots=True, eq=False)
class MappingSet:
    registry: MappingRegistry  # the providers
    dialects: Mapping[str, DialectMapping]
    version: int  # 1 at start, one more for each reload that was swapped in


def load_mapping_set(
    folders: Sequence[Path], version: int, *, registry: MappingRegistry | None = None
) -> MappingSet:
    """Load and compile every provider and dialect of `folders` (or take `registry` as the providers,
    already loaded). Raises MappingLoadError naming file:line."""
    providers = registry if registry is not None else load_registry(folders)
    return MappingSet(providers, load_dialects(folders), version)


def route_shape(dialects: Mapping[str, DialectMapping]) -> dict[str, tuple[tuple[str, ...], ...]]:
    """The URL paths each dialect serves (its own, then its local routes'): the routes are registered
    with the server once, at start, so a reload may change what a dialect does but not where it listens."""
    return {
        name: (dialect.paths, *((route.name, *route.paths) for route in dialect.local_routes))
        for name, dialect in dialects.items()
    }
