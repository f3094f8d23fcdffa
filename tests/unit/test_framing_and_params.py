"""Stream framing splits events however the bytes arrive; parameter policy and precedence."""

from __future__ import annotations

import pytest

from engine.errors import InvalidRequest
from engine.mapping.framing import decoder_for
from engine.mapping.spec import Limit, ParamPolicy
from engine.pipeline.params import apply_policy, layer_parameters


def _feed(framing: str, data: bytes, size: int) -> list[tuple[bytes, str | None]]:
    decoder = decoder_for(framing)
    events = []
    for start in range(0, len(data), size):
        events += [(e.data, e.event_type) for e in decoder.feed(data[start : start + size])]
    events += [(e.data, e.event_type) for e in decoder.close()]
    return events


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
def test_sse_events_survive_any_chunking(size: int) -> None:
    data = b': keep-alive\n\nevent: delta\ndata: {"a":1}\n\ndata: {"b":\r\ndata: 2}\r\n\r\ndata: [DONE]\n\n'
    assert _feed("sse", data, size) == [(b'{"a":1}', "delta"), (b'{"b":\n2}', None), (b"[DONE]", None)]


@pytest.mark.parametrize("size", [1, 5, 1000])
def test_ndjson_lines_survive_any_chunking_and_a_missing_final_newline(size: int) -> None:
    data = b'{"a":1}\n\n{"b":2}\n{"c":3}'
    assert [d for d, _ in _feed("ndjson", data, size)] == [b'{"a":1}', b'{"b":2}', b'{"c":3}']


POLICY = ParamPolicy(
    actions={"model": "pass", "messages": "pass", "temperature": "pass", "logit_bias": "drop", "n": "reject"},
    other="drop",
    limits={"temperature": Limit(0, 1, clamp=True)},
)


def test_policy_drops_with_names_and_clamps() -> None:
    request = {"model": "m", "messages": [], "logit_bias": {}, "mystery": 1, "temperature": 1.5}
    out, dropped = apply_policy(request, POLICY, drop_params=False, provider="p")
    assert out == {"model": "m", "messages": [], "temperature": 1}
    assert dropped == ["logit_bias", "mystery"]


def test_policy_rejects_unless_drop_params() -> None:
    with pytest.raises(InvalidRequest, match="p does not support the parameter"):
        apply_policy({"n": 2}, POLICY, drop_params=False, provider="p")
    assert apply_policy({"n": 2}, POLICY, drop_params=True, provider="p") == ({}, ["n"])


def test_out_of_range_without_clamp_is_a_400() -> None:
    strict = ParamPolicy(actions={"n": "pass"}, other="reject", limits={"n": Limit(1, 1)})
    with pytest.raises(InvalidRequest, match="out of range"):
        apply_policy({"n": 3}, strict, drop_params=False, provider="p")


def test_precedence_request_over_overrides_over_defaults() -> None:
    merged = layer_parameters(
        {"temperature": 0.9, "options": {"top_k": 5}},
        {"temperature": 0.1, "num_ctx": 4096, "options": {"top_k": 1, "min_p": 0.1}},
        {"num_ctx": 2048, "keep_alive": "5m"},
    )
    assert merged == {
        "temperature": 0.9,
        "num_ctx": 4096,
        "keep_alive": "5m",
        "options": {"top_k": 5, "min_p": 0.1},
    }


def test_forced_values_win_over_the_request() -> None:
    merged = layer_parameters(
        {"temperature": 0.9, "options": {"num_ctx": 99999}},
        {"temperature": 0.1},
        {},
        {"temperature": 0.0, "options": {"num_ctx": 8192}},
    )
    assert merged == {"temperature": 0.0, "options": {"num_ctx": 8192}}
