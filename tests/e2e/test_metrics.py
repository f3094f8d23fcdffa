"""GET /metrics over HTTP: what a Prometheus scrape sees after real requests, and its optional key."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.usage.metrics import OTHER_CODE, UNKNOWN_ALIAS
from tests.e2e.conftest import OLLAMA, OPENAI, assert_error, two_backend_config
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway

MASTER = "sk-master"
HI: list[Any] = [{"role": "user", "content": "Hi"}]

Samples = dict[str, list[tuple[dict[str, str], float]]]


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """The two-backend gateway, rendering every scrape anew (the tests scrape right after requests)."""
    config = two_backend_config(fake.url)
    with running_gateway(tmp_path_factory.mktemp("metrics"), config, metrics_max_age=0) as server:
        yield server


def _chat(http: httpx.Client, model: str, **headers: str) -> httpx.Response:
    return http.post("/v1/chat/completions", json={"model": model, "messages": HI}, headers=headers)


def _scrape(http: httpx.Client, **headers: str) -> Samples:
    response = http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the series of `name` whose labels include `labels` (0 when there is none)."""
    return sum(value for found, value in samples.get(name, []) if labels.items() <= found.items())


def _deployment_id(http: httpx.Client, alias: str) -> str:
    rows = http.get("/turnout/deployments").json()["data"]
    return str(next(row["id"] for row in rows if row["alias"] == alias))


def test_scrape_counts_requests_tokens_and_upstream_errors(http: httpx.Client, fake: FakeUpstream) -> None:
    OPENAI.answer(fake, "simple")  # usage: 16 prompt and 9 completion tokens
    first = _chat(http, OPENAI.alias)
    assert first.status_code == 200, first.text
    assert _chat(http, OPENAI.alias).status_code == 200
    OPENAI.error(fake, 500)
    assert_error(_chat(http, OPENAI.alias), 500)

    samples = _scrape(http)
    chat = {"alias": OPENAI.alias, "operation": "chat"}
    assert _value(samples, "turnout_requests_total", status="200", **chat) == 2
    assert _value(samples, "turnout_requests_total", status="500", **chat) == 1
    assert _value(samples, "turnout_request_duration_seconds_count", **chat) == 3
    assert _value(samples, "turnout_tokens_total", alias=OPENAI.alias, kind="prompt") == 32
    assert _value(samples, "turnout_tokens_total", alias=OPENAI.alias, kind="completion") == 18
    deployment = _deployment_id(http, OPENAI.alias)
    errors = {"provider": "openai", "deployment": deployment, "status": "500"}
    assert _value(samples, "turnout_upstream_errors_total", **errors) == 1
    assert _value(samples, "turnout_requests_in_flight") == 0
    assert _value(samples, "turnout_deployment_cooling_down", deployment=deployment) == 0
    assert {labels["alias"] for labels, _ in samples["turnout_deployment_cooling_down"]} == {
        OLLAMA.alias,
        OPENAI.alias,
    }
    # labels stay low-cardinality: no request id ever appears in the exposition
    request_id = first.headers.get("x-turnout-request-id")
    assert request_id and request_id not in http.get("/metrics").text


def test_streams_feed_the_time_to_first_token_histogram(http: httpx.Client, fake: FakeUpstream) -> None:
    OLLAMA.stream(fake, "stream_text")
    streamed = http.post("/v1/chat/completions", json={"model": OLLAMA.alias, "messages": HI, "stream": True})
    assert streamed.status_code == 200, streamed.text
    OLLAMA.answer(fake, "simple")
    assert _chat(http, OLLAMA.alias).status_code == 200

    samples = _scrape(http)
    assert _value(samples, "turnout_time_to_first_token_seconds_count", alias=OLLAMA.alias) == 1
    assert _value(samples, "turnout_request_duration_seconds_count", alias=OLLAMA.alias) == 2


@pytest.fixture(scope="module")
def locked(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    """A gateway with a master key that asks for it on /metrics."""
    config = two_backend_config(fake.url, general_settings={"master_key": MASTER})
    with running_gateway(tmp_path_factory.mktemp("metrics"), config, metrics_require_key=True) as server:
        yield server


def test_metrics_require_key_wants_the_master_key(locked: GatewayServer) -> None:
    with httpx.Client(base_url=locked.url, timeout=10) as http:
        assert_error(http.get("/metrics"), 401, type="authentication_error", code="missing_api_key")
        wrong = http.get("/metrics", headers={"authorization": "Bearer sk-wrong"})
        assert_error(wrong, 401, type="authentication_error")
        created = http.post("/key/generate", json={}, headers={"authorization": f"Bearer {MASTER}"})
        virtual = {"authorization": f"Bearer {created.json()['key']}"}
        assert_error(http.get("/metrics", headers=virtual), 403, code="master_key_required")
        _scrape(http, authorization=f"Bearer {MASTER}")


def test_metrics_require_key_without_a_master_key_refuses_everyone(
    fake: FakeUpstream, tmp_path: Path
) -> None:
    with (
        running_gateway(tmp_path, two_backend_config(fake.url), metrics_require_key=True) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        assert_error(http.get("/metrics"), 403, code="master_key_not_set")


def test_client_model_names_never_grow_the_scrape(http: httpx.Client, fake: FakeUpstream) -> None:
    """Refused requests name what they like (4 MB names, 1,000 random ones): the scrape stays the size
    the configuration gives it, with one series for every name that is not a configured alias."""
    huge = "m" * (4 * 1024 * 1024)
    for n in range(2):
        assert_error(_chat(http, huge + str(n)), 404)
    for _ in range(1000):
        assert _chat(http, secrets.token_hex(16)).status_code == 404
    # an upstream's error code is as hostile: long, odd, and varied
    fake.add("POST", OPENAI.path, status=400, json={"error": {"message": "no", "code": "c" * 10_000}})
    assert _chat(http, OPENAI.alias).status_code == 400

    scraped = http.get("/metrics")
    assert scraped.status_code == 200
    assert len(scraped.content) < 32_000, "bounded by the configuration, not by the traffic"
    samples = _scrape(http)
    aliases = {labels["alias"] for labels, _ in samples["turnout_requests_total"]}
    assert aliases <= {OLLAMA.alias, OPENAI.alias, UNKNOWN_ALIAS}
    assert _value(samples, "turnout_requests_total", alias=UNKNOWN_ALIAS, status="404") == 1002
    codes = {labels["code"] for labels, _ in samples["turnout_upstream_errors_total"]}
    assert codes <= {"", OTHER_CODE} and OTHER_CODE in codes


def test_scrapes_in_a_loop_are_served_from_the_last_render(fake: FakeUpstream, tmp_path: Path) -> None:
    """Within `metrics_max_age` a scrape costs no render: scraping in a loop cannot take the event
    loop from requests (the answer is at most that old)."""
    with (
        running_gateway(tmp_path, two_backend_config(fake.url), metrics_max_age=3600) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        first = http.get("/metrics")
        OPENAI.answer(fake, "simple")
        assert _chat(http, OPENAI.alias).status_code == 200
        for _ in range(20):
            again = http.get("/metrics")
            assert again.status_code == 200 and again.content == first.content
        assert http.get("/health/liveness").status_code == 200
