"""Rerank end to end over HTTP: Cohere's request and answer shape (as LiteLLM's /rerank serves it) at
`/rerank`, `/v1/rerank` and `/v2/rerank`, routed by alias to Cohere, Jina and TEI behind a fake
upstream that answers with the golden fixtures.

Covered here beyond the golden suite: the three paths, prices per search unit and per token (the
`x-turnout-cost` header and the request log), the 400 of an alias whose backend has no rerank, the
model listing, a virtual key's models and budget, and hostile bodies refused before any upstream call.
There is no rerank in the openai SDK: requests are plain JSON over httpx, and every answer is checked
strictly against Cohere's documented shape (tests.support.sdk_types).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from engine.pipeline.schemas import MAX_RERANK_DOCUMENTS, MAX_RERANK_TEXT
from tests.e2e.conftest import FIXTURES, assert_error, golden_json
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway
from tests.support.request_log import request_log_db, row_for
from tests.support.sdk_types import strict_http

MASTER = "sk-rerank-master"
ADMIN = {"authorization": f"Bearer {MASTER}"}
QUERY = "What is the capital of the United States?"
DOCUMENTS = [
    "Carson City is the capital city of the American state of Nevada.",
    "The Commonwealth of the Northern Mariana Islands is a group of islands in the Pacific Ocean. "
    "Its capital is Saipan.",
    "Washington, D.C. is the capital of the United States.",
    "Capital punishment has existed in the United States since before it was a country.",
]
SEARCH_UNIT_PRICE = Decimal("0.002")  # Cohere rerank-v3.5: $2.00 per 1,000 searches
TOKEN_PRICE = Decimal("0.000000018")  # jina-reranker-v2-base-multilingual, per token


def _rerank_entry(
    alias: str, model: str, api_base: str, order: int | None = None, **info: Any
) -> dict[str, Any]:
    params = {"model": model, "api_base": api_base, "api_key": "sk-upstream-rerank-secret"}
    return {
        "model_name": alias,
        "litellm_params": params if order is None else {**params, "order": order},
        "model_info": {"mode": "rerank", **info},
    }


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    config = {
        "model_list": [
            _rerank_entry("rerank-v3.5", "cohere/rerank-v3.5", fake.url, input_cost_per_query=0.002),
            _rerank_entry(
                "jina-reranker",
                "jina_ai/jina-reranker-v2-base-multilingual",
                fake.url + "/v1",
                input_cost_per_token=0.000000018,
            ),
            _rerank_entry("tei-reranker", "tei/bge-reranker-base", fake.url + "/tei"),
            {  # as LiteLLM's /rerank docs write it: no model_info.mode
                "model_name": "rerank-english-v3.0",
                "litellm_params": {"model": "cohere/rerank-english-v3.0", "api_base": fake.url},
            },
            # a deployment that answers what is no rerank answer, then one that answers well
            _rerank_entry("failover", "tei/broken", fake.url + "/broken", order=1),
            _rerank_entry("failover", "cohere/rerank-v3.5", fake.url, order=2),
            # OpenAI has no rerank: its mapping does not declare the operation
            _rerank_entry("no-rerank-here", "openai/test-model", fake.url + "/v1"),
            {
                "model_name": "embedder",
                "litellm_params": {"model": "openai/text-embedding-3-small", "api_base": fake.url + "/v1"},
                "model_info": {"mode": "embedding"},
            },
        ],
        "general_settings": {"master_key": MASTER},
    }
    with running_gateway(
        tmp_path_factory.mktemp("rerank"),
        config,
        usage_flush_interval=0.05,
        key_refresh_interval=0,
        metrics_max_age=0,
    ) as server:
        yield server


@pytest.fixture
def http(gateway: GatewayServer) -> Iterator[httpx.Client]:
    with strict_http(gateway.url, timeout=10, headers=ADMIN) as session:
        yield session


@pytest.fixture(scope="module")
def db(gateway: GatewayServer) -> Iterator[Engine]:
    with request_log_db(gateway) as engine:
        yield engine


def _cohere(fake: FakeUpstream, scenario: str = "simple") -> None:
    fake.add("POST", "/v2/rerank", json=golden_json("cohere", f"operations/rerank/{scenario}.response.json"))


def _rerank(http: httpx.Client, path: str = "/v1/rerank", **body: Any) -> httpx.Response:
    return http.post(path, json={"query": QUERY, "documents": DOCUMENTS, **body})


@pytest.mark.parametrize("path", ["/rerank", "/v1/rerank", "/v2/rerank"])
def test_cohere_on_every_path_priced_per_search_unit(
    http: httpx.Client, fake: FakeUpstream, db: Engine, path: str
) -> None:
    _cohere(fake)
    answer = _rerank(http, path, model="rerank-v3.5", top_n=3)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [(r["index"], r["relevance_score"]) for r in body["results"]] == [
        (2, 0.999071),
        (3, 0.7867867),
        (0, 0.32713068),
    ]
    assert body["meta"]["billed_units"] == {"search_units": 1}
    assert answer.headers["x-turnout-cost"] == "0.002"  # one search unit at $2.00 per 1,000
    sent = fake.last
    assert sent.path == "/v2/rerank"
    assert sent.headers["authorization"] == "Bearer sk-upstream-rerank-secret"
    assert sent.json == {"model": "rerank-v3.5", "query": QUERY, "documents": DOCUMENTS, "top_n": 3}

    row = row_for(db, answer.headers["x-turnout-request-id"])
    assert (row.operation, row.alias, row.provider, row.status) == ("rerank", "rerank-v3.5", "cohere", 200)
    assert row.cost == SEARCH_UNIT_PRICE  # the exact price, although the tokens are estimated
    assert row.tokens_estimated and row.prompt_tokens and row.prompt_tokens > 0


def test_an_alias_without_a_mode_reranks_as_in_litellms_docs(http: httpx.Client, fake: FakeUpstream) -> None:
    _cohere(fake)
    answer = _rerank(http, "/rerank", model="rerank-english-v3.0", top_n=3)
    assert answer.status_code == 200, answer.text
    assert fake.last.json["model"] == "rerank-english-v3.0"
    assert "authorization" not in fake.last.headers  # no key configured: no header


def test_jina_priced_per_token_with_documents_from_the_request(
    http: httpx.Client, fake: FakeUpstream, db: Engine
) -> None:
    jina = golden_json("jina", "operations/rerank/return_documents.response.json")
    fake.add("POST", "/v1/rerank", json=jina)
    answer = _rerank(http, model="jina-reranker", top_n=2, return_documents=True)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["document"] for r in results] == [{"text": DOCUMENTS[2]}, {"text": DOCUMENTS[0]}]
    assert fake.last.json["return_documents"] is False  # the gateway has them: Jina need not echo them
    assert fake.last.json["model"] == "jina-reranker-v2-base-multilingual"
    # Jina reports 94 tokens
    assert Decimal(answer.headers["x-turnout-cost"]) == 94 * TOKEN_PRICE
    row = row_for(db, answer.headers["x-turnout-request-id"])
    assert (row.provider, row.prompt_tokens, row.tokens_estimated) == ("jina", 94, False)
    assert row.cost == 94 * TOKEN_PRICE


def test_tei_top_n_applied_by_the_mapping(http: httpx.Client, fake: FakeUpstream) -> None:
    fake.add("POST", "/tei/rerank", json=golden_json("tei", "operations/rerank/simple.response.json"))
    answer = _rerank(http, model="tei-reranker", top_n=2, return_documents=True)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [(r["index"], r["document"]["text"]) for r in results] == [(2, DOCUMENTS[2]), (0, DOCUMENTS[0])]
    assert fake.last.json == {"query": QUERY, "texts": DOCUMENTS}
    assert "x-turnout-cost" not in answer.headers  # no prices


def test_an_index_outside_the_documents_names_no_document(http: httpx.Client, fake: FakeUpstream) -> None:
    fake.add("POST", "/tei/rerank", json=[{"index": 7, "score": 0.9}, {"index": 1, "score": 0.1}])
    answer = _rerank(http, model="tei-reranker", return_documents=True)
    assert answer.status_code == 200, answer.text
    assert ["document" in r for r in answer.json()["results"]] == [False, True]


NO_RERANK_ANSWERS: list[Any] = [
    {"error": "busy"},
    "ranked",
    [7],
    [{"index": "2", "score": 0.9}],
    [{"index": True, "score": 1}],
    [{"index": -1, "score": 0.5}],
    [{"index": 0}],
    [{"index": 0, "score": None}],
]


@pytest.mark.parametrize("answer", NO_RERANK_ANSWERS)
def test_what_is_no_rerank_answer_is_a_502(http: httpx.Client, fake: FakeUpstream, answer: Any) -> None:
    fake.add("POST", "/tei/rerank", json=answer)
    error = assert_error(_rerank(http, model="tei-reranker"), 502, code="upstream_bad_response")
    assert error["message"].startswith("tei (bge-reranker-base) answered with something that is not a rerank")


def test_after_what_is_no_rerank_answer_the_next_deployment_answers(
    http: httpx.Client, fake: FakeUpstream
) -> None:
    fake.add("POST", "/broken/rerank", json={"error": "busy"})
    _cohere(fake)
    answered = _rerank(http, model="failover")
    assert answered.status_code == 200, answered.text
    assert answered.headers["x-turnout-attempts"] == "2"
    assert answered.headers["x-turnout-deployment"] == "cohere/rerank-v3.5"


def test_a_backend_without_rerank_is_a_clear_400(http: httpx.Client, fake: FakeUpstream) -> None:
    error = assert_error(_rerank(http, model="no-rerank-here"), 400, code="unsupported_operation")
    assert error["message"] == (
        "the model 'no-rerank-here' is served by 'openai', which does not offer rerank"
    )
    assert error["param"] == "model"
    error = assert_error(_rerank(http, model="embedder"), 400, code="unsupported_operation")
    assert "serves embedding requests, not rerank" in error["message"]
    assert fake.requests == []


def test_models_lists_the_rerank_aliases(http: httpx.Client) -> None:
    listed = {m["id"]: m["mode"] for m in http.get("/v1/models").json()["data"]}
    assert listed["rerank-v3.5"] == listed["jina-reranker"] == listed["tei-reranker"] == "rerank"


def test_metrics_count_rerank_requests(http: httpx.Client, fake: FakeUpstream) -> None:
    _cohere(fake)
    assert _rerank(http, model="rerank-v3.5").status_code == 200
    exposition = http.get("/metrics").text
    assert 'turnout_requests_total{alias="rerank-v3.5",operation="rerank",status="200"}' in exposition


def test_a_key_reranks_only_with_its_models_and_within_its_budget(
    http: httpx.Client, fake: FakeUpstream, gateway: GatewayServer
) -> None:
    created = http.post("/key/generate", json={"models": ["rerank-v3.5"], "max_budget": 0.003})
    assert created.status_code == 200, created.text
    headers = {"authorization": f"Bearer {created.json()['key']}"}
    with strict_http(gateway.url, timeout=10, headers=headers) as key:
        assert_error(_rerank(key, model="jina-reranker"), 403, code="model_not_allowed")
        for _ in range(2):  # $0.002 each: the second crosses the budget, as README's bound allows
            _cohere(fake)
            assert _rerank(key, model="rerank-v3.5").status_code == 200
        _cohere(fake)
        assert_error(_rerank(key, model="rerank-v3.5"), 429, code="budget_exceeded")
    assert len(fake.requests) == 2


HOSTILE: list[tuple[Any, str | None]] = [
    ({"model": "rerank-v3.5", "documents": DOCUMENTS}, "query"),
    ({"model": "rerank-v3.5", "query": QUERY, "documents": []}, "documents"),
    ({"model": "rerank-v3.5", "query": QUERY, "documents": ["x"] * (MAX_RERANK_DOCUMENTS + 1)}, "documents"),
    ({"model": "rerank-v3.5", "query": QUERY, "documents": ["x" * (MAX_RERANK_TEXT + 1)]}, "documents[0]"),
    ({"model": "rerank-v3.5", "query": "q" * (MAX_RERANK_TEXT + 1), "documents": DOCUMENTS}, "query"),
    ({"model": "rerank-v3.5", "query": QUERY, "documents": [{"text": {"deep": ["x"]}}]}, "documents[0][...]"),
    ({"model": "rerank-v3.5", "query": QUERY, "documents": [7]}, "documents[0]"),
    ({"model": "rerank-v3.5", "query": QUERY, "documents": DOCUMENTS, "top_n": 0}, "top_n"),
    ({"model": "rerank-v3.5", "query": QUERY, "documents": DOCUMENTS, "top_n": 2**63}, "top_n"),
    ({"model": "rerank-v3.5", "query": QUERY, "documents": DOCUMENTS, "return_documents": "yes"}, None),
    ({"model": "rerank-v3.5", "query": QUERY, "documents": DOCUMENTS, "rank_fields": "text"}, "rank_fields"),
    ({"model": "rerank-v3.5", "query": 42, "documents": DOCUMENTS}, "query"),
]


@pytest.mark.parametrize(("body", "param"), HOSTILE)
def test_hostile_bodies_are_refused_before_any_upstream_call(
    http: httpx.Client, fake: FakeUpstream, body: Any, param: str | None
) -> None:
    error = assert_error(http.post("/v1/rerank", json=body), 400, type="invalid_request_error")
    if param is not None:
        assert error["param"] == param
    assert fake.requests == []


def test_not_json_and_deep_json_are_refused(http: httpx.Client, fake: FakeUpstream) -> None:
    assert_error(http.post("/v1/rerank", content=b"{", headers={"content-type": "application/json"}), 400)
    deep = b'{"model": "rerank-v3.5", "query": "q", "documents": ' + b"[" * 200 + b"]" * 200 + b"}"
    assert_error(http.post("/v1/rerank", content=deep, headers={"content-type": "application/json"}), 400)
    assert fake.requests == []


def test_fixtures_exist_for_every_rerank_backend() -> None:
    """The golden suite covers the four backends this file routes to, and vLLM."""
    backends = {p.parents[2].name for p in FIXTURES.glob("*/operations/rerank/backend.yaml")}
    assert backends == {"cohere", "jina", "tei", "vllm"}
