"""`limits: {name: {one_of: [...]}}`: a value outside the list is a 400 that names what is offered."""

from __future__ import annotations

import pytest

from engine.errors import InvalidRequest
from engine.mapping.spec import Limit, ParamPolicy
from engine.pipeline.params import apply_policy

POLICY = ParamPolicy(
    actions={"response_format": "pass"},
    other="reject",
    limits={"response_format": Limit(one_of=("json", "verbose_json"))},
)


def test_an_offered_value_passes() -> None:
    request, dropped = apply_policy({"response_format": "json"}, POLICY, drop_params=False, provider="p")
    assert request == {"response_format": "json"} and dropped == []


def test_an_absent_value_passes() -> None:
    assert apply_policy({}, POLICY, drop_params=False, provider="p")[0] == {}


def test_another_value_is_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        apply_policy({"response_format": "srt"}, POLICY, drop_params=False, provider="p")
    assert "json, verbose_json" in caught.value.message and caught.value.param == "response_format"
