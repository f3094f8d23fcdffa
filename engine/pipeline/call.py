"""One client request on its way down the pipeline: what every step below `Pipeline.run` shares.

`Pipeline.run` opens it (the operation, the canonical request, its meter and the privacy level that
applies); the dispatcher reads it for each deployment it tries, and a fallback retargets it to another
alias. Steps take the call instead of the same five values in every signature.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from engine.canonical import OperationKind
from engine.mapping.loader import MappingRegistry
from engine.pipeline.metering import Meter

__all__ = ["Call"]


@dataclass(slots=True)
class Call:
    kind: OperationKind
    request: dict[str, Any]  # canonical, validated; `model` names the alias asked for
    meter: Meter
    privacy: str | None = None  # the level that limits the tiers it may reach (None: any)
    privacy_is_keys: bool = False  # the level is the virtual key's own, stricter than the request's header
    cache_control: str | None = None  # the client's Cache-Control header, read only when caching is on
    # the provider mappings in force when the request started, kept to its end however many attempts
    # it takes, so that a reload never shows it half a change (None: the attempter's current ones)
    registry: MappingRegistry | None = None

    def retargeted(self, alias: str) -> Call:
        """The same call, sent to another alias (a fallback)."""
        return replace(self, request={**self.request, "model": alias})
