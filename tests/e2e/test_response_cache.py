"""The response cache over HTTP: LiteLLM's `litellm_settings.cache` turned on in the config file, the
openai SDK and raw HTTP as clients, the fake upstream counting what reached it.

Each test asks its own question (the messages name the test), so that the module's one cache never
answers one test with another's entry.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import BACKENDS, OLLAMA, OPENAI, Backend, assert_error, sse_events, two_backend_config
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway
from tests.support.clock import FakeClock
from tests.support.request_log import request_log_db, row_for
from tests.support.sdk_types import anthropic_client, openai_client, strict_http
from tests.support.services import REDIS_URL

MASTER = "sk-cache-master"
ADMIN = {"authorization": f"Bearer {MASTER}"}
PRICES = {"input_cost_per_token": 0.000002, "output_cost_per_token": 0.000008}
FIXTURE_COST = Decimal("0.000104")  # the golden answer: 16 x 0.000002 + 9 x 0.000008
TTL = 60


def _config(upstream_url: str, **cache_params: Any) -> dict[str, Any]:
    config = two_backend_config(
        upstream_url,
        general_settings={"master_key": MASTER},
        litellm_settings={"cache": True, "cache_params": {"type": "local", "ttl": TTL, **cache_params}},
    )
    for entry in config["model_list"]:
        entry["model_info"] = dict(PRICES)
    return config


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def gateway(
    fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory, clock: FakeClock
) -> Iterator[GatewayServer]:
    with running_gateway(
        tmp_path_factory.mktemp("cache"),
        _config(fake.url),
        clock=clock,
        usage_flush_interval=0.05,
        key_refresh_interval=0,
        metrics_max_age=0,
    ) as server:
        yield server


@pytest.fixture
def http(gateway: GatewayServer) -> Iterator[httpx.Client]:
    with strict_http(gateway.url, timeout=10, headers=ADMIN) as session:
        yield session


def _messages(question: str) -> list[Any]:
    return [{"role": "user", "content": question}]


def _chat(http: httpx.Client, question: str, model: str = OPENAI.alias, **body: Any) -> httpx.Response:
    headers = body.pop("headers", {})
    return http.post(
        "/v1/chat/completions",
        json={"model": model, "messages": _messages(question), **body},
        headers=headers,
    )


def _upstream_calls(fake: FakeUpstream, backend: Backend = OPENAI) -> int:
    return sum(1 for request in fake.requests if request.path == backend.path)


def _key(http: httpx.Client, **fields: Any) -> str:
    response = http.post("/key/generate", json=fields)
    assert response.status_code == 200, response.text
    key: str = response.json()["key"]
    return key


def test_a_second_identical_request_is_answered_from_the_cache(
    gateway: GatewayServer, fake: FakeUpstream
) -> None:
    OPENAI.answer(fake, "simple")
    client = openai_client(gateway.v1, MASTER)
    asked: dict[str, Any] = {"model": OPENAI.alias, "messages": _messages("sdk: what is 2 + 2?")}
    first = client.chat.completions.with_raw_response.create(**asked)
    second = client.chat.completions.with_raw_response.create(**asked, user="someone-else")  # volatile
    assert first.headers["x-turnout-cache"] == "miss"
    assert second.headers["x-turnout-cache"] == "hit"
    assert second.headers["x-turnout-attempts"] == "0"
    assert second.headers["x-turnout-cost"] == "0"
    assert first.headers["x-turnout-request-id"] != second.headers["x-turnout-request-id"]
    assert second.parse().model_dump() == first.parse().model_dump()
    assert _upstream_calls(fake) == 1
    other = client.chat.completions.with_raw_response.create(**asked, temperature=0.5)  # another question
    assert other.headers["x-turnout-cache"] == "miss"
    assert _upstream_calls(fake) == 2


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_a_stream_is_replayed_as_the_same_stream(
    http: httpx.Client, fake: FakeUpstream, backend: Backend, gateway: GatewayServer
) -> None:
    """Ollama's stream is translated chunk by chunk, the OpenAI server's passed through as bytes: both
    come back from the cache as the bytes the first client got; the SDK reads them as a stream."""
    backend.stream(fake, "stream_text")
    question = f"stream from {backend.name}"
    body = {"stream": True, "stream_options": {"include_usage": True}}
    first = _chat(http, question, backend.alias, **body)
    second = _chat(http, question, backend.alias, **body)
    assert first.status_code == second.status_code == 200, second.text
    assert (first.headers["x-turnout-cache"], second.headers["x-turnout-cache"]) == ("miss", "hit")
    assert second.headers["content-type"].startswith("text/event-stream")
    assert second.content == first.content
    assert sse_events(second.content)[-1] == "[DONE]"
    assert _upstream_calls(fake, backend) == 1
    chunks = list(
        openai_client(gateway.v1, MASTER).chat.completions.create(
            model=backend.alias,
            messages=_messages(question),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert _upstream_calls(fake, backend) == 1
    without_usage = _chat(http, question, backend.alias, stream=True)  # include_usage changes the chunks
    assert without_usage.headers["x-turnout-cache"] == "miss"
    # a whole answer is another entry: a stream is never cut from it, nor it glued from a stream
    backend.answer(fake, "simple")
    assert _chat(http, question, backend.alias).headers["x-turnout-cache"] == "miss"


def test_cache_control_headers(http: httpx.Client, fake: FakeUpstream) -> None:
    OPENAI.answer(fake, "simple")
    question = "headers"
    assert _chat(http, question).headers["x-turnout-cache"] == "miss"
    fresh = _chat(http, question, headers={"cache-control": "no-cache"})
    assert fresh.headers["x-turnout-cache"] == "miss"
    assert _upstream_calls(fake) == 2
    assert _chat(http, question).headers["x-turnout-cache"] == "hit"
    unkept = "headers, not stored"
    assert _chat(http, unkept, headers={"cache-control": "no-store"}).headers["x-turnout-cache"] == "miss"
    assert _chat(http, unkept).headers["x-turnout-cache"] == "miss"
    assert _upstream_calls(fake) == 4


def test_the_cache_body_field(http: httpx.Client, fake: FakeUpstream) -> None:
    """LiteLLM's `cache` object: controls the cache and never reaches the backend."""
    OPENAI.answer(fake, "simple")
    question = "body field"
    assert _chat(http, question, cache={"no-store": True}).headers["x-turnout-cache"] == "miss"
    assert "cache" not in fake.last.json
    assert _chat(http, question).headers["x-turnout-cache"] == "miss"  # the first was not kept
    assert _chat(http, question, cache={"no-cache": True}).headers["x-turnout-cache"] == "miss"
    assert _chat(http, question, cache={"ttl": 30}).headers["x-turnout-cache"] == "hit"
    assert _upstream_calls(fake) == 3
    assert _chat(http, question, cache={"namespace": "mine"}).headers["x-turnout-cache"] == "miss"
    assert _chat(http, question, cache={"namespace": "mine"}).headers["x-turnout-cache"] == "hit"
    for bad, param in (
        ("yes", "cache"),
        ({"no-cache": "yes"}, "cache.no-cache"),
        ({"ttl": -1}, "cache.ttl"),
        ({"namespace": 3}, "cache.namespace"),
        ({"forever": True}, "cache"),
    ):
        error = assert_error(_chat(http, question, cache=bad), 400, type="invalid_request_error")
        assert error["param"] == param


