"""The deployment form: what an operator typed, checked field by field into a `DeploymentInput`.

Every value is hostile until checked: lengths, URL schemes, numbers, and the parameter overrides and
forced parameters against the provider mapping's parameter policy (the same `apply_policy` the request
path runs), so a parameter the backend would refuse or never see is refused here, next to its field.
Prices are typed per 1M tokens and stored per token.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from engine.config.litellm import PRIVACY_TIERS
from engine.config.plan import DeploymentSpec
from engine.config.secrets import env_ref_name
from engine.console.provider_catalogue import MODE_OPERATIONS, modes_of
from engine.errors import InvalidRequest
from engine.mapping.loader import MappingRegistry
from engine.mapping.spec import ProviderMapping
from engine.pipeline.params import apply_policy
from engine.routing.table import Capabilities, Cost, Deployment
from engine.store.models import DeploymentRow

__all__ = [
    "FIELDS",
    "FLAGS",
    "PRICES",
    "DeploymentInput",
    "check_parameters",
    "parse_deployment_form",
    "stored_form",
]

# every field of the form, in order (what is re-rendered after an error)
FLAGS = ("tools", "vision", "reasoning", "streaming")  # capability flags: "" (not stated), "yes", "no"
PRICES = {  # form field -> cost unit; typed per 1M tokens
    "price_input": "input_token",
    "price_output": "output_token",
    "price_cached_input": "cached_input_token",
    "price_reasoning": "reasoning_token",
}
FIELDS = (
    "provider", "api_base", "api_key", "clear_key", "upstream_model", "alias", "mode", "priority",
    "weight", "privacy_tier", *FLAGS, "max_input_tokens", "max_output_tokens", *PRICES, "params",
    "forced_params",
)  # fmt: skip

_PER_MILLION = Decimal(1_000_000)
_MAX_URL = 2000
_MAX_KEY = 1000
_MAX_JSON = 20_000
_MAX_TOKENS = 100_000_000
_MAX_PRICE = Decimal(1_000_000)  # per 1M tokens
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,120}")
# the request's own content and framing: never a per-deployment default
_REQUEST_OWN = frozenset(
    {"model", "messages", "input", "prompt", "stream", "stream_options", "file", "query", "documents"}
)


@dataclass(frozen=True, slots=True)
class DeploymentInput:
    """A checked form. `api_key` None: no key typed (keep the stored one on edit, unless `clear_key`)."""

    provider: str
    api_base: str | None
    api_key: str | None = field(repr=False)
    clear_key: bool
    upstream_model: str
    alias: str
    mode: str
    priority: int
    weight: float
    privacy_tier: str | None
    capabilities: Capabilities
    costs: dict[str, Decimal]  # unit -> price per unit (per token)
    params: dict[str, Any]
    forced_params: dict[str, Any]

    def spec(self, source_key: str, api_key: str | None) -> DeploymentSpec:
        """As the importer takes it; `api_key` is the key to store (typed, or the stored one kept)."""
        return DeploymentSpec(
            alias=self.alias,
            source_key=source_key,
            provider=self.provider,
            upstream_model=self.upstream_model,
            api_base=self.api_base,
            api_key=api_key,
            privacy_tier=self.privacy_tier,
            mode=self.mode,
            weight=self.weight,
            priority=self.priority,
            params=dict(self.params),
            forced_params=dict(self.forced_params),
            capabilities=self.capabilities,
            costs=dict(self.costs),
        )

    def deployment(self, mapping: ProviderMapping, api_key: str | None) -> Deployment:
        """The unsaved deployment, as the routing table would hold it (for Test connection, Fetch models)."""
        return Deployment(
            id=0,
            alias=self.alias or "test-connection",
            provider=self.provider,
            upstream_model=self.upstream_model,
            api_base=self.api_base or mapping.api_base,
            api_key=api_key,
            mode=self.mode,
            params=dict(self.params),
            weight=self.weight,
            priority=self.priority,
            privacy_tier=self.privacy_tier or mapping.privacy_tier,
            capabilities=self.capabilities,
            costs=tuple(Cost(unit, price) for unit, price in sorted(self.costs.items())),
            source="console",
            forced_params=dict(self.forced_params),
        )


class _Checker:
    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values
        self.errors: dict[str, str] = {}

    def raw(self, name: str) -> str:
        return self.values.get(name, "").strip()

    def text(self, name: str, limit: int, *, required: bool = False, spaces: bool = True) -> str:
        value = self.raw(name)
        if required and not value:
            self.errors[name] = "required"
        elif len(value) > limit:
            self.errors[name] = f"at most {limit} characters"
        elif _CONTROL.search(value) or (not spaces and any(c.isspace() for c in value)):
            self.errors[name] = "no control characters" + ("" if spaces else " or spaces")
        return value

    def url(self, name: str) -> str | None:
        value = self.raw(name)
        if not value:
            return None
        parts = urlsplit(value)
        if len(value) > _MAX_URL or _CONTROL.search(value) or " " in value:
            self.errors[name] = f"a URL of at most {_MAX_URL} characters, without spaces"
        elif parts.scheme not in ("http", "https") or not parts.hostname:
            self.errors[name] = "an http:// or https:// URL with a host"
        return value.rstrip("/")

    def key(self, name: str) -> str | None:
        value = self.raw(name)
        if not value:
            return None
        reference = env_ref_name(value)
        if reference is not None and not _ENV_NAME.fullmatch(reference):
            self.errors[name] = "os.environ/ must be followed by a variable name"
        elif len(value) > _MAX_KEY or _CONTROL.search(value) or any(c.isspace() for c in value):
            self.errors[name] = f"at most {_MAX_KEY} characters, without spaces"
        return value

    def integer(self, name: str, low: int, high: int, *, default: int | None = None) -> int | None:
        value = self.raw(name)
        if not value:
            return default
        try:
            number = int(value)
        except ValueError:
            self.errors[name] = "a whole number"
            return default
        if not low <= number <= high:
            self.errors[name] = f"between {low} and {high}"
        return number

    def weight(self, name: str) -> float:
        value = self.raw(name) or "1"
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not (math.isfinite(number) and 0 < number <= 1_000_000):
            self.errors[name] = "a number above 0, at most 1000000"
            return 1.0
        return number

    def price(self, name: str) -> Decimal | None:
        value = self.raw(name)
        if not value:
            return None
        try:
            price = Decimal(value)
        except InvalidOperation:
            self.errors[name] = "a price, e.g. 0.15"
            return None
        if not price.is_finite() or not Decimal(0) <= price <= _MAX_PRICE or len(value) > 30:
            self.errors[name] = f"a price from 0 to {_MAX_PRICE}"
            return None
        return price / _PER_MILLION

    def flag(self, name: str) -> bool | None:
        value = self.raw(name)
        if value not in ("", "yes", "no"):
            self.errors[name] = "yes, no or not stated"
        return None if value not in ("yes", "no") else value == "yes"

    def json_object(self, name: str) -> dict[str, Any]:
        value = self.raw(name)
        if not value:
            return {}
        if len(value) > _MAX_JSON:
            self.errors[name] = f"at most {_MAX_JSON} characters"
            return {}
        try:
            decoded = json.loads(value)
        except ValueError as exc:
            self.errors[name] = f"not valid JSON: {exc}"
            return {}
        if not isinstance(decoded, dict):
            self.errors[name] = 'a JSON object, e.g. {"num_ctx": 8192}'
            return {}
        return decoded


def check_parameters(values: Mapping[str, Any], mapping: ProviderMapping, mode: str) -> str | None:
    """Why these parameter defaults (or forced parameters) cannot be used with this mapping, or None.

    Refused: what the mapping's policy rejects or puts out of range (every request would fail), and
    what it drops (it would never reach the backend: an override that silently does nothing)."""
    own = sorted(name for name in values if name in _REQUEST_OWN)
    if own:
        return f"{', '.join(own)}: set by each request, not per deployment"
    operation = mapping.operations.get(MODE_OPERATIONS.get(mode, ""))
    if operation is None:
        return None  # the mode is refused on its own field
    try:
        _, dropped = apply_policy(dict(values), operation.params, drop_params=False, provider=mapping.name)
    except InvalidRequest as exc:
        return str(exc)
    if dropped:
        return f"{mapping.name} drops {', '.join(sorted(dropped))}: it would never reach the backend"
    return None


def parse_deployment_form(
    values: Mapping[str, str], registry: MappingRegistry
) -> tuple[DeploymentInput, dict[str, str]]:
    """The form as far as it could be read, and the problems by field name (usable only when none:
    Test connection and Fetch models look only at the fields they need)."""
    check = _Checker(values)
    provider = check.raw("provider")
    mapping = registry.get(provider)
    if mapping is None:
        check.errors["provider"] = "choose a provider from the catalogue"
    mode = check.raw("mode") or "chat"
    if mapping is not None and mode not in modes_of(mapping):
        check.errors["mode"] = f"{provider} serves {', '.join(modes_of(mapping)) or 'no known mode'}"
    tier = check.raw("privacy_tier")
    if tier and tier not in PRIVACY_TIERS:
        check.errors["privacy_tier"] = f"one of {', '.join(PRIVACY_TIERS)}"
    params = check.json_object("params")
    forced = check.json_object("forced_params")
    if mapping is not None:
        for name, given in (("params", params), ("forced_params", forced)):
            problem = check_parameters(given, mapping, mode) if name not in check.errors else None
            if problem:
                check.errors[name] = problem
    capabilities = Capabilities(
        **{flag: check.flag(flag) for flag in FLAGS},
        max_input_tokens=check.integer("max_input_tokens", 1, _MAX_TOKENS),
        max_output_tokens=check.integer("max_output_tokens", 1, _MAX_TOKENS),
    )
    costs = {unit: price for name, unit in PRICES.items() if (price := check.price(name)) is not None}
    parsed = DeploymentInput(
        provider=provider,
        api_base=check.url("api_base"),
        api_key=check.key("api_key"),
        clear_key=check.raw("clear_key") == "yes",
        upstream_model=check.text("upstream_model", 300, required=True),
        alias=check.text("alias", 200, required=True, spaces=False),
        mode=mode,
        priority=check.integer("priority", -1_000_000, 1_000_000, default=0) or 0,
        weight=check.weight("weight"),
        privacy_tier=tier or None,
        capabilities=capabilities,
        costs=costs,
        params=params,
        forced_params=forced,
    )
    return parsed, check.errors


def _flag_text(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


def _per_million(price: Decimal) -> str:
    return f"{(price * _PER_MILLION).normalize():f}"


def stored_form(row: DeploymentRow) -> dict[str, str]:
    """The form's fields for a stored deployment (alias, provider, capability and costs loaded); the key
    field stays empty: a stored key is never sent back to the browser."""
    capability = row.capability
    units = {cost.unit: cost.price for cost in row.costs}
    values = {
        "provider": row.provider.mapping,
        "api_base": row.provider.api_base or "",
        "api_key": "",
        "clear_key": "",
        "upstream_model": row.upstream_model,
        "alias": row.alias.name,
        "mode": row.mode,
        "priority": str(row.priority),
        "weight": f"{row.weight:g}",
        "privacy_tier": row.provider.privacy_tier or "",
        "max_input_tokens": str(capability.max_input_tokens or "") if capability else "",
        "max_output_tokens": str(capability.max_output_tokens or "") if capability else "",
        "params": json.dumps(row.params) if row.params else "",
        "forced_params": json.dumps(row.forced_params) if row.forced_params else "",
    }
    for flag in FLAGS:
        values[flag] = _flag_text(getattr(capability, f"supports_{flag}")) if capability else ""
    for name, unit in PRICES.items():
        values[name] = _per_million(units[unit]) if unit in units else ""
    return values
