"""LiteLLM proxy configs (YAML or JSON) parsed into an `ImportPlan`.

Unknown keys are warned about once per key path, never fatal; structural problems raise `ConfigError`
naming the file and the entry. Provider knowledge comes from the `ProviderCatalog` only.
`router_settings` (and fallbacks) are read by `engine.config.litellm_router`.

Turnout's own extensions, which LiteLLM does not know:

- `model_info.routing_strategy`: this alias's strategy instead of the router's (one of `STRATEGIES`);
  every entry of the alias that states one must state the same, else `ConfigError`. Entries that
  state none do not disagree.
- `litellm_params.turnout_forced_params: {temperature: 0}`: parameters that win over the request
  (the operator's override), where plain `litellm_params` are only defaults a request may change.

Per deployment limits (`Limits`): `litellm_params.rpm`, `tpm`, `max_parallel_requests`.
`litellm_settings.cache` and `cache_params` are read by `engine.cache.config` (the response cache).
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from engine.cache.config import parse_cache_settings
from engine.config.catalog import ProviderCatalog
from engine.config.litellm_router import ROUTER_KEYS, normalize_strategy, parse_router_settings
from engine.config.plan import ConfigError, DeploymentSpec, ImportPlan
from engine.routing.table import STRATEGIES, Capabilities

__all__ = [
    "CAPABILITY_FLAGS",
    "CONTEXT_KEYS",
    "COST_KEYS",
    "RESERVED_PARAMS",
    "load_model_set",
    "parse_litellm_config",
    "parse_litellm_data",
    "parse_litellm_text",
]

PRIVACY_TIERS = ("local", "self-hosted", "third-party")
_LIMIT_KEYS = ("rpm", "tpm", "max_parallel_requests")
_SETTINGS = {
    "general_settings": {"master_key"},
    "litellm_settings": {"drop_params", "request_timeout", "cache", "cache_params"},
}
_ROUTING_PARAMS = {
    "model", "custom_llm_provider", "api_base", "base_url", "api_key", "api_version", "timeout",
    "stream_timeout", "weight", "order", "priority", "tags", "turnout_forced_params", *_LIMIT_KEYS,
}  # fmt: skip
# LiteLLM's own client knobs: meaningless to an upstream, so not passed on as parameter defaults.
_LITELLM_ONLY_PARAMS = {
    "max_retries", "mock_response", "use_in_pass_through", "use_litellm_proxy", "litellm_credential_name",
    "merge_reasoning_content_in_choices", "region_name", "organization", "model_info",
    "configurable_clientside_auth_params",
}  # fmt: skip
COST_KEYS = {
    "input_cost_per_token": "input_token",
    "output_cost_per_token": "output_token",
    "cache_read_input_token_cost": "cached_input_token",
    "output_cost_per_reasoning_token": "reasoning_token",
    "input_cost_per_second": "audio_second",
    "input_cost_per_character": "character",
    "output_cost_per_image": "image",
    "input_cost_per_query": "search_unit",  # rerank: LiteLLM's price per query (search unit)
}
CAPABILITY_FLAGS = {
    "supports_function_calling": "tools",
    "supports_tools": "tools",
    "supports_vision": "vision",
    "supports_reasoning": "reasoning",
    "supports_native_streaming": "streaming",
    "supports_system_messages": "system_messages",
    "supports_response_schema": "json_schema",
}
CONTEXT_KEYS = ("max_tokens", "max_input_tokens", "max_output_tokens")
_CONTEXT_KEYS = CONTEXT_KEYS
# litellm_params keys that mean something else than a parameter default (the exporter keeps
# stored parameter defaults of these names out of litellm_params)
RESERVED_PARAMS = frozenset({*_ROUTING_PARAMS, *_LITELLM_ONLY_PARAMS, *COST_KEYS})
_QUIET_INFO = {
    "id", "mode", "tags", "privacy_tier", "litellm_provider", "routing_strategy", *_CONTEXT_KEYS, *COST_KEYS,
}  # fmt: skip


class _Parser:
    def __init__(self, origin: str, catalog: ProviderCatalog) -> None:
        self.origin = origin
        self.catalog = catalog
        self.warnings: dict[str, None] = {}  # ordered set
        self.strategies: dict[str, str] = {}  # alias -> model_info.routing_strategy

    def warn(self, path: str) -> None:
        self.warnings.setdefault(f"{path} is not used by Turnout", None)

    def fail(self, where: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.origin}: {where}: {problem}")

    def number(self, value: Any, where: str, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f"{key} must be a number")
        return float(value)

    def integer(self, value: Any, where: str, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"{key} must be an integer")
        return value

    def text(self, value: Any, where: str, key: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise self.fail(where, f"{key} must be a string")
        return str(value)

    def tags(self, value: Any, where: str, key: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
            raise self.fail(where, f"{key} must be a list of strings")
        return list(value)

    def price(self, value: Any, where: str, key: str) -> Decimal:
        try:
            return Decimal(str(self.number(value, where, key)))
        except InvalidOperation as exc:  # inf / nan
            raise self.fail(where, f"{key} must be a finite number") from exc

    def provider(self, params: dict[str, Any], where: str) -> tuple[str, str]:
        """(mapping name, upstream model) from `model` and `custom_llm_provider`."""
        model = params["model"]
        custom = params.get("custom_llm_provider")
        if custom is not None:
            known = self.catalog.by_prefix(str(custom))
            if known is not None:
                prefix, sep, rest = model.partition("/")
                same = sep and rest and self.catalog.by_prefix(prefix) == known
                return known.name, rest if same else model
            self.warnings.setdefault(f"{where}: custom_llm_provider {custom!r} has no mapping", None)
        prefix, sep, rest = model.partition("/")
        known = self.catalog.by_prefix(prefix) if sep and rest else None
        if known is not None:
            return known.name, rest
        return self.catalog.default_provider, model

    def settings(self, data: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for section, keys in _SETTINGS.items():
            values = data.get(section)
            if values is None:
                continue
            if not isinstance(values, dict):
                raise self.fail(section, "must be a mapping")
            for key, value in values.items():
                if key in keys:
                    found[key] = value
                elif key not in ROUTER_KEYS:  # those are engine.config.litellm_router's
                    self.warn(f"{section}.{key}")
        if "request_timeout" in found:
            timeout = self.number(found["request_timeout"], "litellm_settings", "request_timeout")
            found["request_timeout"] = timeout
        if "drop_params" in found and not isinstance(found["drop_params"], bool):
            raise self.fail("litellm_settings", "drop_params must be true or false")
        cache = parse_cache_settings(
            found.pop("cache", None),
            found.pop("cache_params", None),
            lambda problem: self.fail("litellm_settings", problem),
            self.warn,
        )
        if cache:
            found["cache_settings"] = cache  # engine.bootstrap applies them
        return found

    def entry(self, raw: Any, index: int, seen: dict[str, int]) -> DeploymentSpec:
        where = f"model_list[{index}]"
        if not isinstance(raw, dict):
            raise self.fail(where, "must be a mapping")
        alias = raw.get("model_name")
        if not isinstance(alias, str) or not alias:
            raise self.fail(where, "model_name is missing")
        where = f"model_list[{index}] ({alias})"
        params = raw.get("litellm_params")
        info = raw.get("model_info") or {}
        if not isinstance(params, dict) or not isinstance(params.get("model"), str) or not params["model"]:
            raise self.fail(where, "litellm_params.model is missing")
        if not isinstance(info, dict):
            raise self.fail(where, "model_info must be a mapping")
        for key in raw.keys() - {"model_name", "litellm_params", "model_info"}:
            self.warn(f"model_list[].{key}")
        number = seen.get(alias, 0)
        seen[alias] = number + 1
        source_key = self.text(info.get("id"), where, "model_info.id") or f"{alias}#{number}"
        self.strategy(alias, info, where)
        provider, upstream = self.provider(params, where)
        return DeploymentSpec(
            alias=alias,
            source_key=source_key,
            provider=provider,
            upstream_model=upstream,
            **self.endpoint(params, info, where),
            **self.routing(params, where),
            **self.model_info(info, params, where),
        )

    def endpoint(self, params: dict[str, Any], info: dict[str, Any], where: str) -> dict[str, Any]:
        tier = info.get("privacy_tier")
        if tier is not None and tier not in PRIVACY_TIERS:
            raise self.fail(where, f"model_info.privacy_tier must be one of {', '.join(PRIVACY_TIERS)}")
        base = params.get("api_base", params.get("base_url"))
        return {
            "api_base": self.text(base, where, "litellm_params.api_base"),
            "api_key": self.text(params.get("api_key"), where, "litellm_params.api_key"),
            "api_version": self.text(params.get("api_version"), where, "litellm_params.api_version"),
            "privacy_tier": tier,
        }

    def strategy(self, alias: str, info: dict[str, Any], where: str) -> None:
        if info.get("routing_strategy") is None:
            return
        stated_here = info["routing_strategy"]
        strategy = normalize_strategy(stated_here)
        if strategy is None:
            known = ", ".join(STRATEGIES)
            raise self.fail(where, f"unknown model_info.routing_strategy {stated_here!r}; one of {known}")
        stated = self.strategies.setdefault(alias, strategy)
        if stated != strategy:
            raise self.fail(
                where,
                f"model_info.routing_strategy {strategy!r} disagrees with {stated!r} stated by another "
                f"entry of {alias!r}; an alias has one strategy",
            )

    def limits(self, params: dict[str, Any], where: str) -> dict[str, int]:
        found: dict[str, int] = {}
        for key in _LIMIT_KEYS:
            if params.get(key) is not None:
                found[key] = self.integer(params[key], where, f"litellm_params.{key}")
                if found[key] < 0:
                    raise self.fail(where, f"litellm_params.{key} must be 0 or more")
        return found

    def forced(self, params: dict[str, Any], where: str) -> dict[str, Any]:
        forced = params.get("turnout_forced_params")
        if forced is None:
            return {}
        if not isinstance(forced, dict) or not all(isinstance(key, str) for key in forced):
            raise self.fail(where, "litellm_params.turnout_forced_params must be a mapping of parameters")
        return dict(forced)

    def routing(self, params: dict[str, Any], where: str) -> dict[str, Any]:
        timeout = params.get("timeout", params.get("stream_timeout"))
        order = params.get("order", params.get("priority", 0))
        extra: dict[str, Any] = {}
        for key, value in params.items():
            if key in _LITELLM_ONLY_PARAMS:
                self.warn(f"model_list[].litellm_params.{key}")
            elif key not in _ROUTING_PARAMS and key not in COST_KEYS:
                extra[key] = value
        return {
            "weight": self.number(params.get("weight", 1.0), where, "litellm_params.weight"),
            "priority": self.integer(order, where, "litellm_params.order"),
            "timeout": None if timeout is None else self.number(timeout, where, "litellm_params.timeout"),
            "params": extra,
            "limits": self.limits(params, where),
            "forced_params": self.forced(params, where),
        }

    def model_info(self, info: dict[str, Any], params: dict[str, Any], where: str) -> dict[str, Any]:
        flags: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in info.items():
            if key.startswith("supports_"):
                if not isinstance(value, bool):
                    raise self.fail(where, f"model_info.{key} must be true or false")
                (flags if key in CAPABILITY_FLAGS else extra)[CAPABILITY_FLAGS.get(key, key)] = value
            elif key not in _QUIET_INFO:
                self.warn(f"model_list[].model_info.{key}")
        sizes: dict[str, Any] = {
            key: self.integer(info[key], where, f"model_info.{key}") for key in _CONTEXT_KEYS if key in info
        }
        costs = {
            unit: self.price(source[key], where, key)
            for source in (params, info)  # model_info wins over litellm_params
            for key, unit in COST_KEYS.items()
            if key in source
        }
        mode = self.text(info.get("mode"), where, "model_info.mode") or "chat"
        tags = self.tags(params.get("tags"), where, "litellm_params.tags")
        tags += [tag for tag in self.tags(info.get("tags"), where, "model_info.tags") if tag not in tags]
        return {
            "mode": mode,
            "tags": tuple(tags),
            "capabilities": Capabilities(**{**flags, **sizes}),
            "extra_capabilities": extra,
            "costs": costs,
        }

    def plan(self, data: Any) -> ImportPlan:
        if not isinstance(data, dict):
            raise ConfigError(f"{self.origin}: the file must hold a mapping with a model_list")
        model_list = data.get("model_list") or []
        if not isinstance(model_list, list):
            raise ConfigError(f"{self.origin}: model_list must be a list")
        for key in data.keys() - {"model_list", "router_settings", *_SETTINGS}:
            self.warn(str(key))
        settings = self.settings(data)
        seen: dict[str, int] = {}
        deployments = [self.entry(raw, index, seen) for index, raw in enumerate(model_list)]
        keys = [spec.source_key for spec in deployments]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ConfigError(f"{self.origin}: model_info.id repeated: {', '.join(duplicates)}")
        router = parse_router_settings(data, self.origin, seen)
        for warning in router.warnings:
            self.warnings.setdefault(warning, None)
        return ImportPlan(
            self.origin,
            deployments,
            settings,
            router_settings=router.settings,
            fallbacks=router.fallbacks,
            alias_strategies=dict(self.strategies),
            warnings=list(self.warnings),
        )


def parse_litellm_data(data: Any, catalog: ProviderCatalog, *, origin: str = "<config>") -> ImportPlan:
    """An already-decoded config document into a plan."""
    return _Parser(origin, catalog).plan(data)


def _decode(text: str, origin: str, *, is_json: bool) -> Any:
    try:
        return json.loads(text) if is_json else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{origin}: not valid {'JSON' if is_json else 'YAML'}: {exc}") from exc


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from exc
    return _decode(text, str(path), is_json=path.suffix.lower() == ".json")


def parse_litellm_config(path: Path | str, catalog: ProviderCatalog) -> ImportPlan:
    """A LiteLLM proxy config file (YAML or JSON) into a plan."""
    path = Path(path)
    return parse_litellm_data(_read(path), catalog, origin=str(path))


def parse_litellm_text(text: str, catalog: ProviderCatalog, *, origin: str) -> ImportPlan:
    """A config's text (an upload) into a plan: JSON when `origin` ends in .json, else YAML (JSON too,
    as YAML reads JSON documents)."""
    return parse_litellm_data(
        _decode(text, origin, is_json=origin.lower().endswith(".json")), catalog, origin=origin
    )


def load_model_set(path: Path | str, catalog: ProviderCatalog) -> ImportPlan:
    """One of Turnout's default alias sets (`mappings/models/*.yaml`, LiteLLM's model_list format)."""
    return parse_litellm_config(path, catalog)
