"""What one answered request cost: the deployment's prices times the answer's usage, in exact Decimals.

Prices are the deployment's `Cost(unit, price)` rows (LiteLLM's `*_cost_per_*` keys are imported onto
them, see engine/config/litellm.py). Which counts each operation prices, and with which unit:

    chat, completions, embeddings   usage.prompt_tokens                                  x input_token
                                      of which prompt_tokens_details.cached_tokens      x cached_input_token
                                    usage.completion_tokens                              x output_token
                                      of which completion_tokens_details.reasoning_tokens x reasoning_token
                                    (cached and reasoning tokens are split off only when their unit has a
                                    price; otherwise they are ordinary input / output tokens)
    images                          the images in the answer's `data` (else the request's `n`, else 1)
                                                                                         x image
    speech                          the characters of the request's `input`             x character
    transcriptions, translations    seconds of audio: the answer's `usage.seconds` (`usage: {type:
                                    duration, seconds}`), else its `duration` (verbose_json) x audio_second
    rerank                          each unit the deployment prices, as the answer reports it:
                                    meta.billed_units.search_units                      x search_unit
                                    meta.tokens.input_tokens, else billed_units.total_tokens x input_token
                                    (a rerank is billed in search units or in tokens, whichever the
                                    deployment prices; a unit priced at 0 may go unreported). Estimates
                                    (budget reservations, answers without counts) pass `usage.prompt_tokens`
                                    instead, and search units as ceil(documents / 100): a search unit is one
                                    query over up to 100 documents.

The cost is None -- not known -- rather than a guess when none of the operation's units has a price,
when a count is missing or malformed, or when a count that is not zero has no price (a partial sum is
not the cost). So plain-text transcripts (text, srt, vtt: no duration in them) and token-billed
transcriptions (`usage: {type: tokens}`: audio tokens have no unit here) are never priced.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from decimal import Decimal, localcontext
from typing import Any

from engine.routing.table import Cost

__all__ = ["COST_HEADER", "add_cost_header", "cost_of", "format_cost"]

COST_HEADER = "x-turnout-cost"

Counts = dict[str, Decimal]
_TOKEN_UNITS = ("input_token", "cached_input_token", "output_token", "reasoning_token")


def cost_of(costs: Sequence[Cost], operation: str, request: Mapping[str, Any], answer: Any) -> Decimal | None:
    """The cost in USD of one answered `operation`, or None when it is not known (see the module's table).

    `request` is the canonical request as sent; `answer` the canonical answer (None before it arrived).
    """
    rule = _RULES.get(operation)
    if rule is None or not costs:
        return None
    units, count = rule
    prices = {cost.unit: cost.price for cost in costs}
    if not any(unit in prices for unit in units):
        return None
    counts = count(prices, request, answer)
    return None if counts is None else _total(prices, counts)


def format_cost(cost: Decimal) -> str:
    """A header value: plain digits (no exponent), trailing zeros trimmed ("0.00008", "2", "0")."""
    text = f"{cost:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def add_cost_header(
    headers: MutableMapping[str, str],
    costs: Sequence[Cost],
    operation: str,
    request: Mapping[str, Any],
    answer: Any,
) -> Decimal | None:
    """Set `x-turnout-cost` when the cost is known; returns it."""
    cost = cost_of(costs, operation, request, answer)
    if cost is not None:
        headers[COST_HEADER] = format_cost(cost)
    return cost


def _total(prices: Mapping[str, Decimal], counts: Counts) -> Decimal | None:
    total = Decimal(0)
    with localcontext(prec=80):  # wide enough that no product or sum of real counts and prices rounds
        for unit, count in counts.items():
            if not count:
                continue
            price = prices.get(unit)
            if price is None:
                return None
            total += count * price
    return total


# ---- counts per operation: {unit: count}, or None when the usage is not known -----------------------


def _tokens(prices: Mapping[str, Decimal], answer: Any, *, generates: bool) -> Counts | None:
    usage = answer.get("usage") if isinstance(answer, Mapping) else None
    if not isinstance(usage, Mapping):
        return None
    prompt = _integer(usage.get("prompt_tokens"))
    completion = usage.get("completion_tokens")
    completion = _integer(0 if completion is None and not generates else completion)
    if prompt is None or completion is None:
        return None
    inputs = _split(prompt, usage.get("prompt_tokens_details"), "cached_tokens", "cached_input_token", prices)
    outputs = _split(
        completion, usage.get("completion_tokens_details"), "reasoning_tokens", "reasoning_token", prices
    )
    if inputs is None or outputs is None:
        return None
    (ordinary_in, cached), (ordinary_out, reasoning) = inputs, outputs
    return {
        "input_token": ordinary_in,
        "cached_input_token": cached,
        "output_token": ordinary_out,
        "reasoning_token": reasoning,
    }


def _split(
    total: int, details: Any, field: str, unit: str, prices: Mapping[str, Decimal]
) -> tuple[Decimal, Decimal] | None:
    """(ordinary, special) tokens of `total`: the special ones (cached, reasoning) when `unit` has a price."""
    if unit not in prices or not isinstance(details, Mapping) or details.get(field) is None:
        return Decimal(total), Decimal(0)
    part = _integer(details[field])
    if part is None or part > total:
        return None
    return Decimal(total - part), Decimal(part)


def _chat(prices: Mapping[str, Decimal], request: Mapping[str, Any], answer: Any) -> Counts | None:
    return _tokens(prices, answer, generates=True)


def _embeddings(prices: Mapping[str, Decimal], request: Mapping[str, Any], answer: Any) -> Counts | None:
    return _tokens(prices, answer, generates=False)  # an embedding may report prompt tokens only


def _images(prices: Mapping[str, Decimal], request: Mapping[str, Any], answer: Any) -> Counts | None:
    data = answer.get("data") if isinstance(answer, Mapping) else None
    count = len(data) if isinstance(data, list) else _integer(request.get("n") or 1)
    return None if count is None else {"image": Decimal(count)}


def _speech(prices: Mapping[str, Decimal], request: Mapping[str, Any], answer: Any) -> Counts | None:
    text = request.get("input")
    return {"character": Decimal(len(text))} if isinstance(text, str) else None


def _audio(prices: Mapping[str, Decimal], request: Mapping[str, Any], answer: Any) -> Counts | None:
    if not isinstance(answer, Mapping):
        return None  # a plain-text transcript, or not read
    usage = answer.get("usage")
    seconds = None
    if isinstance(usage, Mapping) and usage.get("type", "duration") == "duration":
        seconds = _seconds(usage.get("seconds"))  # what the upstream reports as used (billed)
    if seconds is None:
        seconds = _seconds(answer.get("duration"))  # verbose_json: the length of the audio
    return None if seconds is None else {"audio_second": seconds}


_DOCUMENTS_PER_SEARCH_UNIT = 100


def _rerank(prices: Mapping[str, Decimal], request: Mapping[str, Any], answer: Any) -> Counts | None:
    answer = answer if isinstance(answer, Mapping) else {}
    meta, estimate = answer.get("meta"), answer.get("usage")
    found: dict[str, int | None]
    if isinstance(estimate, Mapping) and not isinstance(meta, Mapping):
        documents = request.get("documents")
        sent = len(documents) if isinstance(documents, list) else 0
        found = {
            "search_unit": -(-sent // _DOCUMENTS_PER_SEARCH_UNIT),
            "input_token": _integer(estimate.get("prompt_tokens")),
        }
    else:
        meta = meta if isinstance(meta, Mapping) else {}
        billed, tokens = meta.get("billed_units"), meta.get("tokens")
        billed = billed if isinstance(billed, Mapping) else {}
        tokens = tokens if isinstance(tokens, Mapping) else {}
        input_tokens = tokens.get("input_tokens")
        found = {
            "search_unit": _integer(billed.get("search_units")),
            "input_token": _integer(billed.get("total_tokens") if input_tokens is None else input_tokens),
        }
    counts: Counts = {}
    for unit, count in found.items():
        if unit not in prices:
            continue
        if count is None:
            if prices[unit]:
                return None  # a unit the deployment pays for, not reported: the cost is not known
            continue
        counts[unit] = Decimal(count)
    return counts


def _integer(value: Any) -> int | None:
    """A count: a non-negative integer (an integral float too); None for anything else."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _seconds(value: Any) -> Decimal | None:
    """A non-negative number of seconds, as the Decimal of its shortest written form (2.47, not 2.4699...)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return Decimal(repr(value)) if value >= 0 else None


_Rule = tuple[tuple[str, ...], Callable[[Mapping[str, Decimal], Mapping[str, Any], Any], Counts | None]]
_RULES: dict[str, _Rule] = {
    "chat": (_TOKEN_UNITS, _chat),
    "completions": (_TOKEN_UNITS, _chat),
    "embeddings": (_TOKEN_UNITS, _embeddings),
    "images": (("image",), _images),
    "speech": (("character",), _speech),
    "transcriptions": (("audio_second",), _audio),
    "translations": (("audio_second",), _audio),
    "rerank": (("search_unit", "input_token"), _rerank),
}
