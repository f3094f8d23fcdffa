"""The cost of one answered request: every unit, and every case where the cost is not known (None)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.pipeline.costs import COST_HEADER, add_cost_header, cost_of, format_cost
from engine.routing.table import Cost


def _costs(**prices: str) -> tuple[Cost, ...]:
    return tuple(Cost(unit, Decimal(price)) for unit, price in prices.items())


def _chat(prompt: int = 1000, completion: int = 200, **usage: Any) -> dict[str, Any]:
    return {"usage": {"prompt_tokens": prompt, "completion_tokens": completion, **usage}}


TOKENS = _costs(input_token="0.000002", output_token="0.000008")


# ---- tokens: chat, completions, embeddings -------------------------------------------------------


@pytest.mark.parametrize("operation", ["chat", "completions"])
def test_input_and_output_tokens(operation: str) -> None:
    assert cost_of(TOKENS, operation, {}, _chat()) == Decimal("0.0036")  # 1000 x 2e-6 + 200 x 8e-6


def test_embeddings_report_prompt_tokens_only() -> None:
    answer = {"usage": {"prompt_tokens": 8, "total_tokens": 8}}
    assert cost_of(_costs(input_token="0.0000001"), "embeddings", {}, answer) == Decimal("0.0000008")


def test_cached_tokens_at_their_own_price() -> None:
    costs = (*TOKENS, Cost("cached_input_token", Decimal("0.0000005")))
    answer = _chat(prompt_tokens_details={"cached_tokens": 600})
    # 400 x 2e-6 + 600 x 5e-7 + 200 x 8e-6
    assert cost_of(costs, "chat", {}, answer) == Decimal("0.0027")


def test_cached_tokens_without_a_price_are_input_tokens() -> None:
    answer = _chat(prompt_tokens_details={"cached_tokens": 600})
    assert cost_of(TOKENS, "chat", {}, answer) == Decimal("0.0036")


def test_reasoning_tokens_at_their_own_price() -> None:
    costs = (*TOKENS, Cost("reasoning_token", Decimal("0.00001")))
    answer = _chat(completion_tokens_details={"reasoning_tokens": 150})
    # 1000 x 2e-6 + 50 x 8e-6 + 150 x 1e-5
    assert cost_of(costs, "chat", {}, answer) == Decimal("0.0039")


def test_reasoning_tokens_without_a_price_are_output_tokens() -> None:
    answer = _chat(completion_tokens_details={"reasoning_tokens": 150})
    assert cost_of(TOKENS, "chat", {}, answer) == Decimal("0.0036")


def test_null_details_count_as_none_set_apart() -> None:
    costs = (*TOKENS, *_costs(cached_input_token="0.0000005", reasoning_token="0.00001"))
    answer = _chat(prompt_tokens_details=None, completion_tokens_details={"reasoning_tokens": None})
    assert cost_of(costs, "chat", {}, answer) == Decimal("0.0036")


def test_zero_tokens_cost_nothing() -> None:
    assert cost_of(TOKENS, "chat", {}, _chat(0, 0)) == Decimal(0)


def test_arithmetic_is_exact() -> None:
    costs = _costs(input_token="0.0000000001", output_token="1234567890.0123456789")
    answer = _chat(987654321987, 3)
    assert cost_of(costs, "chat", {}, answer) == Decimal("98.7654321987") + Decimal("3703703670.0370370367")


@pytest.mark.parametrize(
    "answer",
    [
        None,
        {},
        {"usage": None},
        {"usage": {"completion_tokens": 5}},  # no prompt_tokens
        {"usage": {"prompt_tokens": 5}},  # a chat answer without completion_tokens
        _chat(-1, 5),
        _chat(True, 5),  # type: ignore[arg-type]
        {"usage": {"prompt_tokens": "5", "completion_tokens": 5}},
        _chat(prompt_tokens_details={"cached_tokens": 2000}),  # more cached than prompt tokens
        _chat(prompt_tokens_details={"cached_tokens": "many"}),
    ],
)
def test_unknown_token_usage(answer: Any) -> None:
    costs = (*TOKENS, Cost("cached_input_token", Decimal("0.0000005")))
    assert cost_of(costs, "chat", {}, answer) is None


def test_more_reasoning_than_completion_tokens_is_unknown() -> None:
    costs = (*TOKENS, Cost("reasoning_token", Decimal("0.00001")))
    assert cost_of(costs, "chat", {}, _chat(completion_tokens_details={"reasoning_tokens": 201})) is None


def test_integral_float_counts_are_counts() -> None:
    assert cost_of(TOKENS, "chat", {}, _chat(1000.0, 200)) == Decimal("0.0036")  # type: ignore[arg-type]


def test_tokens_without_their_price_are_unknown() -> None:
    """A partial sum is not the cost: output tokens but no output price."""
    assert cost_of(_costs(input_token="0.000002"), "chat", {}, _chat()) is None
    assert cost_of(_costs(input_token="0.000002"), "chat", {}, _chat(completion=0)) == Decimal("0.002")


# ---- images, speech, audio seconds ---------------------------------------------------------------


IMAGE = _costs(image="0.04")


def test_images_counted_in_the_answer() -> None:
    answer = {"created": 1, "data": [{"url": "a"}, {"url": "b"}, {"url": "c"}]}
    assert cost_of(IMAGE, "images", {"n": 1}, answer) == Decimal("0.12")


@pytest.mark.parametrize(("request_", "expected"), [({"n": 2}, "0.08"), ({}, "0.04"), ({"n": None}, "0.04")])
def test_images_from_the_request_when_the_answer_has_no_data(request_: dict[str, Any], expected: str) -> None:
    assert cost_of(IMAGE, "images", request_, {"created": 1}) == Decimal(expected)


def test_images_with_a_malformed_n_are_unknown() -> None:
    assert cost_of(IMAGE, "images", {"n": "two"}, None) is None


def test_speech_priced_by_characters_of_the_input() -> None:
    costs = _costs(character="0.000015")
    request = {"input": "The quick brown fox.", "voice": "alloy"}
    assert cost_of(costs, "speech", request, None) == Decimal("0.0003")  # 20 x 1.5e-5
    assert cost_of(costs, "speech", {"input": "héllo"}, None) == Decimal("0.000075")  # characters, not bytes
    assert cost_of(costs, "speech", {"voice": "alloy"}, None) is None


AUDIO = _costs(audio_second="0.0001")


@pytest.mark.parametrize("operation", ["transcriptions", "translations"])
def test_audio_seconds_from_usage(operation: str) -> None:
    answer = {"text": "hi", "usage": {"type": "duration", "seconds": 5}}
    assert cost_of(AUDIO, operation, {}, answer) == Decimal("0.0005")


def test_audio_seconds_from_a_verbose_json_duration() -> None:
    answer = {"task": "transcribe", "duration": 2.47, "text": "hi"}
    assert cost_of(AUDIO, "transcriptions", {}, answer) == Decimal("0.000247")  # 2.47, not its binary float


def test_usage_seconds_win_over_duration() -> None:
    """`usage` is what the upstream counts as used (whole seconds at OpenAI); `duration` is the fallback."""
    answer = {"duration": 2.4700000286102295, "usage": {"type": "duration", "seconds": 3}}
    assert cost_of(AUDIO, "transcriptions", {}, answer) == Decimal("0.0003")


def test_token_usage_falls_back_to_duration() -> None:
    answer = {"duration": 2.5, "usage": {"type": "tokens", "input_tokens": 40, "output_tokens": 9}}
    assert cost_of(AUDIO, "transcriptions", {}, answer) == Decimal("0.00025")


@pytest.mark.parametrize(
    "answer",
    [
        None,  # text, srt, vtt: no duration in a plain-text transcript
        "Hello there.",
        {"text": "hi"},  # json without usage
        {"text": "hi", "usage": {"type": "tokens", "input_tokens": 40, "output_tokens": 9}},
        {"duration": -1.0},
        {"duration": float("nan")},
        {"duration": True},
        {"duration": "2.5"},
    ],
)
def test_unknown_audio_seconds(answer: Any) -> None:
    assert cost_of(AUDIO, "transcriptions", {}, answer) is None


# ---- no price applies ----------------------------------------------------------------------------


def test_no_cost_rows() -> None:
    assert cost_of((), "chat", {}, _chat()) is None


UNITS = ("input_token", "output_token", "cached_input_token", "reasoning_token")
UNITS += ("audio_second", "character", "image")


@pytest.mark.parametrize(
    ("operation", "request_", "answer", "own"),
    [
        ("chat", {}, _chat(), UNITS[:4]),
        ("embeddings", {}, {"usage": {"prompt_tokens": 8}}, UNITS[:4]),
        ("images", {"n": 1}, {"data": [{}]}, ("image",)),
        ("speech", {"input": "hi"}, None, ("character",)),
        ("transcriptions", {}, {"duration": 2.0}, ("audio_second",)),
    ],
)
def test_no_price_for_the_operation(
    operation: str, request_: dict[str, Any], answer: Any, own: tuple[str, ...]
) -> None:
    """Every price but the operation's own: no price applies."""
    others = tuple(Cost(unit, Decimal(1)) for unit in UNITS if unit not in own)
    assert cost_of(others, operation, request_, answer) is None