def test_entries_expire_by_the_gateways_clock(
    http: httpx.Client, fake: FakeUpstream, clock: FakeClock
) -> None:
    OPENAI.answer(fake, "simple")
    question = "expiry"
    assert _chat(http, question).headers["x-turnout-cache"] == "miss"
    clock.advance(TTL - 1)
    assert _chat(http, question).headers["x-turnout-cache"] == "hit"
    assert _chat(http, question, cache={"s-maxage": 10}).headers["x-turnout-cache"] == "miss"  # too old
    clock.advance(2)
    assert _chat(http, question).headers["x-turnout-cache"] == "hit"  # the s-maxage miss stored anew
    short = "short ttl"
    assert _chat(http, short, cache={"ttl": 5}).headers["x-turnout-cache"] == "miss"
    clock.advance(4)
    assert _chat(http, short).headers["x-turnout-cache"] == "hit"
    clock.advance(2)
    assert _chat(http, short).headers["x-turnout-cache"] == "miss"


def test_a_key_never_gets_another_keys_answer(http: httpx.Client, fake: FakeUpstream) -> None:
    OPENAI.answer(fake, "simple")
    first, second = _key(http), _key(http)
    question = "tenants"
    for key, expected in (
        (first, "miss"),
        (first, "hit"),
        (second, "miss"),
        (second, "hit"),
        (MASTER, "miss"),
    ):
        answer = _chat(http, question, headers={"authorization": f"Bearer {key}"})
        assert answer.headers["x-turnout-cache"] == expected
    assert _upstream_calls(fake) == 3


def test_keys_share_a_namespace_the_operator_gives_them(http: httpx.Client, fake: FakeUpstream) -> None:
    OPENAI.answer(fake, "simple")
    team = [_key(http, metadata={"cache_namespace": "team-a"}) for _ in range(2)]
    outsider = _key(http, metadata={"cache_namespace": "team-b"})
    question = "shared on purpose"
    for key, expected in ((team[0], "miss"), (team[1], "hit"), (outsider, "miss")):
        answer = _chat(http, question, headers={"authorization": f"Bearer {key}"})
        assert answer.headers["x-turnout-cache"] == expected
    assert _upstream_calls(fake) == 2


