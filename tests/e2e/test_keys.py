"""Virtual keys over HTTP: the admin API (master key only), then each key used as clients use it."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import OLLAMA, OPENAI, assert_error, two_backend_config
from tests.fakes import FakeUpstream
from tests.support import FakeClock, GatewayServer, running_gateway
from tests.support.sdk_types import openai_client

MASTER = "sk-master"
HI: list[Any] = [{"role": "user", "content": "Hi"}]
ADMIN = {"authorization": f"Bearer {MASTER}"}


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock(time.time())  # keys' expiry dates come from SQL on the real clock


@pytest.fixture(scope="module")
def gateway(
    fake: FakeUpstream, clock: FakeClock, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayServer]:
    config = two_backend_config(fake.url, general_settings={"master_key": MASTER})
    with running_gateway(tmp_path_factory.mktemp("keys"), config, clock=clock) as server:
        yield server


def _generate(http: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = http.post("/key/generate", json=fields, headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _sdk(gateway: GatewayServer, key: str) -> openai.OpenAI:
    return openai_client(gateway.v1, key)


def _chat(http: httpx.Client, key: str, model: str, **headers: str) -> httpx.Response:
    return http.post(
        "/v1/chat/completions",
        json={"model": model, "messages": HI},
        headers={"authorization": f"Bearer {key}", **headers},
    )


def _listed(http: httpx.Client) -> list[dict[str, Any]]:
    keys: list[dict[str, Any]] = http.get("/key/list", headers=ADMIN).json()["keys"]
    return keys


def test_generate_and_use_with_the_sdk(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream
) -> None:
    created = _generate(http, models=[OLLAMA.alias], key_alias="team-a", max_budget=20, rpm_limit=60)
    key = created["key"]
    assert key.startswith("sk-") and len(key) >= 35
    assert created["models"] == [OLLAMA.alias] and created["key_alias"] == "team-a"
    assert created["max_budget"] == 20 and created["rpm_limit"] == 60 and created["spend"] == 0
    assert created["expires"] is None
    OLLAMA.answer(fake, "simple")
    answer = _sdk(gateway, key).chat.completions.create(model=OLLAMA.alias, messages=HI)
    assert answer.choices[0].message.content
    assert "authorization" not in fake.last.headers
    assert [model.id for model in _sdk(gateway, key).models.list()] == [OLLAMA.alias]


def test_other_alias_is_forbidden_by_name(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream
) -> None:
    key = _generate(http, models=[OLLAMA.alias])["key"]
    error = assert_error(
        _chat(http, key, OPENAI.alias), 403, type="permission_error", code="model_not_allowed"
    )
    assert OPENAI.alias in error["message"]
    with pytest.raises(openai.PermissionDeniedError):
        _sdk(gateway, key).embeddings.create(model=OPENAI.alias, input="hi")
    unknown = assert_error(_chat(http, key, "no-such-model"), 403, type="permission_error")
    assert "no-such-model" in unknown["message"]
    dialect = http.post(
        "/v1/messages",
        json={"model": OPENAI.alias, "max_tokens": 10, "messages": HI},
        headers={"x-api-key": key},
    )
    assert dialect.status_code == 403 and OPENAI.alias in dialect.text
    assert fake.requests == []


def test_key_without_models_may_use_every_alias(http: httpx.Client) -> None:
    key = _generate(http)["key"]
    models = http.get("/v1/models", headers={"authorization": f"Bearer {key}"}).json()["data"]
    assert {m["id"] for m in models} == {OLLAMA.alias, OPENAI.alias}


def test_revoked_key_is_refused(http: httpx.Client) -> None:
    key = _generate(http)["key"]
    assert http.get("/v1/models", headers={"x-api-key": key}).status_code == 200
    deleted = http.post("/key/delete", json={"keys": [key]}, headers=ADMIN)
    assert deleted.status_code == 200 and deleted.json() == {"deleted_keys": [key[:8] + "..."]}
    assert_error(http.get("/v1/models", headers={"x-api-key": key}), 401, type="authentication_error")
    assert key[:8] + "..." not in [info["key_name"] for info in _listed(http)]
    again = http.post("/key/update", json={"key": key, "models": []}, headers=ADMIN)
    assert_error(again, 400, type="invalid_request_error")


def test_expired_key_is_refused(http: httpx.Client, clock: FakeClock) -> None:
    created = _generate(http, duration="1h")
    key, expires = created["key"], datetime.fromisoformat(created["expires"]).timestamp()
    later = _generate(http, duration="30d")["key"]
    clock.set(expires - 1)
    assert http.get("/v1/models", headers={"x-api-key": key}).status_code == 200
    clock.set(expires)
    error = assert_error(http.get("/v1/models", headers={"x-api-key": key}), 401, type="authentication_error")
    assert "expired" in error["message"]
    assert http.get("/v1/models", headers={"x-api-key": later}).status_code == 200


def test_info_and_list_never_show_the_secret(http: httpx.Client) -> None:
    created = _generate(http, key_alias="shown", metadata={"team": "x"}, privacy="private")
    key = created["key"]
    info = http.get("/key/info", params={"key": key}, headers=ADMIN)
    assert info.status_code == 200
    body = info.json()["info"]
    assert body["key_alias"] == "shown" and body["metadata"] == {"team": "x"} and body["privacy"] == "private"
    listing = http.get("/key/list", headers=ADMIN)
    digest = hashlib.sha256(key.encode()).hexdigest()
    for text in (info.text, listing.text):
        assert key not in text and digest not in text and key[8:] not in text
    assert "shown" in {entry["key_alias"] for entry in listing.json()["keys"]}


def test_update_changes_the_models(http: httpx.Client) -> None:
    key = _generate(http, models=[OLLAMA.alias])["key"]
    updated = http.post("/key/update", json={"key": key, "models": [OPENAI.alias]}, headers=ADMIN)
    assert updated.status_code == 200 and updated.json()["models"] == [OPENAI.alias]
    models = http.get("/v1/models", headers={"x-api-key": key}).json()["data"]
    assert [m["id"] for m in models] == [OPENAI.alias]
    assert _chat(http, key, OLLAMA.alias).status_code == 403


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/key/generate", {"models": "ollama-model"}, "models"),
        ("/key/generate", {"models": ["no-such-alias"]}, "models"),
        ("/key/generate", {"max_budget": -1}, "max_budget"),
        ("/key/generate", {"rpm_limit": 1.5}, "rpm_limit"),
        ("/key/generate", {"tpm_limit": True}, "tpm_limit"),
        ("/key/generate", {"duration": "soon"}, "duration"),
        ("/key/generate", {"budget_duration": "30x"}, "budget_duration"),
        ("/key/generate", {"privacy": "secret"}, "privacy"),
        ("/key/generate", {"metadata": [1]}, "metadata"),
        ("/key/generate", {"user_id": "u"}, "user_id"),
        ("/key/update", {"models": []}, "key"),
        ("/key/delete", {"keys": "sk-x"}, "keys"),
    ],
)
def test_bad_admin_input_changes_nothing(
    http: httpx.Client, path: str, body: dict[str, Any], param: str
) -> None:
    before = _listed(http)
    error = assert_error(http.post(path, json=body, headers=ADMIN), 400, type="invalid_request_error")
    assert error["param"] == param
    assert _listed(http) == before


def test_unknown_keys_are_404_and_nothing_is_revoked(http: httpx.Client) -> None:
    key = _generate(http)["key"]
    before = _listed(http)
    response = http.post("/key/delete", json={"keys": [key, "sk-unknown"]}, headers=ADMIN)
    assert_error(response, 404, code="key_not_found")
    assert _listed(http) == before
    assert_error(http.get("/key/info", params={"key": "sk-unknown"}, headers=ADMIN), 404)
    assert_error(http.post("/key/update", json={"key": "sk-unknown", "rpm_limit": 5}, headers=ADMIN), 404)
    assert_error(http.post("/key/generate", content=b"{not json", headers=ADMIN), 400, code="invalid_json")
    assert_error(http.get("/key/info", headers=ADMIN), 400)


def test_admin_api_needs_the_master_key(http: httpx.Client) -> None:
    key = _generate(http)["key"]
    assert_error(http.get("/key/list"), 401, code="missing_api_key")
    assert_error(http.get("/key/list", headers={"x-api-key": "sk-wrong"}), 401)
    assert_error(
        http.post("/key/generate", json={}, headers={"x-api-key": key}), 403, type="permission_error"
    )
    assert_error(http.get("/turnout/deployments", headers={"x-api-key": key}), 403)
    assert http.get("/turnout/deployments", headers=ADMIN).status_code == 200


def test_privacy_of_the_key(http: httpx.Client, fake: FakeUpstream) -> None:
    local = _generate(http, privacy="local")["key"]
    refused = _chat(http, local, OPENAI.alias, **{"x-turnout-privacy": "any"})  # the stricter one wins
    error = assert_error(refused, 403, code="privacy_restricted")
    assert "this API key's privacy level 'local'" in error["message"] and error["param"] is None
    OLLAMA.answer(fake, "simple")
    assert _chat(http, local, OLLAMA.alias).status_code == 200
    private = _generate(http, privacy="private")["key"]
    assert_error(_chat(http, private, OPENAI.alias, **{"x-turnout-privacy": "local"}), 403)
    assert [r for r in fake.requests if r.path == OPENAI.path] == []


def test_no_secret_in_logs(http: httpx.Client, fake: FakeUpstream, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key = _generate(http, models=[OLLAMA.alias])["key"]
    OLLAMA.answer(fake, "simple")
    _chat(http, key, OLLAMA.alias)
    _chat(http, key, OPENAI.alias)
    http.post("/key/update", json={"key": key, "rpm_limit": 3}, headers=ADMIN)
    http.post("/key/delete", json={"keys": [key]}, headers=ADMIN)
    _chat(http, key, OLLAMA.alias)
    assert key[:8] in caplog.text  # the prefix is logged, so the check below has something to look at
    assert key not in caplog.text and key[8:] not in caplog.text and MASTER not in caplog.text


def test_admin_api_without_a_master_key(tmp_path: Path, fake: FakeUpstream) -> None:
    with running_gateway(tmp_path, two_backend_config(fake.url)) as server:
        response = httpx.post(server.url + "/key/generate", json={}, timeout=10)
        error = assert_error(response, 403, type="permission_error", code="master_key_not_set")
        assert "master key" in error["message"]


def test_keys_changed_elsewhere_arrive_on_the_interval(tmp_path: Path, fake: FakeUpstream) -> None:
    """Another replica (here: a second gateway on the same database) sees a new key within the interval."""
    config = two_backend_config(fake.url, general_settings={"master_key": MASTER})
    with (
        running_gateway(tmp_path, config, key_refresh_interval=0.2) as first,
        running_gateway(tmp_path, config, key_refresh_interval=0.2) as second,
    ):
        key = httpx.post(first.url + "/key/generate", json={}, headers=ADMIN, timeout=10).json()["key"]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if httpx.get(second.v1 + "/models", headers={"x-api-key": key}, timeout=5).status_code == 200:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the second gateway never saw the key")