def test_unknown_operation() -> None:
    assert cost_of(TOKENS, "moderations", {}, _chat()) is None


# ---- the header ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cost", "text"),
    [
        ("0.0000800000", "0.00008"),
        ("1E-10", "0.0000000001"),
        ("2.000", "2"),
        ("1E+2", "100"),
        ("0E-10", "0"),
        ("0", "0"),
        ("12.5", "12.5"),
    ],
)
def test_format_cost(cost: str, text: str) -> None:
    assert format_cost(Decimal(cost)) == text


@given(st.decimals(min_value=0, max_value=10**9, allow_nan=False, allow_infinity=False, places=12))
def test_format_cost_is_plain_and_exact(cost: Decimal) -> None:
    text = format_cost(cost)
    assert "E" not in text.upper() and Decimal(text) == cost
    assert not ("." in text and text.endswith(("0", ".")))


def test_add_cost_header() -> None:
    headers: dict[str, str] = {}
    assert add_cost_header(headers, TOKENS, "chat", {}, _chat()) == Decimal("0.0036")
    assert headers == {COST_HEADER: "0.0036"}
    headers = {}
    assert add_cost_header(headers, TOKENS, "chat", {}, None) is None
    assert headers == {}


# ---- rerank: search units or tokens, whichever the deployment prices ------------------------------