def test_a_hit_is_logged_with_cost_0(gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream) -> None:
    OPENAI.answer(fake, "simple")
    miss, hit = _chat(http, "logged"), _chat(http, "logged")
    with request_log_db(gateway) as db:
        missed = row_for(db, miss.headers["x-turnout-request-id"])
        served = row_for(db, hit.headers["x-turnout-request-id"])
    assert (missed.cache_hit, missed.cost, missed.attempts) == (False, FIXTURE_COST, 1)
    assert (served.cache_hit, served.cost, served.status, served.attempts) == (True, Decimal(0), 200, 0)
    assert (served.prompt_tokens, served.completion_tokens, served.deployment_id) == (0, 0, None)
    assert served.alias == OPENAI.alias and not served.tokens_estimated
    request_id = hit.headers["x-turnout-request-id"]
    logged = http.get("/turnout/requests", params={"alias": OPENAI.alias, "limit": 50}).json()["data"]
    assert [row["cache_hit"] for row in logged if row["request_id"] == request_id] == [True]
    spend = http.get("/spend/logs", params={"request_id": request_id}).json()
    assert [(row["cache_hit"], row["spend"]) for row in spend] == [("True", 0.0)]


def test_a_stream_hit_is_logged_with_cost_0(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream
) -> None:
    OLLAMA.stream(fake, "stream_text")
    _chat(http, "logged stream", OLLAMA.alias, stream=True)
    hit = _chat(http, "logged stream", OLLAMA.alias, stream=True)
    with request_log_db(gateway) as db:
        served = row_for(db, hit.headers["x-turnout-request-id"])
    assert (served.cache_hit, served.cost, served.stream, served.completion_tokens) == (
        True,
        Decimal(0),
        True,
        0,
    )


def _samples(http: httpx.Client) -> dict[str, float]:
    text = http.get("/metrics").text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("turnout_cache_"):
                label = sample.labels.get("alias") or sample.labels.get("reason")
                found[f"{sample.name}:{label}"] = sample.value
    return found


def test_metrics_count_hits_misses_and_stores(http: httpx.Client, fake: FakeUpstream) -> None:
    OLLAMA.answer(fake, "simple")
    before = _samples(http)
    for _ in range(3):
        _chat(http, "metrics", OLLAMA.alias)
    after = _samples(http)
    name = f":{OLLAMA.alias}"

    def grew(metric: str) -> float:
        return after.get(metric + name, 0) - before.get(metric + name, 0)

    assert (grew("turnout_cache_hits_total"), grew("turnout_cache_misses_total")) == (2, 1)
    assert grew("turnout_cache_stores_total") == 1


@pytest.mark.sdk_types_unchecked  # the mid-stream error is a deliberately broken pass-through stream
def test_errors_are_never_cached(http: httpx.Client, fake: FakeUpstream) -> None:
    OPENAI.answer(fake, "simple")
    refusal = {"error": {"message": "no", "type": "invalid_request_error", "param": None, "code": None}}
    fake.add("POST", OPENAI.path, status=400, json=refusal, times=1)  # later scripts win, once
    assert _chat(http, "errors").status_code == 400
    assert _chat(http, "errors").headers["x-turnout-cache"] == "miss"
    assert _chat(http, "errors").headers["x-turnout-cache"] == "hit"
    OPENAI.stream(fake, "stream_text")
    OPENAI.stream(fake, "error_midstream", times=1)
    broken = _chat(http, "errors mid-stream", stream=True)
    assert broken.headers["x-turnout-cache"] == "miss" and "error" in sse_events(broken.content)[-1]
    assert _chat(http, "errors mid-stream", stream=True).headers["x-turnout-cache"] == "miss"
    assert _chat(http, "errors mid-stream", stream=True).headers["x-turnout-cache"] == "hit"


def test_answers_over_the_size_limit_are_not_kept(fake: FakeUpstream, tmp_path: Any) -> None:
    OPENAI.answer(fake, "simple")
    with (
        running_gateway(tmp_path, _config(fake.url), cache_max_entry_bytes=100, metrics_max_age=0) as server,
        strict_http(server.url, timeout=10, headers=ADMIN) as http,
    ):
        assert _chat(http, "large").headers["x-turnout-cache"] == "miss"
        assert _chat(http, "large").headers["x-turnout-cache"] == "miss"
        assert "turnout_cache_failures_total" in http.get("/metrics").text
        assert server.gateway.pipeline.caches


