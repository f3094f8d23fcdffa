"""Which backends answered is the operator's business: the headers that show it, and who gets them.

The master key (and an open gateway without one) gets x-turnout-deployment, x-turnout-deployment-id
(also as x-litellm-model-id), x-turnout-attempted and x-turnout-fallback; a virtual key gets none of
them unless `topology_headers_for_keys` is set. Two deployments of one provider and model at different
bases are told apart by their id: the config's model_info.id, else the deployment's id in SQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import golden_json
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway

MASTER = "sk-master-topology-4242"
ADMIN = {"authorization": f"Bearer {MASTER}"}
HI: list[Any] = [{"role": "user", "content": "Hi"}]
TOPOLOGY = (
    "x-turnout-deployment",
    "x-turnout-deployment-id",
    "x-litellm-model-id",
    "x-turnout-attempted",
    "x-turnout-fallback",
)
EAST, WEST, MAIN = "/east/v1/chat/completions", "/west/v1/chat/completions", "/main/v1/chat/completions"


def _config(url: str, **general: Any) -> dict[str, Any]:
    """`twins`: one provider and model at two bases, east (with a model_info.id) before west; `main`
    falls back to `twins`."""

    def entry(alias: str, base: str, **extra: Any) -> dict[str, Any]:
        return {
            "model_name": alias,
            "litellm_params": {"model": "openai/gpt-x", "api_base": url + base, **extra},
        }

    east = entry("twins", "/east/v1", order=1)
    east["model_info"] = {"id": "east-1"}
    return {
        "model_list": [east, entry("twins", "/west/v1", order=2), entry("main", "/main/v1")],
        # no cooldowns: the failures one test scripts must not change the order of the next
        "router_settings": {
            "routing_strategy": "ordered",
            "fallbacks": [{"main": ["twins"]}],
            "allowed_fails": 1000,
        },
        "general_settings": general,
    }


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    with running_gateway(tmp_path_factory.mktemp("topology"), _config(fake.url, master_key=MASTER)) as server:
        yield server


@pytest.fixture(scope="module")
def virtual_key(gateway: GatewayServer) -> str:
    created = httpx.post(gateway.url + "/key/generate", json={"key_alias": "team"}, headers=ADMIN)
    assert created.status_code == 200, created.text
    key: str = created.json()["key"]
    return key


def _answer(fake: FakeUpstream, path: str) -> None:
    fake.add("POST", path, json=golden_json("openai", "simple.response.json"))


def _fail(fake: FakeUpstream, path: str) -> None:
    fake.add("POST", path, status=500, json={"error": {"message": "boom", "type": "server_error"}})


def _chat(url: str, key: str | None, model: str, path: str = "/v1/chat/completions") -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    body = {"model": model, "messages": HI, "max_tokens": 16}
    return httpx.post(url + path, json=body, headers=headers, timeout=10)


def _topology(response: httpx.Response) -> dict[str, str]:
    return {name: response.headers[name] for name in TOPOLOGY if name in response.headers}


def _west_id(gateway: GatewayServer) -> str:
    rows = httpx.get(gateway.url + "/turnout/deployments", headers=ADMIN).json()["data"]
    twins = {row["model_id"]: row["id"] for row in rows if row["alias"] == "twins"}
    assert set(twins) == {"east-1", None}  # the operator's view shows the same ids
    return str(twins[None])


def test_the_master_key_sees_which_deployment_answered(gateway: GatewayServer, fake: FakeUpstream) -> None:
    _answer(fake, EAST)
    answer = _chat(gateway.url, MASTER, "twins")
    assert answer.status_code == 200
    assert _topology(answer) == {
        "x-turnout-deployment": "openai/gpt-x",
        "x-turnout-deployment-id": "east-1",
        "x-litellm-model-id": "east-1",
        "x-turnout-attempted": "openai/gpt-x=ok",
    }


def test_twins_are_told_apart_by_their_id(gateway: GatewayServer, fake: FakeUpstream) -> None:
    _fail(fake, EAST)
    _answer(fake, WEST)
    answer = _chat(gateway.url, MASTER, "twins")
    assert answer.status_code == 200
    assert answer.headers["x-turnout-attempted"] == "openai/gpt-x=500, openai/gpt-x=ok"
    assert answer.headers["x-turnout-deployment"] == "openai/gpt-x"  # the same for both
    west = _west_id(gateway)  # no model_info.id: the deployment's own id
    assert answer.headers["x-turnout-deployment-id"] == answer.headers["x-litellm-model-id"] == west


def test_a_virtual_key_sees_none_of_it(gateway: GatewayServer, fake: FakeUpstream, virtual_key: str) -> None:
    _fail(fake, EAST)
    _answer(fake, WEST)
    failed_over = _chat(gateway.url, virtual_key, "twins")
    assert failed_over.status_code == 200 and _topology(failed_over) == {}
    assert failed_over.headers["x-turnout-attempts"] == "2"  # how many tries, not which backends
    assert failed_over.headers["x-turnout-request-id"]

    _fail(fake, MAIN)
    _answer(fake, EAST)
    fell_back = _chat(gateway.url, virtual_key, "main")
    assert fell_back.status_code == 200 and _topology(fell_back) == {}
    _fail(fake, MAIN)
    _answer(fake, EAST)
    assert _chat(gateway.url, MASTER, "main").headers["x-turnout-fallback"] == "main -> twins (failure)"

    fake.clear()
    _fail(fake, EAST)
    _fail(fake, WEST)
    refused = _chat(gateway.url, virtual_key, "twins")
    assert refused.status_code == 500 and _topology(refused) == {}
    assert refused.headers["x-turnout-request-id"]
    assert _chat(gateway.url, MASTER, "twins").headers["x-turnout-attempted"] == (
        "openai/gpt-x=500, openai/gpt-x=500"
    )


def test_a_dialect_route_follows_the_same_rule(
    gateway: GatewayServer, fake: FakeUpstream, virtual_key: str
) -> None:
    _answer(fake, EAST)
    as_key = _chat(gateway.url, virtual_key, "twins", "/v1/messages")
    assert as_key.status_code == 200 and as_key.json()["type"] == "message", as_key.text
    assert _topology(as_key) == {}
    _answer(fake, EAST)
    as_master = _chat(gateway.url, MASTER, "twins", "/v1/messages")
    assert as_master.headers["x-litellm-model-id"] == "east-1"


def test_a_setting_shows_it_to_virtual_keys(tmp_path: Path, fake: FakeUpstream) -> None:
    config = _config(fake.url, master_key=MASTER)
    with running_gateway(tmp_path, config, topology_headers_for_keys=True) as server:
        created = httpx.post(server.url + "/key/generate", json={}, headers=ADMIN)
        _answer(fake, EAST)
        answer = _chat(server.url, created.json()["key"], "twins")
    assert answer.status_code == 200
    assert _topology(answer)["x-turnout-deployment-id"] == "east-1"


def test_an_open_gateway_shows_it(tmp_path: Path, fake: FakeUpstream) -> None:
    with running_gateway(tmp_path, _config(fake.url)) as server:
        _answer(fake, EAST)
        answer = _chat(server.url, None, "twins")
    assert answer.status_code == 200
    assert _topology(answer)["x-litellm-model-id"] == "east-1"
