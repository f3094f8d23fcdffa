"""LiteLLM proxy configs parsed into import plans."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from engine.config.litellm import load_model_set, parse_litellm_config, parse_litellm_data
from engine.config.plan import ConfigError, ImportPlan
from engine.mapping.loader import load_registry
from engine.settings import project_path
from tests.support.catalog import TEST_CATALOG

CATALOG = TEST_CATALOG

SEED_LIKE = """
model_list:
  - model_name: openai-gpt41
    litellm_params:
      model: gpt-4.1
      api_key: os.environ/OPENAI_API_KEY
    model_info:
      supports_function_calling: true
      max_input_tokens: 1000000
  - model_name: azure-gpt41
    litellm_params:
      model: azure/gpt-41-deployment
      api_base: os.environ/AZURE_API_BASE
      api_key: os.environ/AZURE_API_KEY
      api_version: os.environ/AZURE_API_VERSION
  - model_name: ollama-llama32
    litellm_params:
      model: ollama/llama3.2
      api_base: os.environ/OLLAMA_API_BASE
      num_ctx: 8192
      temperature: 0.2
      rpm: 60
      max_retries: 3
    model_info:
      supports_function_calling: true
      supports_parallel_function_calling: true
      base_model: llama
  - model_name: ollama-llama32
    litellm_params:
      model: ollama_chat/llama3.2
      order: 2
      weight: 0.5
  - model_name: local-vllm
    litellm_params:
      model: hosted_vllm/meta/llama-3-8b
      api_base: http://gpu:8000/v1
      api_key: sk-literal
    model_info:
      id: vllm-main
      mode: chat
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
      cache_read_input_token_cost: 0.0000005
  - model_name: ollama-embedding
    litellm_params:
      model: ollama/nomic-embed-text
      api_base: os.environ/OLLAMA_API_BASE
    model_info:
      mode: embedding
litellm_settings:
  drop_params: true
  set_verbose: false
  request_timeout: 120
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
router_settings:
  routing_strategy: simple-shuffle
