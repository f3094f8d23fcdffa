"""The request log over HTTP: every request that reaches the pipeline leaves one row, with its tokens
(reported, or counted and marked estimated), its exact cost, and how it ended."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from tests.e2e.conftest import OLLAMA, OPENAI, assert_error, sse_events, two_backend_config
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway
from tests.support.request_log import request_log_db, row_for

MASTER = "sk-master"
ADMIN = {"authorization": f"Bearer {MASTER}"}
HI: list[Any] = [{"role": "user", "content": "Hi"}]
PRICES = {"input_cost_per_token": 0.000002, "output_cost_per_token": 0.000008}
# the golden fixtures report 16 prompt and 9 completion tokens
FIXTURE_COST = Decimal("16") * Decimal("0.000002") + Decimal("9") * Decimal("0.000008")


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    config = two_backend_config(fake.url, general_settings={"master_key": MASTER})
    for entry in config["model_list"]:
        entry["model_info"] = dict(PRICES)
    with running_gateway(
        tmp_path_factory.mktemp("usage"), config, usage_flush_interval=0.05, key_refresh_interval=0
    ) as server:
        yield server


@pytest.fixture(scope="module")
def db(gateway: GatewayServer) -> Iterator[Engine]:
    with request_log_db(gateway) as engine:
        yield engine


def _key(http: httpx.Client, **fields: Any) -> str:
    response = http.post("/key/generate", json=fields, headers=ADMIN)
    assert response.status_code == 200, response.text
    key: str = response.json()["key"]
    return key


def _chat(http: httpx.Client, key: str, model: str, **body: Any) -> httpx.Response:
    return http.post(
        "/v1/chat/completions",
        json={"model": model, "messages": HI, **body},
        headers={"authorization": f"Bearer {key}"},
    )


@pytest.mark.parametrize("backend", [OLLAMA, OPENAI], ids=lambda b: b.name)
def test_a_chat_leaves_a_row_with_usage_and_exact_cost(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream, db: Engine, backend: Any
) -> None:
    key = _key(http, key_alias="usage-row")
    backend.answer(fake, "simple")
    response = _chat(http, key, backend.alias)
    assert response.status_code == 200, response.text
    row = row_for(db, response.headers["x-turnout-request-id"])
    assert (row.alias, row.operation, row.stream, row.status, row.attempts) == (
        backend.alias,
        "chat",
        False,
        200,
        1,
    )
    assert (row.provider, row.upstream_model) == (backend.name, "test-model")
    assert (row.prompt_tokens, row.completion_tokens, row.tokens_estimated) == (16, 9, False)
    assert row.cost == FIXTURE_COST
    assert row.key_id is not None and row.error_type is None and row.ttft_ms is None
    assert row.latency_ms > 0


@pytest.mark.parametrize("backend", [OLLAMA, OPENAI], ids=lambda b: b.name)
def test_a_stream_gets_its_usage_from_the_upstream_without_showing_it(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream, db: Engine, backend: Any
) -> None:
    chunks = backend.stream(fake, "stream_text")
    if backend is OPENAI:  # the OpenAI-compatible upstream sends usage only when asked: the fixture has it
        assert any(b'"usage"' in chunk for chunk in chunks)
    response = _chat(http, MASTER, backend.alias, stream=True)
    assert response.status_code == 200
    sent = json.loads(fake.last.body)
    if backend is OPENAI:
        assert sent["stream_options"] == {"include_usage": True}  # asked on the client's behalf
    events = sse_events(response.content)
    assert events[-1] == "[DONE]"
    assert not any(isinstance(e, dict) and e.get("usage") for e in events), "the client did not ask"
    assert all(isinstance(e, str) or e["choices"] for e in events)
    row = row_for(db, response.headers["x-turnout-request-id"])
    assert row.stream and row.status == 200 and row.key_id is None  # the master key
    assert (row.prompt_tokens, row.completion_tokens, row.tokens_estimated) == (16, 9, False)
    assert row.cost == FIXTURE_COST
    assert row.ttft_ms is not None and 0 < row.ttft_ms <= row.latency_ms


def test_a_client_that_asks_for_usage_still_gets_it(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream, db: Engine
) -> None:
    OLLAMA.stream(fake, "stream_text")
    response = _chat(http, MASTER, OLLAMA.alias, stream=True, stream_options={"include_usage": True})
    usage = [e["usage"] for e in sse_events(response.content) if isinstance(e, dict) and e.get("usage")]
    assert usage and usage[-1]["prompt_tokens"] == 16 and usage[-1]["completion_tokens"] == 9


def test_a_stream_without_usage_is_counted_and_marked_estimated(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream, db: Engine
) -> None:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        event = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "test-model"}
        event["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
        return b"data: " + json.dumps(event).encode() + b"\n\n"

    text = "Hello there, nice to meet you."  # 30 characters: 8 tokens at 4 characters each
    fake.add(
        "POST",
        OPENAI.path,
        stream=[
            chunk({"role": "assistant", "content": text[:10]}),
            chunk({"content": text[10:]}, "stop"),
            b"data: [DONE]\n\n",
        ],
    )
    response = _chat(http, MASTER, OPENAI.alias, stream=True)
    assert response.status_code == 200
    row = row_for(db, response.headers["x-turnout-request-id"])
    assert row.tokens_estimated is True
    assert row.completion_tokens == 8
    assert row.prompt_tokens is not None and row.prompt_tokens > 0
    assert row.cost == Decimal(row.prompt_tokens) * Decimal("0.000002") + 8 * Decimal("0.000008")


def test_failures_leave_rows_too(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream, db: Engine
) -> None:
    OPENAI.error(fake, 500)
    failed = _chat(http, MASTER, OPENAI.alias)
    assert_error(failed, 500)
    row = row_for(db, failed.headers["x-turnout-request-id"])
    assert row.status == 500 and row.error_type is not None and row.attempts >= 1
    assert row.provider == "openai" and row.cost is None

    unknown = _chat(http, MASTER, "no-such-model")
    assert_error(unknown, 404, code="model_not_found")
    row = row_for(db, unknown.headers["x-turnout-request-id"])
    assert (row.alias, row.status, row.error_code, row.attempts, row.deployment_id) == (
        "no-such-model",
        404,
        "model_not_found",
        0,
        None,
    )


def test_a_stream_broken_midway_is_recorded_with_its_error(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream, db: Engine
) -> None:
    chunks = OPENAI.stream(fake, "stream_text", close_after=2)
    assert len(chunks) > 2
    response = _chat(http, MASTER, OPENAI.alias, stream=True)
    assert response.status_code == 200  # the answer had begun
    row = row_for(db, response.headers["x-turnout-request-id"])
    assert row.status == 200 and row.error_type == "upstream_error"
    assert row.tokens_estimated is True  # the usage chunk never came


def test_spend_adds_up_on_the_key(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream, db: Engine
) -> None:
    key = _key(http, key_alias="spender")
    for _ in range(3):
        OPENAI.answer(fake, "simple")
        response = _chat(http, key, OPENAI.alias)
        row_for(db, response.headers["x-turnout-request-id"])
    # the row and the key's spend are written in one transaction
    info = http.get("/key/info", params={"key": key}, headers=ADMIN).json()
    assert Decimal(str(info["info"]["spend"])) == 3 * FIXTURE_COST


def test_a_client_that_leaves_mid_stream_is_recorded_as_499(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream, db: Engine
) -> None:
    OPENAI.stream(fake, "stream_text", chunk_delay=0.3)
    body = {"model": OPENAI.alias, "messages": HI, "stream": True}
    with http.stream("POST", "/v1/chat/completions", json=body, headers=ADMIN) as response:
        request_id = response.headers["x-turnout-request-id"]
        next(response.iter_raw())  # the first chunk, then the client goes away
    row = row_for(db, request_id)
    assert (row.status, row.error_type) == (499, "client_disconnected")
    assert row.ttft_ms is not None


def test_a_request_refused_before_the_pipeline_is_recorded(
    gateway: GatewayServer, http: httpx.Client, db: Engine
) -> None:
    bad = http.post(
        "/v1/chat/completions", content=b"{not json", headers={**ADMIN, "content-type": "application/json"}
    )
    assert_error(bad, 400)
    row = row_for(db, bad.headers["x-turnout-request-id"])
    assert (row.operation, row.status, row.error_type, row.alias) == (
        "chat",
        400,
        "invalid_request_error",
        "",
    )
    no_file = http.post("/v1/audio/transcriptions", data={"model": "whisper-1"}, headers=ADMIN)
    assert_error(no_file, 400)
    assert row_for(db, no_file.headers["x-turnout-request-id"]).operation == "transcriptions"
    unauthenticated = http.post("/v1/chat/completions", json={"model": "x", "messages": HI})
    assert_error(unauthenticated, 401)
    assert "x-turnout-request-id" not in unauthenticated.headers  # not recorded: it names no one


def test_an_answer_without_usage_is_counted_priced_and_marked_estimated(
    gateway: GatewayServer, http: httpx.Client, fake: FakeUpstream, db: Engine
) -> None:
    answer = json.loads(json.dumps(OPENAI.answer(fake, "simple")))
    fake.clear()
    del answer["usage"]
    fake.add("POST", OPENAI.path, json=answer)
    response = _chat(http, MASTER, OPENAI.alias)
    assert response.status_code == 200
    assert "x-turnout-cost" not in response.headers  # the header is exact or absent
    row = row_for(db, response.headers["x-turnout-request-id"])
    text = answer["choices"][0]["message"]["content"]
    assert row.tokens_estimated is True and row.completion_tokens == -(-len(text) // 4)
    assert row.prompt_tokens is not None
    assert row.cost == row.prompt_tokens * Decimal("0.000002") + row.completion_tokens * Decimal("0.000008")
