"""Hot reload over HTTP: a changed mapping or config file is served from the next request on; an invalid
one keeps the last good version serving and is reported (log, readiness, metrics); a request in flight
during a swap completes with the version it started with."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from engine.settings import project_path
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway
from tests.support.reload import readiness, rewrite, wait_for_readiness
from tests.support.sdk_types import openai_client


def acme(version: str) -> str:
    """An own provider extending the bundled openai; its answers say which version translated them."""
    return f"""\
extends: openai
name: acme
api_base: http://acme.invalid/v1
litellm_prefixes: [acme]
operations:
  chat:
    response:
      $merge:
        - "{{{{ response }}}}"
        - system_fingerprint: acme-{version}
"""


ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
HI: Any = [{"role": "user", "content": "Say hi"}]


def entry(alias: str, fake: FakeUpstream) -> dict[str, Any]:
    return {"model_name": alias, "litellm_params": {"model": "acme/acme-1", "api_base": fake.url + "/v1"}}


@pytest.fixture
def own(tmp_path: Path) -> Path:
    folder = tmp_path / "own"
    (folder / "providers").mkdir(parents=True)
    (folder / "providers" / "acme.yaml").write_text(acme("v1"))
    return folder


@pytest.fixture
def gateway(tmp_path: Path, own: Path, fake: FakeUpstream) -> Iterator[GatewayServer]:
    config = {"model_list": [entry("acme-chat", fake)]}
    with running_gateway(
        tmp_path, config, mappings_path=[own], reload_interval=0.02, metrics_max_age=0
    ) as server:
        yield server


@pytest.fixture
def client(gateway: GatewayServer) -> openai.OpenAI:
    return openai_client(gateway.v1, "unused")


def fingerprint(client: openai.OpenAI, fake: FakeUpstream, alias: str = "acme-chat") -> str | None:
    fake.add("POST", "/v1/chat/completions", json=ANSWER)
    return client.chat.completions.create(model=alias, messages=HI).system_fingerprint


def mappings_version(body: dict[str, Any]) -> int:
    return int(body["reload"]["mappings"]["version"])


def metric(gateway: GatewayServer, name: str) -> float:
    for line in httpx.get(gateway.url + "/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_a_valid_change_is_served_from_the_next_request(
    gateway: GatewayServer, client: openai.OpenAI, fake: FakeUpstream, own: Path
) -> None:
    assert fingerprint(client, fake) == "acme-v1"
    assert metric(gateway, "turnout_mappings_version") == 1
    rewrite(own / "providers" / "acme.yaml", acme("v2"))
    wait_for_readiness(gateway.url, lambda body: mappings_version(body) == 2, "mappings version 2")
    assert fingerprint(client, fake) == "acme-v2"
    assert metric(gateway, "turnout_mappings_version") == 2
    assert metric(gateway, "turnout_mappings_reload_failures_total") == 0


def test_an_invalid_change_keeps_the_last_good_version(
    gateway: GatewayServer,
    client: openai.OpenAI,
    fake: FakeUpstream,
    own: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = acme("v2").replace("litellm_prefixes", "litellm_prefixez")
    with caplog.at_level(logging.ERROR, logger="turnout.reload"):
        rewrite(own / "providers" / "acme.yaml", broken)
        body = wait_for_readiness(
            gateway.url, lambda body: "error" in body["reload"]["mappings"], "a refused mapping change"
        )
    assert body["status"] == "ok"  # still ready: the last good version serves
    detail = body["reload"]["mappings"]
    assert detail["version"] == 1 and detail["failures"] == 1
    assert "own/providers/acme.yaml:4: unknown key 'litellm_prefixez'" in detail["error"]
    assert str(own) not in detail["error"]  # readiness names folders, not the server's paths
    assert any(
        "refused a change of the mappings" in r.getMessage() and str(own) in r.getMessage()
        for r in caplog.records
    )
    assert metric(gateway, "turnout_mappings_reload_failures_total") == 1
    assert fingerprint(client, fake) == "acme-v1"
    # fixed: served, and the error is gone
    rewrite(own / "providers" / "acme.yaml", acme("v3"))
    body = wait_for_readiness(gateway.url, lambda body: mappings_version(body) == 2, "the fixed mappings")
    assert "error" not in body["reload"]["mappings"] and body["reload"]["mappings"]["failures"] == 1
    assert fingerprint(client, fake) == "acme-v3"


def test_a_request_in_flight_completes_with_the_version_it_started_with(
    gateway: GatewayServer, client: openai.OpenAI, fake: FakeUpstream, own: Path
) -> None:
    fake.add("POST", "/v1/chat/completions", json=ANSWER, hold=True)
    answers: list[str | None] = []
    in_flight = threading.Thread(
        target=lambda: answers.append(
            client.chat.completions.create(model="acme-chat", messages=HI).system_fingerprint
        )
    )
    in_flight.start()
    wait_for_readiness(gateway.url, lambda _body: fake.holding == 1, "the request to reach the upstream")
    rewrite(own / "providers" / "acme.yaml", acme("v2"))
    wait_for_readiness(gateway.url, lambda body: mappings_version(body) == 2, "mappings version 2")
    fake.release_held()
    in_flight.join(timeout=30)
    assert answers == ["acme-v1"]  # its answer translated by the mappings it started with
    assert fingerprint(client, fake) == "acme-v2"


def test_a_changed_config_file_is_imported_again(
    gateway: GatewayServer, client: openai.OpenAI, fake: FakeUpstream
) -> None:
    config_file = gateway.settings.config
    assert config_file is not None
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="acme-two", messages=HI)
    config = {"model_list": [entry("acme-chat", fake), entry("acme-two", fake)]}
    rewrite(config_file, yaml.safe_dump(config))
    wait_for_readiness(gateway.url, lambda body: body["reload"]["config"]["version"] == 2, "the new config")
    assert fingerprint(client, fake, "acme-two") == "acme-v1"
    assert {model.id for model in client.models.list()} == {"acme-chat", "acme-two"}
    # an invalid file: refused, the aliases in SQL stay and serve
    rewrite(config_file, "model_list:\n  - model_name: broken\n    litellm_params: {}\n")
    body = wait_for_readiness(
        gateway.url, lambda body: "error" in body["reload"]["config"], "a refused config"
    )
    assert body["reload"]["config"]["version"] == 2 and "config.yaml" in body["reload"]["config"]["error"]
    assert metric(gateway, "turnout_config_reload_failures_total") == 1
    assert fingerprint(client, fake, "acme-two") == "acme-v1"
    # an alias removed from the file is removed from the gateway, as at start
    rewrite(config_file, yaml.safe_dump({"model_list": [entry("acme-chat", fake)]}))
    wait_for_readiness(gateway.url, lambda body: body["reload"]["config"]["version"] == 3, "the third config")
    assert {model.id for model in client.models.list()} == {"acme-chat"}
    assert readiness(gateway.url)["aliases"] == 1


def test_a_request_that_tries_again_after_a_swap_keeps_its_version(
    tmp_path: Path, own: Path, fake: FakeUpstream
) -> None:
    """The first deployment fails after the swap; the second is tried with the mappings the request
    started with, not the new ones: no request sees half a change."""
    first = {"model": "acme/acme-1", "api_base": fake.url + "/first/v1", "order": 1}
    second = {"model": "acme/acme-1", "api_base": fake.url + "/second/v1", "order": 2}
    config = {
        "model_list": [
            {"model_name": "acme-chat", "litellm_params": first},
            {"model_name": "acme-chat", "litellm_params": second},
        ]
    }
    with running_gateway(tmp_path, config, mappings_path=[own], reload_interval=0.02) as server:
        client = openai_client(server.v1, "unused", timeout=30)
        fake.add(
            "POST", "/first/v1/chat/completions", status=503, json={"error": {"message": "busy"}}, hold=True
        )
        fake.add("POST", "/second/v1/chat/completions", json=ANSWER)
        answers: list[str | None] = []
        in_flight = threading.Thread(
            target=lambda: answers.append(
                client.chat.completions.create(model="acme-chat", messages=HI).system_fingerprint
            )
        )
        in_flight.start()
        wait_for_readiness(
            server.url, lambda _body: fake.holding == 1, "the first attempt to reach the upstream"
        )
        rewrite(own / "providers" / "acme.yaml", acme("v2"))
        wait_for_readiness(server.url, lambda body: mappings_version(body) == 2, "mappings version 2")
        fake.release_held()
        in_flight.join(timeout=30)
        assert [request.path for request in fake.requests if request.method == "POST"] == [
            "/first/v1/chat/completions",
            "/second/v1/chat/completions",
        ]
        assert answers == ["acme-v1"]
        assert client.chat.completions.create(model="acme-chat", messages=HI).system_fingerprint == "acme-v2"


def test_a_dialect_change_is_served_but_new_routes_need_a_restart(
    tmp_path: Path, own: Path, fake: FakeUpstream
) -> None:
    bundled = (project_path("mappings") / "dialects" / "anthropic.yaml").read_text()
    (own / "dialects").mkdir()
    (own / "dialects" / "anthropic.yaml").write_text(bundled)
    config = {"model_list": [entry("acme-chat", fake)]}
    with running_gateway(tmp_path, config, mappings_path=[own], reload_interval=0.02) as server:
        messages = {"model": "acme-chat", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}

        def ask() -> dict[str, Any]:
            fake.add("POST", "/v1/chat/completions", json=ANSWER)
            answer = httpx.post(server.url + "/v1/messages", json=messages, timeout=10)
            assert answer.status_code == 200, answer.text
            body: dict[str, Any] = answer.json()
            return body

        assert ask()["type"] == "message"
        # what the dialect answers may change: served from the next request on
        marker = "\n    type: message\n    role: assistant\n"  # the answer's, in `response`'s `$in`
        changed = bundled.replace(marker, marker + "    turnout_version: 2\n", 1)
        assert changed != bundled
        rewrite(own / "dialects" / "anthropic.yaml", changed)
        wait_for_readiness(server.url, lambda body: mappings_version(body) == 2, "the changed dialect")
        assert ask().get("turnout_version") == 2
        # where it listens may not: refused, saying so, and the dialect still served
        rewrite(
            own / "dialects" / "anthropic.yaml",
            changed.replace("paths: [/v1/messages, /messages]", "paths: [/v9/messages]"),
        )
        body = wait_for_readiness(
            server.url, lambda body: "error" in body["reload"]["mappings"], "a refused route change"
        )
        assert "restart" in body["reload"]["mappings"]["error"]
        assert ask().get("turnout_version") == 2
