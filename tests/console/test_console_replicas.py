"""A console change on one replica reaches the other at once, through the change bus (Redis), on one
PostgreSQL: both replicas run with polling off (`routes_refresh_interval` and `key_refresh_interval`
0), so nothing but the bus can tell the second one."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.console.forms import csrf_of, signed_in_client
from tests.e2e.conftest import golden_json
from tests.fakes import FakeUpstream
from tests.support.process import TurnoutProcess, turnout_process
from tests.support.services import POSTGRES_URL, REDIS_URL, empty_postgres

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

MASTER = "sk-console-replicas-master"
BOUND = 2.0  # seconds: a change through one replica serves on the other (a Redis notice and a reload)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def replicas(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[TurnoutProcess]]:
    if not empty_postgres():
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is unreachable")
    workdir = tmp_path_factory.mktemp("console-replicas")
    config = workdir / "config.yaml"
    entry = {
        "model_name": "file-chat",
        "litellm_params": {"model": "ollama_chat/llama3.2", "api_base": fake.url},
    }
    config.write_text(yaml.safe_dump({"model_list": [entry], "general_settings": {"master_key": MASTER}}))
    settings = {
        "database_url": POSTGRES_URL,
        "redis_url": REDIS_URL,
        "redis_prefix": f"turnout-console-{uuid.uuid4().hex[:8]}:",
        "routes_refresh_interval": "0",
        "key_refresh_interval": "0",
        "ui_sign_in_delay": "0",
    }
    with (
        turnout_process(workdir, config, **settings) as first,
        turnout_process(workdir, config, **settings) as second,
    ):
        yield [first, second]
    empty_postgres()


def _within(seconds: float, check: Callable[[], bool]) -> None:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, f"not within {seconds} s"
        time.sleep(0.02)


def _chat(replica: TurnoutProcess, model: str, key: str = MASTER) -> int:
    answer = httpx.post(
        replica.url + "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "Hi"}]},
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )
    return answer.status_code


def test_a_deployment_added_in_the_console_serves_on_the_other_replica(
    replicas: list[TurnoutProcess], fake: FakeUpstream, tmp_path: Path
) -> None:
    first, second = replicas
    fake.add("POST", "/api/chat", json=golden_json("ollama", "simple.response.json"))
    assert _chat(second, "console-chat") == 404
    console = signed_in_client(first.url, MASTER)
    form = {
        "provider": "ollama",
        "api_base": fake.url,
        "api_key": "",
        "upstream_model": "llama3.2",
        "alias": "console-chat",
        "mode": "chat",
        "priority": "0",
        "weight": "1",
        "_csrf": csrf_of(console.get("/ui/providers/").text),
    }
    assert console.post("/ui/providers/deployments", data=form).status_code == 303
    assert _chat(first, "console-chat") == 200  # at once on the replica that changed it
    _within(BOUND, lambda: _chat(second, "console-chat") == 200)


def test_a_key_revoked_in_the_console_is_refused_by_the_other_replica(replicas: list[TurnoutProcess]) -> None:
    first, second = replicas
    console = signed_in_client(second.url, MASTER)
    page = console.get("/ui/keys/").text
    created = console.post("/ui/keys", data={"key_alias": "replicated", "_csrf": csrf_of(page)})
    assert created.status_code == 201
    secret = created.text.split('id="new-key-secret"', 1)[1].split(">", 1)[1].split("<", 1)[0].strip()
    assert secret.startswith("sk-")
    _within(BOUND, lambda: _chat(first, "file-chat", secret) == 200)
    listed = console.get("/ui/keys/").text
    key_id = re.findall(r'<tr id="key-(\d+)"', listed.split("replicated", 1)[0])[-1]
    revoked = console.post(f"/ui/keys/{key_id}/revoke", data={"_csrf": csrf_of(page)})
    assert revoked.status_code == 303
    _within(BOUND, lambda: _chat(first, "file-chat", secret) == 401)
