"""A LiteLLM proxy config shaped like a real user's (seed 001): it imports, warns about what Turnout does
not use, and serves its Ollama and prefix-less OpenAI entries, with the master key from the environment."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from tests.e2e.conftest import golden_json
from tests.fakes import FakeUpstream
from tests.support import running_gateway, sdk_types
from tests.support.sdk_types import openai_client

# A trimmed copy of the seed's litellm_config.yaml: every kind of entry it has, its settings sections,
# and its os.environ/ references. Only the OpenAI api_base is added (the test may not leave 127.0.0.1).
SEED_CONFIG = """\
model_list:
  - model_name: openai-gpt41
    litellm_params:
      model: gpt-4.1
      api_key: os.environ/OPENAI_API_KEY
      api_base: os.environ/E2E_OPENAI_BASE
    model_info:
      supports_function_calling: true
      max_input_tokens: 1000000
  - model_name: azure-gpt41
    litellm_params:
      model: azure/gpt-41-deployment
      api_base: os.environ/AZURE_API_BASE
      api_key: os.environ/AZURE_API_KEY
      api_version: os.environ/AZURE_API_VERSION
    model_info:
      supports_function_calling: true
  - model_name: mistral-large-3
    litellm_params:
      model: mistral/mistral-large-latest
      api_key: os.environ/MISTRAL_API_KEY
    model_info:
      supports_function_calling: true
      max_input_tokens: 256000
  - model_name: ollama-llama32
    litellm_params:
      model: ollama/llama3.2
      api_base: os.environ/OLLAMA_API_BASE
    model_info:
      supports_function_calling: true  # Fine-tuned for function calling
  - model_name: ollama-phi4
    litellm_params:
      model: ollama/phi4
      api_base: os.environ/OLLAMA_API_BASE
    model_info:
      supports_function_calling: false  # Limited support
  - model_name: openai-embedding-large
    litellm_params:
      model: text-embedding-3-large
      api_key: os.environ/OPENAI_API_KEY
  - model_name: ollama-embedding
    litellm_params:
      model: ollama/nomic-embed-text
      api_base: os.environ/OLLAMA_API_BASE
  - model_name: openai-whisper
    litellm_params:
      model: whisper-1
      api_key: os.environ/OPENAI_API_KEY

litellm_settings:
  # Drop unsupported params instead of erroring
  drop_params: true
  # Enable detailed logging
  set_verbose: false
  # Request timeout
  request_timeout: 120

general_settings:
  # Master key for proxy authentication
  master_key: os.environ/LITELLM_MASTER_KEY
"""
MASTER_KEY = "sk-litellm-master-change-this"
HI: list[Any] = [{"role": "user", "content": "Hello, test!"}]


def test_seed_001_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeUpstream() as fake:
        monkeypatch.setenv("LITELLM_MASTER_KEY", MASTER_KEY)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-from-env")
        monkeypatch.setenv("OLLAMA_API_BASE", fake.url)
        monkeypatch.setenv("E2E_OPENAI_BASE", fake.url + "/v1")
        for name in ("AZURE_API_BASE", "AZURE_API_KEY", "AZURE_API_VERSION", "MISTRAL_API_KEY"):
            monkeypatch.delenv(name, raising=False)
        config: dict[str, Any] = yaml.safe_load(SEED_CONFIG)
        with caplog.at_level(logging.WARNING), running_gateway(tmp_path, config) as gateway:
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert any("litellm_settings.set_verbose is not used" in w for w in warnings), warnings
            assert gateway.settings.drop_params is True
            assert gateway.settings.request_timeout == 120
            assert gateway.settings.master_key == MASTER_KEY

            listed = sdk_types.get(gateway.url + "/models", headers={"authorization": f"Bearer {MASTER_KEY}"})
            assert listed.status_code == 200
            assert {m["id"] for m in listed.json()["data"]} == {e["model_name"] for e in config["model_list"]}

            client = openai_client(gateway.url, MASTER_KEY)
            fake.add("POST", "/api/chat", json=golden_json("ollama", "simple.response.json"))
            answer = client.chat.completions.create(model="ollama-llama32", messages=HI, logit_bias={"1": 1})
            assert answer.choices[0].message.content == "Hello! It's nice to meet you."
            assert (fake.last.path, fake.last.json["model"]) == ("/api/chat", "llama3.2")
            assert "authorization" not in fake.last.headers

            fake.add("POST", "/v1/chat/completions", json=golden_json("openai", "simple.response.json"))
            answer = client.chat.completions.create(model="openai-gpt41", messages=HI)
            assert answer.choices[0].message.content == "Hello! It's nice to meet you."
            assert (fake.last.path, fake.last.json["model"]) == ("/v1/chat/completions", "gpt-4.1")
            assert fake.last.headers["authorization"] == "Bearer sk-openai-from-env"

            with pytest.raises(openai.AuthenticationError):
                openai_client(gateway.url, "sk-wrong").models.list()
