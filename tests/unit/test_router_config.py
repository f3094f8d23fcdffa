"""Router settings, fallbacks, per-deployment limits, per-alias strategies and forced parameters parsed
from LiteLLM-format files (engine.config.litellm, engine.config.litellm_router)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.config.litellm import parse_litellm_config, parse_litellm_data
from engine.config.plan import ConfigError, ImportPlan
from engine.routing.table import STRATEGIES
from tests.support.catalog import TEST_CATALOG

CATALOG = TEST_CATALOG

# router_settings as LiteLLM's proxy docs show them (Redis keys and all), with fallbacks in
# litellm_settings as its reliability docs show them; model names as in those docs.
LITELLM_DOCUMENTED = """
model_list:
  - model_name: gpt-3.5-turbo
    litellm_params:
      model: azure/chatgpt-v-2
      api_base: os.environ/AZURE_API_BASE
      api_key: os.environ/AZURE_API_KEY
      api_version: "2023-07-01-preview"
      rpm: 480
      tpm: 100000
      timeout: 300
      stream_timeout: 60
  - model_name: gpt-3.5-turbo
    litellm_params:
      model: gpt-3.5-turbo
      api_key: os.environ/OPENAI_API_KEY
      max_parallel_requests: 10
  - model_name: gpt-3.5-turbo-16k
    litellm_params:
      model: gpt-3.5-turbo-16k
      api_key: os.environ/OPENAI_API_KEY
  - model_name: gpt-4
    litellm_params:
      model: gpt-4
      api_key: os.environ/OPENAI_API_KEY

litellm_settings:
  drop_params: true
  num_retries: 3
  request_timeout: 10
  fallbacks: [{"gpt-3.5-turbo": ["gpt-4"]}]
  context_window_fallbacks: [{"gpt-3.5-turbo": ["gpt-3.5-turbo-16k"]}, {"gpt-4": ["gpt-3.5-turbo-16k"]}]
  allowed_fails: 3

router_settings:
  # Literal["simple-shuffle", "least-busy", "usage-based-routing","latency-based-routing"]
  routing_strategy: usage-based-routing-v2
  # all requests with `gpt-4` will be routed to models with `gpt-3.5-turbo`
  model_group_alias: {"gpt-4": "gpt-3.5-turbo"}
  num_retries: 2
  timeout: 30                                  # 30 seconds
  redis_host: os.environ/REDIS_HOST           # set this when using multiple litellm proxy deployments
  redis_password: os.environ/REDIS_PASSWORD
  redis_port: 1992
  retry_after: 5
  cooldown_time: 30
  enable_pre_call_checks: true
  content_policy_fallbacks: [{"gpt-4": ["gpt-3.5-turbo"]}]
