"""What a config file asks for, before it touches SQL: the importer turns an `ImportPlan` into rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.routing.table import Capabilities

__all__ = ["FALLBACK_KINDS", "ConfigError", "DeploymentSpec", "ImportPlan"]

# the kinds of fallback, named as `Fallbacks` fields; LiteLLM key: `fallbacks`, `<kind>_fallbacks`
FALLBACK_KINDS = ("general", "context_window", "content_policy")


class ConfigError(ValueError):
    """A config file Turnout cannot import; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class DeploymentSpec:
    """One `model_list` entry. `api_base` and `api_key` may be `os.environ/NAME` references."""

    alias: str
    source_key: str  # model_info.id, else "<model_name>#<n>" (n: index among entries of that name)
    provider: str  # provider mapping name from the catalog
    upstream_model: str
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_version: str | None = None
    privacy_tier: str | None = None  # None: the mapping's default
    mode: str = "chat"
    weight: float = 1.0
    priority: int = 0
    timeout: float | None = None
    params: dict[str, Any] = field(default_factory=dict)  # per-model parameter defaults
    limits: dict[str, int] = field(default_factory=dict)  # rpm / tpm / max_parallel_requests, as stated
    forced_params: dict[str, Any] = field(default_factory=dict)  # turnout_forced_params: win over the request
    tags: tuple[str, ...] = ()
    capabilities: Capabilities = field(default_factory=Capabilities)
    extra_capabilities: dict[str, Any] = field(default_factory=dict)  # other supports_* flags
    costs: dict[str, Decimal] = field(default_factory=dict)  # unit -> price per unit


@dataclass(slots=True)
class ImportPlan:
    origin: str  # the file it came from, for messages
    deployments: list[DeploymentSpec] = field(default_factory=list)
    # master_key (may be an `os.environ/NAME` reference), drop_params, request_timeout, and
    # cache_settings (engine.cache.config: Turnout's cache_* settings from litellm_settings.cache_params)
    settings: dict[str, Any] = field(default_factory=dict)
    # router_settings (and the same keys under litellm_settings), only the keys the file states,
    # validated: routing_strategy, num_retries, retry_after, allowed_fails, cooldown_time,
    # enable_pre_call_checks
    router_settings: dict[str, Any] = field(default_factory=dict)
    # kind (general | context_window | content_policy) -> alias -> aliases to try, in order
    fallbacks: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    # alias -> its own routing strategy (model_info.routing_strategy, Turnout's extension)
    alias_strategies: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