"""


def _plan(tmp_path: Path, text: str = SEED_LIKE, name: str = "config.yaml") -> ImportPlan:
    path = tmp_path / name
    path.write_text(text)
    return parse_litellm_config(path, CATALOG)


def test_seed_like_config_parses(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    assert [spec.alias for spec in plan.deployments] == [
        "openai-gpt41", "azure-gpt41", "ollama-llama32", "ollama-llama32", "local-vllm", "ollama-embedding",
    ]  # fmt: skip
    assert plan.settings == {
        "drop_params": True,
        "request_timeout": 120.0,
        "master_key": "os.environ/LITELLM_MASTER_KEY",
    }
    first = plan.deployments[0]
    assert (first.provider, first.upstream_model, first.api_key) == (
        "openai",
        "gpt-4.1",
        "os.environ/OPENAI_API_KEY",
    )
    assert first.capabilities.tools is True
    assert first.capabilities.max_input_tokens == 1_000_000
    assert plan.deployments[-1].mode == "embedding"


def test_prefixes_split_only_when_known(tmp_path: Path) -> None:
    specs = _plan(tmp_path).deployments
    assert (specs[1].provider, specs[1].upstream_model) == ("openai", "azure/gpt-41-deployment")
    assert (specs[2].provider, specs[2].upstream_model) == ("ollama", "llama3.2")
    assert (specs[3].provider, specs[3].upstream_model) == ("ollama", "llama3.2")
    assert (specs[4].provider, specs[4].upstream_model) == ("openai", "meta/llama-3-8b")


def test_custom_llm_provider_is_honoured() -> None:
    data = {
        "model_list": [
            {"model_name": "a", "litellm_params": {"model": "llama3.2", "custom_llm_provider": "ollama"}},
            {
                "model_name": "b",
                "litellm_params": {"model": "ollama/x", "custom_llm_provider": "ollama_chat"},
            },
        ]
    }
    specs = parse_litellm_data(data, CATALOG).deployments
    assert [(spec.provider, spec.upstream_model) for spec in specs] == [
        ("ollama", "llama3.2"),
        ("ollama", "x"),
    ]


def test_env_refs_are_kept_as_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_API_BASE", "https://resolved.example")
    azure = _plan(tmp_path).deployments[1]
    assert azure.api_base == "os.environ/AZURE_API_BASE"
    assert azure.api_key == "os.environ/AZURE_API_KEY"
    assert azure.api_version == "os.environ/AZURE_API_VERSION"


def test_params_limits_keys_and_costs(tmp_path: Path) -> None:
    specs = _plan(tmp_path).deployments
    llama, second, vllm = specs[2], specs[3], specs[4]
    assert llama.params == {"num_ctx": 8192, "temperature": 0.2}
    assert llama.limits == {"rpm": 60}
    assert llama.extra_capabilities == {"supports_parallel_function_calling": True}
    assert (llama.source_key, second.source_key) == ("ollama-llama32#0", "ollama-llama32#1")
    assert (second.priority, second.weight) == (2, 0.5)
    assert vllm.source_key == "vllm-main"
    assert vllm.costs == {
        "input_token": Decimal("0.000001"),
        "output_token": Decimal("0.000002"),
        "cached_input_token": Decimal("0.0000005"),
    }


def test_unknown_keys_warned_once_per_path(tmp_path: Path) -> None:
    warnings = _plan(tmp_path).warnings
    assert "litellm_settings.set_verbose is not used by Turnout" in warnings
    assert "model_list[].litellm_params.max_retries is not used by Turnout" in warnings
    assert "model_list[].model_info.base_model is not used by Turnout" in warnings
    assert len(warnings) == len(set(warnings)) == 3


def test_router_settings_of_the_seed_like_file(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    assert plan.router_settings == {"routing_strategy": "simple-shuffle"}
    assert plan.fallbacks == {} and plan.alias_strategies == {}


def test_json_is_accepted(tmp_path: Path) -> None:
    text = '{"model_list": [{"model_name": "m", "litellm_params": {"model": "lm_studio/qwen"}}]}'
    plan = _plan(tmp_path, text, "config.json")
    assert (plan.deployments[0].provider, plan.deployments[0].upstream_model) == ("openai", "qwen")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- just a list", "must hold a mapping"),
        ("model_list: {a: 1}", "model_list must be a list"),
        ("model_list:\n  - litellm_params: {model: x}", "model_list[0]: model_name is missing"),
        ("model_list:\n  - model_name: m1\n  - model_name: m2\n    litellm_params: {}", "model_list[0] (m1)"),
        (
            "model_list:\n  - model_name: ok\n    litellm_params: {model: a, weight: heavy}",
            "weight must be a number",
        ),
        ("model_list: [\n", "not valid YAML"),
    ],
)
def test_malformed_files_name_the_file_and_entry(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _plan(tmp_path, text)
    assert message in str(caught.value)
    assert str(tmp_path / "config.yaml") in str(caught.value)


def test_missing_model_names_the_entry(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"model_list\[1\] \(m2\): litellm_params.model is missing"):
        _plan(
            tmp_path, "model_list:\n  - model_name: m1\n    litellm_params: {model: a}\n  - model_name: m2\n"
        )


def test_default_model_set_parses_cleanly() -> None:
    plan = load_model_set(project_path("mappings") / "models" / "defaults.yaml", CATALOG)
    assert plan.warnings == []
    by_alias = {spec.alias: spec for spec in plan.deployments}
    assert len(by_alias) == len(plan.deployments) == 20
    assert (by_alias["gpt-4o"].provider, by_alias["gpt-4o"].upstream_model) == ("ollama", "qwen3:32b")
    assert by_alias["gpt-4o"].api_base == "os.environ/TURNOUT_OLLAMA_URL"
    assert by_alias["text-embedding-ada-002"].mode == "embedding"
    assert by_alias["gpt-4-vision-preview"].capabilities.vision is True
    assert by_alias["o1-mini"].capabilities.reasoning is True
    whisper = by_alias["whisper-1"]
    assert (whisper.provider, whisper.upstream_model, whisper.mode) == (
        "openai",
        "whisper-1",
        "audio_transcription",
    )
    assert whisper.costs == {"audio_second": Decimal("0.0001")}
    assert by_alias["dall-e-3"].costs == {"image": Decimal("0.04")}


def test_default_rerank_models_reach_their_mappings_with_their_prices() -> None:
    catalog = load_registry(project_path("mappings")).catalog()
    plan = load_model_set(project_path("mappings") / "models" / "defaults.yaml", catalog)
    by_alias = {spec.alias: spec for spec in plan.deployments}
    rerank = by_alias["rerank-v3.5"]
    assert (rerank.provider, rerank.upstream_model, rerank.mode) == ("cohere", "rerank-v3.5", "rerank")
    assert rerank.costs == {"search_unit": Decimal("0.002")}  # $2.00 per 1,000 searches
    jina = by_alias["jina-reranker-v2-base-multilingual"]
    assert (jina.provider, jina.mode, jina.costs) == ("jina", "rerank", {"input_token": Decimal("1.8E-8")})