def test_without_the_cache_nothing_changes(fake: FakeUpstream, tmp_path: Any) -> None:
    OPENAI.answer(fake, "simple")
    with running_gateway(tmp_path, two_backend_config(fake.url)) as server:
        client = openai_client(server.v1, "unused")
        asked: dict[str, Any] = {"model": OPENAI.alias, "messages": _messages("off")}
        for _ in range(2):
            answer = client.chat.completions.with_raw_response.create(**asked)
            assert "x-turnout-cache" not in answer.headers
        assert _upstream_calls(fake) == 2
        assert not server.gateway.pipeline.caches
        client.chat.completions.create(**asked, extra_body={"cache": {"no-cache": True}})
        assert fake.last.json["cache"] == {"no-cache": True}  # not read: passed on as before


@pytest.mark.redis
def test_redis_serves_every_replica(fake: FakeUpstream, tmp_path: Any) -> None:
    """Two gateways (two replicas' apps) on one Redis: what one kept, the other answers."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis at {REDIS_URL} is unreachable: {exc}")
    OPENAI.answer(fake, "simple")
    prefix = f"turnout-cache-test-{uuid.uuid4().hex[:8]}:"
    config = _config(fake.url, type="redis", url=REDIS_URL, namespace="replicas")
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    with (
        running_gateway(tmp_path / "one", config, redis_prefix=prefix, metrics_max_age=0) as one,
        running_gateway(tmp_path / "two", config, redis_prefix=prefix, metrics_max_age=0) as two,
        strict_http(one.url, timeout=10, headers=ADMIN) as first,
        strict_http(two.url, timeout=10, headers=ADMIN) as second,
    ):
        assert one.settings.cache_type == "redis" and one.settings.cache_redis_url == REDIS_URL
        assert _chat(first, "replicas").headers["x-turnout-cache"] == "miss"
        hit = _chat(second, "replicas")
        assert hit.headers["x-turnout-cache"] == "hit"
        assert hit.json()["choices"][0]["message"]["content"]
        OPENAI.stream(fake, "stream_text")
        streamed = _chat(second, "replicas", stream=True)
        _wait_for_stores(second, 1)  # its first: a stream is kept once it completed, off the client's path
        assert _chat(first, "replicas", stream=True).content == streamed.content
        assert _upstream_calls(fake) == 2
        keys = redis.Redis.from_url(REDIS_URL).keys(prefix + "cache:replicas:*")
        assert len(keys) == 2
        redis.Redis.from_url(REDIS_URL).delete(*keys)


def _wait_for_stores(http: httpx.Client, count: int) -> None:
    deadline = time.monotonic() + 5
    while sum(v for k, v in _samples(http).items() if k.startswith("turnout_cache_stores_total:")) < count:
        assert time.monotonic() < deadline, "the answer was not stored"
        time.sleep(0.02)


def test_dialect_routes_are_answered_from_the_cache_in_their_own_shape(
    gateway: GatewayServer, fake: FakeUpstream
) -> None:
    """/v1/messages and /v1/responses are chat requests in the pipeline: a hit is translated as the
    original was; a stored response gets an id of its own, which continues its own conversation."""
    OPENAI.answer(fake, "simple")
    claude = anthropic_client(gateway.url, MASTER)
    asked: dict[str, Any] = {"model": OPENAI.alias, "max_tokens": 64, "messages": _messages("dialect")}
    first = claude.messages.with_raw_response.create(**asked)
    second = claude.messages.with_raw_response.create(**asked)
    assert (first.headers["x-turnout-cache"], second.headers["x-turnout-cache"]) == ("miss", "hit")
    assert second.parse().content == first.parse().content
    client = openai_client(gateway.v1, MASTER)
    responses = [
        client.responses.with_raw_response.create(model=OPENAI.alias, input="responses dialect")
        for _ in range(2)
    ]
    assert [r.headers["x-turnout-cache"] for r in responses] == ["miss", "hit"]
    kept = [r.parse() for r in responses]
    assert kept[0].id != kept[1].id and kept[0].output_text == kept[1].output_text
    follow_up = client.responses.create(
        model=OPENAI.alias, input="and then?", previous_response_id=kept[1].id
    )
    assert follow_up.output_text
    assert _upstream_calls(fake) == 3
    assert [m["content"] for m in fake.last.json["messages"]][:1] == ["responses dialect"]


def test_a_hit_counts_against_the_keys_request_rate(http: httpx.Client, fake: FakeUpstream) -> None:
    """A hit is a request: rpm holds it. It used no tokens, so tpm and the budget do not."""
    OPENAI.answer(fake, "simple")
    key = _key(http, rpm_limit=2)
    answers = [_chat(http, "rate", headers={"authorization": f"Bearer {key}"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[1].headers["x-turnout-cache"] == "hit"
    assert answers[1].headers["x-ratelimit-remaining-requests"] == "0"
    assert _upstream_calls(fake) == 1
