"""The routing table the request path reads: immutable snapshots built from SQL, swapped whole on reload.

Requests never query the database for routing; `engine.store.load.load_routing_table` builds one of
these and the app replaces its reference atomically.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = [
    "STRATEGIES",
    "Alias",
    "Capabilities",
    "Cost",
    "Deployment",
    "Fallbacks",
    "Limits",
    "RouterSettings",
    "RoutingTable",
]

STRATEGIES = (
    "simple-shuffle",  # weighted random (LiteLLM's default)
    "ordered",  # by priority (`order`), then the next
    "least-busy",  # fewest requests in flight
    "latency-based-routing",  # lowest moving average of latency (time to first token for streams)
    "usage-based-routing-v2",  # lowest share of its rpm/tpm used this minute, never over a limit
    "cost-based-routing",  # lowest price per token from the cost rows
)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a deployment can do. None means "not stated" (treated as allowed until a check says otherwise)."""

    tools: bool | None = None
    vision: bool | None = None
    reasoning: bool | None = None
    streaming: bool | None = None
    system_messages: bool | None = None
    json_schema: bool | None = None
    max_tokens: int | None = None
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Cost:
    """A price per unit of one usage field, e.g. ("input_token", Decimal("0.000001"))."""

    unit: str
    price: Decimal


@dataclass(frozen=True, slots=True)
class Limits:
    """A deployment's own limits (None: unlimited)."""

    rpm: int | None = None
    tpm: int | None = None
    max_parallel_requests: int | None = None


@dataclass(frozen=True, slots=True)
class Deployment:
    """One upstream model behind an alias, with its provider endpoint and credentials resolved."""

    id: int
    alias: str
    provider: str  # provider mapping name, e.g. the file stem in mappings/providers/
    upstream_model: str
    model_id: str | None = None  # the config's model_info.id, when it gives one
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)  # plaintext, memory only
    api_version: str | None = None
    mode: str = "chat"
    params: Mapping[str, Any] = field(default_factory=dict)  # per-model parameter defaults (seed 003)
    timeout: float | None = None
    weight: float = 1.0
    priority: int = 0
    privacy_tier: str = "third-party"
    capabilities: Capabilities = field(default_factory=Capabilities)
    costs: tuple[Cost, ...] = ()
    tags: tuple[str, ...] = ()
    source: str = "config"
    limits: Limits = field(default_factory=Limits)
    forced_params: Mapping[str, Any] = field(default_factory=dict)  # win over the request (operator's call)


@dataclass(frozen=True, slots=True)
class Fallbacks:
    """Aliases to try, in order, when every deployment of an alias failed, by why it failed."""

    general: tuple[str, ...] = ()  # any failure (LiteLLM's `fallbacks`)
    context_window: tuple[str, ...] = ()  # the prompt is too long (`context_window_fallbacks`)
    content_policy: tuple[str, ...] = ()  # a content filter refused it (`content_policy_fallbacks`)


@dataclass(frozen=True, slots=True)
class RouterSettings:
    """LiteLLM's router_settings, with its defaults."""

    routing_strategy: str = "simple-shuffle"
    num_retries: int = 0  # attempts beyond one per deployment
    retry_after: float = 0.0  # minimum seconds to wait before retrying
    allowed_fails: int = 3  # failures per minute a deployment may have before it cools down
    cooldown_time: float = 5.0  # seconds a deployment is skipped after too many failures
    enable_pre_call_checks: bool = False  # skip deployments whose context window the prompt exceeds


@dataclass(frozen=True, slots=True)
class Alias:
    """A model name clients ask for, served by one or more deployments in priority order."""

    name: str
    deployments: tuple[Deployment, ...]
    mode: str = "chat"
    created: int = 0  # unix seconds, shown by GET /v1/models
    source: str = "config"
    routing_strategy: str | None = None  # None: the router's global strategy
    fallbacks: Fallbacks = field(default_factory=Fallbacks)


@dataclass(frozen=True, slots=True)
class RoutingTable:
    aliases: Mapping[str, Alias] = field(default_factory=dict)
    settings: RouterSettings = field(default_factory=RouterSettings)

    def get(self, name: str) -> Alias | None:
        return self.aliases.get(name)
