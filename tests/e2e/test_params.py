"""Parameters: where each lands upstream, native pass-through, per-model overrides, JSON modes, drops."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.e2e.conftest import OLLAMA, OPENAI, Backend, two_backend_config
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway

HI: list[Any] = [{"role": "user", "content": "Hi"}]
TUNED = Backend("ollama", "tuned-ollama", "/api/chat")
TUNED_OPENAI = Backend("openai", "tuned-openai", "/v1/chat/completions")
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
}


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """The two plain backends, plus one alias per backend with per-model overrides in the config."""
    config = two_backend_config(
        fake.url,
        TUNED.entry(fake.url, num_ctx=4096, temperature=0.1),
        TUNED_OPENAI.entry(fake.url, temperature=0.1, top_k=40),
    )
    with running_gateway(tmp_path_factory.mktemp("params"), config) as server:
        yield server


def test_sampling_parameters_land_in_ollama_options(client: openai.OpenAI, fake: FakeUpstream) -> None:
    OLLAMA.answer(fake, "stop")
    client.chat.completions.create(
        model=OLLAMA.alias,
        messages=HI,
        temperature=0.7,
        top_p=0.9,
        seed=42,
        stop=["\n\n", "END"],
        max_tokens=64,
        presence_penalty=0.5,
        frequency_penalty=0.25,
    )
    sent = fake.last.json
    assert sent["options"] == {
        "temperature": 0.7,
        "top_p": 0.9,
        "seed": 42,
        "stop": ["\n\n", "END"],
        "num_predict": 64,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
    }
    assert not {"temperature", "top_p", "seed", "stop", "max_tokens"} & set(sent)


def test_single_stop_string_becomes_a_list(client: openai.OpenAI, fake: FakeUpstream) -> None:
    OLLAMA.answer(fake, "stop")
    client.chat.completions.create(model=OLLAMA.alias, messages=HI, stop="END", max_completion_tokens=8)
    assert fake.last.json["options"] == {"stop": ["END"], "num_predict": 8}


def test_parameters_pass_through_to_openai(client: openai.OpenAI, fake: FakeUpstream) -> None:
    OPENAI.answer(fake, "stop")
    client.chat.completions.create(
        model=OPENAI.alias, messages=HI, temperature=0.7, top_p=0.9, seed=42, stop=["END"], max_tokens=64
    )
    sent = fake.last.json
    assert (sent["temperature"], sent["top_p"], sent["seed"], sent["stop"], sent["max_tokens"]) == (
        0.7, 0.9, 42, ["END"], 64,
    )  # fmt: skip
    assert sent["model"] == "test-model"


def test_native_ollama_parameters_pass_through(client: openai.OpenAI, fake: FakeUpstream) -> None:
    OLLAMA.answer(fake, "native_options")
    client.chat.completions.create(
        model=OLLAMA.alias,
        messages=HI,
        temperature=0.2,
        extra_body={"num_ctx": 8192, "keep_alive": "5m", "options": {"top_k": 5}},
    )
    sent = fake.last.json
    assert sent["keep_alive"] == "5m"
    assert sent["options"] == {"top_k": 5, "num_ctx": 8192, "temperature": 0.2}


def test_overrides_apply_when_the_request_is_silent(client: openai.OpenAI, fake: FakeUpstream) -> None:
    TUNED.answer(fake, "simple")
    client.chat.completions.create(model=TUNED.alias, messages=HI)
    assert fake.last.json["options"] == {"num_ctx": 4096, "temperature": 0.1}


def test_the_request_beats_the_overrides(client: openai.OpenAI, fake: FakeUpstream) -> None:
    TUNED.answer(fake, "simple")
    client.chat.completions.create(model=TUNED.alias, messages=HI, temperature=0.9)
    assert fake.last.json["options"] == {"num_ctx": 4096, "temperature": 0.9}
    TUNED.answer(fake, "simple")
    client.chat.completions.create(model=TUNED.alias, messages=HI, extra_body={"num_ctx": 2048})
    assert fake.last.json["options"] == {"num_ctx": 2048, "temperature": 0.1}


def test_overrides_for_openai(client: openai.OpenAI, fake: FakeUpstream) -> None:
    TUNED_OPENAI.answer(fake, "simple")
    client.chat.completions.create(model=TUNED_OPENAI.alias, messages=HI)
    assert (fake.last.json["temperature"], fake.last.json["top_k"]) == (0.1, 40)
    TUNED_OPENAI.answer(fake, "simple")
    client.chat.completions.create(model=TUNED_OPENAI.alias, messages=HI, temperature=1.5)
    assert (fake.last.json["temperature"], fake.last.json["top_k"]) == (1.5, 40)


def test_json_object_mode(client: openai.OpenAI, fake: FakeUpstream, backend: Backend) -> None:
    backend.answer(fake, "json_mode")
    answer = client.chat.completions.create(
        model=backend.alias, messages=HI, response_format={"type": "json_object"}
    )
    assert answer.choices[0].message.content == '{"capital": "Paris"}'
    sent = fake.last.json
    if backend.is_ollama:
        assert sent["format"] == "json" and "response_format" not in sent
    else:
        assert sent["response_format"] == {"type": "json_object"}


def test_json_schema_mode(client: openai.OpenAI, fake: FakeUpstream, backend: Backend) -> None:
    backend.answer(fake, "json_schema")
    response_format: Any = {"type": "json_schema", "json_schema": {"name": "place", "schema": SCHEMA}}
    client.chat.completions.create(model=backend.alias, messages=HI, response_format=response_format)
    sent = fake.last.json
    if backend.is_ollama:
        assert sent["format"] == SCHEMA
    else:
        assert sent["response_format"] == response_format


def test_unsupported_parameter_is_dropped_with_a_warning(client: openai.OpenAI, fake: FakeUpstream) -> None:
    OLLAMA.answer(fake, "simple")
    raw = client.chat.completions.with_raw_response.create(
        model=OLLAMA.alias, messages=HI, logit_bias={"50256": -100}, user="someone"
    )
    warning = raw.headers["x-turnout-warning"]
    assert "logit_bias" in warning and "user" in warning and "ollama" in warning
    assert not {"logit_bias", "user"} & set(fake.last.json)
    assert raw.parse().choices[0].message.content


def test_no_warning_when_nothing_is_dropped(
    client: openai.OpenAI, fake: FakeUpstream, backend: Backend
) -> None:
    backend.answer(fake, "simple")
    raw = client.chat.completions.with_raw_response.create(model=backend.alias, messages=HI, temperature=0.3)
    assert "x-turnout-warning" not in raw.headers
    assert raw.headers["x-turnout-deployment"] == f"{backend.name}/test-model"


def test_n_above_one_is_refused_for_ollama(client: openai.OpenAI, fake: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=OLLAMA.alias, messages=HI, n=2)
    assert caught.value.param == "n"
    assert fake.requests == []