"""


def _entries(*aliases: str, **params: Any) -> list[dict[str, Any]]:
    return [{"model_name": alias, "litellm_params": {"model": "gpt-4.1", **params}} for alias in aliases]


def _parse(router: dict[str, Any] | None = None, entries: list[dict[str, Any]] | None = None) -> ImportPlan:
    data: dict[str, Any] = {"model_list": entries if entries is not None else _entries("a", "b", "c")}
    if router is not None:
        data["router_settings"] = router
    return parse_litellm_data(data, CATALOG, origin="test.yaml")


def test_litellm_documented_router_settings(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(LITELLM_DOCUMENTED)
    plan = parse_litellm_config(path, CATALOG)
    assert plan.router_settings == {
        "routing_strategy": "usage-based-routing-v2",
        "num_retries": 2,  # router_settings wins over litellm_settings
        "allowed_fails": 3,  # only in litellm_settings
        "retry_after": 5.0,
        "cooldown_time": 30.0,
        "enable_pre_call_checks": True,
    }
    assert plan.fallbacks == {
        "general": {"gpt-3.5-turbo": ("gpt-4",)},
        "context_window": {"gpt-3.5-turbo": ("gpt-3.5-turbo-16k",), "gpt-4": ("gpt-3.5-turbo-16k",)},
        "content_policy": {"gpt-4": ("gpt-3.5-turbo",)},
    }
    assert plan.settings == {"drop_params": True, "request_timeout": 10.0}
    assert sorted(plan.warnings) == sorted(
        f"router_settings.{key} is not used by Turnout"
        for key in ("model_group_alias", "timeout", "redis_host", "redis_password", "redis_port")
    )
    azure, openai = plan.deployments[:2]
    assert (azure.limits, azure.timeout) == ({"rpm": 480, "tpm": 100000}, 300.0)
    assert openai.limits == {"max_parallel_requests": 10}
    assert "max_parallel_requests" not in openai.params and "rpm" not in azure.params


@pytest.mark.parametrize(
    ("stated", "strategy"),
    [*((name, name) for name in STRATEGIES), ("usage-based-routing", "usage-based-routing-v2")],
)
def test_every_strategy_and_the_old_usage_name(stated: str, strategy: str) -> None:
    assert _parse({"routing_strategy": stated}).router_settings == {"routing_strategy": strategy}


def test_unknown_strategy_is_named() -> None:
    with pytest.raises(
        ConfigError, match=r"test.yaml: router_settings.routing_strategy: unknown .*'fastest'"
    ):
        _parse({"routing_strategy": "fastest"})


@pytest.mark.parametrize(
    ("router", "message"),
    [
        ({"num_retries": -1}, "router_settings.num_retries: must be a whole number, 0 or more"),
        ({"num_retries": 1.5}, "num_retries: must be a whole number"),
        ({"allowed_fails": True}, "allowed_fails: must be a whole number"),
        ({"cooldown_time": "5"}, "cooldown_time: must be a number of seconds"),
        ({"retry_after": -0.5}, "retry_after: must be a number of seconds"),
        ({"enable_pre_call_checks": "yes"}, "enable_pre_call_checks: must be true or false"),
        ({"fallbacks": {"a": ["b"]}}, "router_settings.fallbacks: must be a list"),
        ({"fallbacks": ["a"]}, r"router_settings.fallbacks\[0\]: must be a mapping"),
        ({"context_window_fallbacks": [{"a": "b"}]}, r"context_window_fallbacks\[0\] \(a\): must be a list"),
    ],
)
def test_bad_router_settings_are_refused(router: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _parse(router)


def test_router_settings_section_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="router_settings: must be a mapping"):
        _parse(["simple-shuffle"])  # type: ignore[arg-type]


def test_fallbacks_warn_about_names_not_in_the_file() -> None:
    plan = _parse(
        {
            "fallbacks": [{"a": ["b", "a", "gpt-4o", "b"]}, {"a": ["c"]}, {"*": ["c"]}],
            "content_policy_fallbacks": [{"elsewhere": ["a"]}],
        }
    )
    assert plan.fallbacks == {
        "general": {"a": ("b", "gpt-4o"), "*": ("c",)},  # itself and repeats dropped, first list wins
        "content_policy": {"elsewhere": ("a",)},
    }
    assert plan.warnings == [
        "router_settings.fallbacks: 'gpt-4o' is not a model_name in this file "
        "(kept: another source may serve it)",
        "router_settings.fallbacks: 'a' is listed again; the first list is used",
        "router_settings.content_policy_fallbacks: 'elsewhere' is not a model_name in this file "
        "(kept: another source may serve it)",
    ]


def test_empty_fallbacks_and_sections() -> None:
    plan = _parse({"fallbacks": [], "context_window_fallbacks": [{"a": []}]})
    assert plan.fallbacks == {"context_window": {"a": ()}}
    assert _parse({}).router_settings == {} and _parse(None).fallbacks == {}


def test_alias_strategy_and_forced_params() -> None:
    entries = _entries("a", "a", "b")
    entries[0]["model_info"] = {"routing_strategy": "least-busy"}
    entries[1]["model_info"] = {"routing_strategy": "least-busy"}
    entries[1]["litellm_params"]["turnout_forced_params"] = {"temperature": 0, "seed": 7}
    entries[2]["litellm_params"].update(rpm=60, temperature=0.5)
    plan = _parse(entries=entries)
    assert plan.alias_strategies == {"a": "least-busy"}
    first, second, third = plan.deployments
    assert (first.forced_params, second.forced_params) == ({}, {"temperature": 0, "seed": 7})
    assert "turnout_forced_params" not in second.params
    assert (third.params, third.limits) == ({"temperature": 0.5}, {"rpm": 60})
    assert plan.warnings == []


def test_alias_strategy_unstated_entries_do_not_disagree() -> None:
    entries = _entries("a", "a")
    entries[1]["model_info"] = {"routing_strategy": "usage-based-routing"}
    assert _parse(entries=entries).alias_strategies == {"a": "usage-based-routing-v2"}


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        (
            {"routing_strategy": "ordered"},
            {"routing_strategy": "least-busy"},
            "'least-busy' disagrees with 'ordered'",
        ),
        (
            {},
            {"routing_strategy": "round-robin"},
            r"model_list\[1\] \(a\): unknown model_info.routing_strategy",
        ),
    ],
)
def test_alias_strategy_conflicts_are_refused(
    first: dict[str, Any], second: dict[str, Any], message: str
) -> None:
    entries = _entries("a", "a")
    entries[0]["model_info"], entries[1]["model_info"] = first, second
    with pytest.raises(ConfigError, match=message):
        _parse(entries=entries)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"turnout_forced_params": ["temperature"]}, "turnout_forced_params must be a mapping"),
        ({"max_parallel_requests": "ten"}, "litellm_params.max_parallel_requests must be an integer"),
        ({"tpm": -1}, "litellm_params.tpm must be 0 or more"),
    ],
)
def test_bad_deployment_routing_params(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _parse(entries=_entries("a", **params))
