"""Own mapping folders beside the bundled ones: a new provider that extends the bundled `openai`, and a
bundled provider (`groq`) overridden by name, served over HTTP through the openai SDK."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from engine.cli import main
from engine.mapping.loader import check_folder, load_registry
from engine.settings import Settings, project_path
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway

ACME = """\
extends: openai
name: acme
description: Acme's OpenAI-compatible server, with a team header
privacy_tier: self-hosted
api_base: http://acme.invalid/v1
litellm_prefixes: [acme]
headers:
  X-Acme-Team: blue
"""
# extends its own name: the bundled groq.yaml, with one header more
GROQ = """\
extends: groq
headers:
  X-Own-Override: "yes"
"""
ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
HI = [{"role": "user", "content": "Say hi"}]


def own_folder(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    root = tmp_path_factory.mktemp("own")
    own = own_folder(root / "own", {"providers/acme.yaml": ACME, "providers/groq.yaml": GROQ})
    config = {
        "model_list": [
            {
                "model_name": "acme-chat",
                "litellm_params": {
                    "model": "acme/acme-1",
                    "api_base": fake.url + "/v1",
                    "api_key": "acme-key",
                },
            },
            {
                "model_name": "fast",
                "litellm_params": {
                    "model": "groq/llama-3",
                    "api_base": fake.url + "/openai/v1",
                    "api_key": "gk",
                },
            },
            # prefix-less: the default provider, still openai though groq.yaml was replaced
            {"model_name": "plain", "litellm_params": {"model": "gpt-4.1", "api_base": fake.url + "/v1"}},
        ]
    }
    with running_gateway(root, config, mappings_path=[own], reload_interval=0) as server:
        yield server


def test_an_own_provider_extends_the_bundled_openai(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", "/v1/chat/completions", json=ANSWER)
    answer = client.chat.completions.create(model="acme-chat", messages=HI)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "hi"
    sent = fake.last
    assert sent.headers["x-acme-team"] == "blue"  # its own
    assert sent.headers["authorization"] == "Bearer acme-key"  # inherited from the bundled openai
    assert sent.json["model"] == "acme-1"


def test_an_own_file_overrides_a_bundled_provider_by_name(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", "/openai/v1/chat/completions", json=ANSWER)
    client.chat.completions.create(model="fast", messages=HI)  # type: ignore[arg-type]
    assert fake.last.headers["x-own-override"] == "yes"
    assert fake.last.headers["authorization"] == "Bearer gk"
    # the rest is the bundled groq.yaml's: it rejects logprobs, which openai passes
    with pytest.raises(openai.BadRequestError, match="logprobs"):
        client.chat.completions.create(model="fast", messages=HI, logprobs=True)  # type: ignore[arg-type]


def test_the_default_provider_stays_the_bundled_one(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", "/v1/chat/completions", json=ANSWER)
    client.chat.completions.create(model="plain", messages=HI)  # type: ignore[arg-type]
    assert "x-acme-team" not in fake.last.headers and "x-own-override" not in fake.last.headers


def test_gateway_registry_knows_both(gateway: GatewayServer) -> None:
    providers = gateway.gateway.registry.providers
    assert providers["acme"].privacy_tier == "self-hosted"
    assert "groq@1" not in providers  # the replaced file is a base, not a provider
    assert gateway.gateway.registry.default_provider == "openai"


def test_a_later_folder_replaces_a_file_whole(tmp_path: Path) -> None:
    minimal = """\
name: groq
api_base: http://groq.invalid/v1
operations:
  chat:
    url: "{{ deployment.api_base }}/chat/completions"
    params: {supported: "*"}
    request: "{{ request }}"
    response: passthrough
"""
    own = own_folder(tmp_path / "own", {"providers/groq.yaml": minimal})
    groq = load_registry([project_path("mappings"), own]).providers["groq"]
    assert set(groq.operations) == {"chat"}  # nothing of the bundled groq.yaml's operations is left
    assert groq.operations["chat"].stream is None
    # the default provider, replaced without saying so, stays the default (not the first by name)
    base = own_folder(
        tmp_path / "base",
        {
            "providers/alpha.yaml": minimal.replace("groq", "alpha"),
            "providers/zeta.yaml": "default_provider: true\n" + minimal.replace("groq", "zeta"),
        },
    )
    replacing = own_folder(tmp_path / "replacing", {"providers/zeta.yaml": minimal.replace("groq", "zeta")})
    assert load_registry([base, replacing]).default_provider == "zeta"


def test_later_folders_win_over_earlier_ones(tmp_path: Path) -> None:
    first = own_folder(tmp_path / "first", {"providers/acme.yaml": ACME})
    second = own_folder(tmp_path / "second", {"providers/acme.yaml": ACME.replace("blue", "red")})
    registry = load_registry([project_path("mappings"), first, second])
    headers = registry.providers["acme"].headers
    assert headers is not None and headers({}, {"api_key": None})["X-Acme-Team"] == "red"


def test_extends_unknown_names_the_own_file(tmp_path: Path) -> None:
    own = own_folder(
        tmp_path / "own", {"providers/acme.yaml": ACME.replace("extends: openai", "extends: nope")}
    )
    [problem] = check_folder([project_path("mappings"), own])
    assert str(own / "providers" / "acme.yaml") in problem and "extends unknown mapping 'nope'" in problem


def test_mappings_check_reads_own_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    own = own_folder(tmp_path / "own", {"providers/acme.yaml": ACME})
    assert main(["mappings", "check", "--mappings", str(own)]) == 0
    bundled = len(list((project_path("mappings") / "providers").glob("*.yaml")))
    assert (
        f"{bundled + 1} provider mappings and 2 dialect mappings in {project_path('mappings')}, {own}"
        in capsys.readouterr().out
    )
    broken = own_folder(tmp_path / "broken", {"providers/acme.yaml": ACME + "bogus: 1\n"})
    assert main(["mappings", "check", "--mappings", str(own), "--mappings", str(broken)]) == 1
    assert "acme.yaml:9: error: unknown key 'bogus'" in capsys.readouterr().err


def test_the_environment_lists_folders_like_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = own_folder(tmp_path / "a", {}), own_folder(tmp_path / "b", {})
    first.mkdir(exist_ok=True)
    second.mkdir(exist_ok=True)
    monkeypatch.setenv("TURNOUT_MAPPINGS_PATH", f"{first}{os.pathsep}{second}")
    assert Settings().mapping_folders == (project_path("mappings"), first, second)
    monkeypatch.setenv("TURNOUT_MAPPINGS_PATH", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="is not a folder"):
        Settings()
