"""LiteLLM's router settings: `router_settings`, and the same keys under `litellm_settings`.

Only the keys a file states are kept (validated); `engine.store.load` fills the rest from
`RouterSettings`' defaults and lets the config source win over the default set. When both sections
state a key, `router_settings` wins: LiteLLM's Router also prefers its own arguments over the
module-wide `litellm_settings`.

Strategies are `engine.routing.table.STRATEGIES`, spelled as LiteLLM spells them; LiteLLM's older
`usage-based-routing` means `usage-based-routing-v2`. An unknown strategy is an error (routing by a
strategy nobody asked for would be a silent surprise); an unknown key is a warning, as elsewhere.

Fallbacks use LiteLLM's shape, a list of single-key mappings, alias -> aliases to try in order:

    router_settings:
      fallbacks: [{"big": ["medium", "small"]}]
      context_window_fallbacks: [{"medium": ["big-long-context"]}]
      content_policy_fallbacks: [{"small": ["medium"]}]

The key `"*"` (LiteLLM's wildcard) serves every alias without a list of its own. An alias named in a
fallback but absent from the file's `model_list` is only a warning: another source (the default alias
set) may serve it; the loader drops targets that no source serves. When an alias is listed twice, the
first list wins, as in LiteLLM.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from engine.config.plan import ConfigError
from engine.routing.table import STRATEGIES

__all__ = [
    "FALLBACK_KEYS",
    "ROUTER_KEYS",
    "SETTING_KEYS",
    "WILDCARD",
    "RouterConfig",
    "normalize_strategy",
    "parse_router_settings",
]

FALLBACK_KEYS = {
    "fallbacks": "general",
    "context_window_fallbacks": "context_window",
    "content_policy_fallbacks": "content_policy",
}
_INTEGERS = ("num_retries", "allowed_fails")  # counts, >= 0
_SECONDS = ("retry_after", "cooldown_time")  # seconds, >= 0
_FLAGS = ("enable_pre_call_checks",)
SETTING_KEYS = ("routing_strategy", *_INTEGERS, *_SECONDS, *_FLAGS)
ROUTER_KEYS = frozenset({*SETTING_KEYS, *FALLBACK_KEYS})
_STRATEGY_ALIASES = {"usage-based-routing": "usage-based-routing-v2"}
WILDCARD = "*"
_SECTIONS = ("litellm_settings", "router_settings")  # later wins


def normalize_strategy(value: Any) -> str | None:
    """The strategy's name in STRATEGIES, or None when it is not one."""
    if not isinstance(value, str):
        return None
    name = _STRATEGY_ALIASES.get(value, value)
    return name if name in STRATEGIES else None


@dataclass(slots=True)
class RouterConfig:
    settings: dict[str, Any] = field(default_factory=dict)
    fallbacks: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)  # kind -> alias -> targets
    warnings: list[str] = field(default_factory=list)


class _RouterParser:
    def __init__(self, origin: str, aliases: Collection[str]) -> None:
        self.origin = origin
        self.aliases = aliases
        self.found = RouterConfig()

    def fail(self, where: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.origin}: {where}: {problem}")

    def stated(self, data: dict[str, Any]) -> dict[str, tuple[str, Any]]:
        """key -> (section, value) for every router key stated; router_settings over litellm_settings."""
        found: dict[str, tuple[str, Any]] = {}
        for section in _SECTIONS:
            values = data.get(section)
            if values is None:
                continue
            if not isinstance(values, dict):
                raise self.fail(section, "must be a mapping")
            for key, value in values.items():
                if key in ROUTER_KEYS:
                    found[key] = (section, value)
                elif section == "router_settings":  # litellm_settings' other keys: engine.config.litellm
                    self.found.warnings.append(f"router_settings.{key} is not used by Turnout")
        return found

    def setting(self, key: str, value: Any, where: str) -> Any:
        if key == "routing_strategy":
            strategy = normalize_strategy(value)
            if strategy is None:
                raise self.fail(where, f"unknown routing_strategy {value!r}; one of {', '.join(STRATEGIES)}")
            return strategy
        if key in _FLAGS:
            if not isinstance(value, bool):
                raise self.fail(where, "must be true or false")
            return value
        wrong = isinstance(value, bool) or not isinstance(value, int if key in _INTEGERS else int | float)
        if wrong or value < 0:
            kind = "a whole number" if key in _INTEGERS else "a number of seconds"
            raise self.fail(where, f"must be {kind}, 0 or more")
        return value if key in _INTEGERS else float(value)

    def fallbacks(self, value: Any, where: str) -> dict[str, tuple[str, ...]]:
        if not isinstance(value, list):
            raise self.fail(where, 'must be a list like [{"big": ["small"]}]')
        found: dict[str, tuple[str, ...]] = {}
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.fail(f"{where}[{index}]", 'must be a mapping like {"big": ["small"]}')
            for alias, targets in item.items():
                if not isinstance(targets, list) or not all(isinstance(t, str) and t for t in targets):
                    raise self.fail(f"{where}[{index}] ({alias})", "must be a list of model names")
                if alias in found:
                    self.found.warnings.append(f"{where}: {alias!r} is listed again; the first list is used")
                    continue
                found[str(alias)] = tuple(dict.fromkeys(t for t in targets if t != alias))
                self.check_names(where, [str(alias), *targets])
        return found

    def check_names(self, where: str, names: list[str]) -> None:
        for name in names:
            if name != WILDCARD and name not in self.aliases:
                self.found.warnings.append(
                    f"{where}: {name!r} is not a model_name in this file (kept: another source may serve it)"
                )

    def parse(self, data: dict[str, Any]) -> RouterConfig:
        for key, (section, value) in self.stated(data).items():
            where = f"{section}.{key}"
            if key in FALLBACK_KEYS:
                lists = self.fallbacks(value, where)
                if lists:
                    self.found.fallbacks[FALLBACK_KEYS[key]] = lists
            else:
                self.found.settings[key] = self.setting(key, value, where)
        self.found.warnings = list(dict.fromkeys(self.found.warnings))
        return self.found


def parse_router_settings(data: dict[str, Any], origin: str, aliases: Collection[str]) -> RouterConfig:
    """Router settings and fallbacks of a config document; `aliases`: the model_names it defines."""
    return _RouterParser(origin, aliases).parse(data)