SEARCHES = _costs(search_unit="0.002")
RERANK_TOKENS = _costs(input_token="0.000000018")
DOCS = {"documents": ["a"] * 150}


def _rerank(billed: dict[str, Any] | None = None, tokens: dict[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"api_version": {"version": "2"}}
    if billed is not None:
        meta["billed_units"] = billed
    if tokens is not None:
        meta["tokens"] = tokens
    return {"id": "r", "results": [], "meta": meta}


def test_rerank_priced_per_search_unit() -> None:
    assert cost_of(SEARCHES, "rerank", DOCS, _rerank({"search_units": 2})) == Decimal("0.004")


def test_rerank_priced_per_token_from_tokens_else_billed_total_tokens() -> None:
    answer = _rerank(tokens={"input_tokens": 1000})
    assert cost_of(RERANK_TOKENS, "rerank", DOCS, answer) == Decimal("0.000018")
    assert cost_of(RERANK_TOKENS, "rerank", DOCS, _rerank({"total_tokens": 100})) == Decimal("0.0000018")


def test_rerank_counts_only_the_units_it_prices() -> None:
    # Cohere reports tokens beside search units; a deployment priced per search unit pays units only
    answer = _rerank({"search_units": 1}, {"input_tokens": 500, "output_tokens": 0})
    assert cost_of(SEARCHES, "rerank", DOCS, answer) == Decimal("0.002")


def test_rerank_unit_priced_but_not_reported_is_unknown_unless_free() -> None:
    assert cost_of(SEARCHES, "rerank", DOCS, _rerank(tokens={"input_tokens": 5})) is None
    assert cost_of(RERANK_TOKENS, "rerank", DOCS, _rerank({"search_units": 1})) is None
    # LiteLLM's price list gives rerank models input_cost_per_token: 0 beside the price per query
    free_tokens = _costs(search_unit="0.002", input_token="0")
    assert cost_of(free_tokens, "rerank", DOCS, _rerank({"search_units": 1})) == Decimal("0.002")


MALFORMED = [None, {}, {"meta": None}, {"meta": {"billed_units": {"search_units": "1"}}}]


@pytest.mark.parametrize("answer", MALFORMED)
def test_rerank_malformed_meta_is_unknown(answer: Any) -> None:
    assert cost_of(SEARCHES, "rerank", DOCS, answer) is None


def test_rerank_estimate_counts_search_units_by_documents() -> None:
    """Estimates (a budget reservation, an answer without counts) carry `usage`, not `meta`."""
    estimate = {"usage": {"prompt_tokens": 400, "completion_tokens": 0}}
    assert cost_of(SEARCHES, "rerank", DOCS, estimate) == Decimal("0.004")  # 150 documents: 2 units
    assert cost_of(RERANK_TOKENS, "rerank", DOCS, estimate) == Decimal("0.0000072")
