"""The budget reservation: what a request may cost, at the dearest deployment of its alias."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.pipeline.reserve import DEFAULT_OUTPUT_CAP, reservation
from engine.routing.table import Alias, Capabilities, Cost, Deployment

IN, OUT = Decimal("0.000002"), Decimal("0.000008")
HI = [{"role": "user", "content": "Hello there, model!"}]  # 19 characters: 5 tokens


def _deployment(number: int, *costs: Cost, max_output: int | None = None, mode: str = "chat") -> Deployment:
    return Deployment(
        id=number,
        alias="a",
        provider="p",
        upstream_model=f"m{number}",
        mode=mode,
        costs=costs,
        capabilities=Capabilities(max_output_tokens=max_output),
    )


def _alias(*deployments: Deployment) -> Alias:
    return Alias("a", deployments)


def _tokens(input_price: Decimal = IN, output_price: Decimal = OUT) -> tuple[Cost, Cost]:
    return Cost("input_token", input_price), Cost("output_token", output_price)


def _chat(**fields: Any) -> dict[str, Any]:
    return {"model": "a", "messages": HI, **fields}


def test_the_prompt_estimate_and_max_tokens_are_priced() -> None:
    alias = _alias(_deployment(1, *_tokens()))
    assert reservation("chat", _chat(max_tokens=100), alias) == 5 * IN + 100 * OUT
    assert reservation("chat", _chat(max_completion_tokens=50, max_tokens=100), alias) == 5 * IN + 50 * OUT
    assert reservation("chat", _chat(max_tokens=100, n=3), alias) == 5 * IN + 300 * OUT


def test_without_max_tokens_the_deployments_cap_or_the_default() -> None:
    stated = _alias(_deployment(1, *_tokens(), max_output=1000))
    assert reservation("chat", _chat(), stated) == 5 * IN + 1000 * OUT
    unstated = _alias(_deployment(1, *_tokens()))
    assert reservation("chat", _chat(), unstated) == 5 * IN + DEFAULT_OUTPUT_CAP * OUT
    assert reservation("chat", _chat(max_tokens=True), unstated) == 5 * IN + DEFAULT_OUTPUT_CAP * OUT


def test_the_dearest_deployment_sets_the_reservation() -> None:
    cheap = _deployment(1, *_tokens())
    dear = _deployment(2, *_tokens(IN * 10, OUT * 10))
    free = _deployment(3)
    assert reservation("chat", _chat(max_tokens=10), _alias(cheap, dear, free)) == 10 * (5 * IN + 10 * OUT)


def test_an_unpriced_alias_reserves_nothing() -> None:
    assert reservation("chat", _chat(max_tokens=10), _alias(_deployment(1), _deployment(2))) == 0
    output_only = _alias(_deployment(1, Cost("output_token", OUT)))  # a price missing: cost unknown
    assert reservation("chat", _chat(max_tokens=10), output_only) == 0


def test_other_operations() -> None:
    embeddings = _alias(_deployment(1, *_tokens(), mode="embedding"))
    assert reservation("embeddings", {"model": "a", "input": "x" * 40}, embeddings) == 10 * IN
    images = _alias(_deployment(1, Cost("image", Decimal("0.04")), mode="image_generation"))
    assert reservation("images", {"model": "a", "prompt": "a cat", "n": 2}, images) == Decimal("0.08")
    speech = _alias(_deployment(1, Cost("character", Decimal("0.000015")), mode="audio_speech"))
    assert reservation("speech", {"model": "a", "input": "Hello!"}, speech) == Decimal("0.00009")
    audio = _alias(_deployment(1, Cost("audio_second", Decimal("0.0001")), mode="audio_transcription"))
    assert reservation("transcriptions", {"model": "a"}, audio) == 0  # its length is not known before


def test_rerank_reserves_search_units_by_its_documents() -> None:
    search = _deployment(1, Cost("search_unit", Decimal("0.002")), mode="rerank")
    request = {"model": "a", "query": "q", "documents": ["d"] * 101}
    assert reservation("rerank", request, _alias(search)) == Decimal("0.004")  # 101 documents: 2 units


def test_rerank_reserves_its_query_and_documents_as_tokens() -> None:
    tokens = _deployment(1, Cost("input_token", IN), mode="rerank")
    request = {"model": "a", "query": "abcd" * 3, "documents": ["abcd", "abcdefgh"]}  # 24 characters
    assert reservation("rerank", request, _alias(tokens)) == 6 * IN


def test_rerank_object_documents_count_every_field() -> None:
    tokens = _deployment(1, Cost("input_token", IN), mode="rerank")
    documents = [{"title": "abcd", "text": "abcd", "queue": "abcd"}, "abcd"]  # 16 characters
    request = {"model": "a", "query": "abcd" * 2, "documents": documents}  # and 8
    assert reservation("rerank", request, _alias(tokens)) == 6 * IN
