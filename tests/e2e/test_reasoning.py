"""Reasoning: `reasoning_effort` / `think` in, `reasoning_content` out, whole and streamed."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.e2e.conftest import OLLAMA, OPENAI, Backend
from tests.fakes import FakeUpstream

QUESTION: list[Any] = [{"role": "user", "content": "Is 221 prime?"}]
THOUGHT = "221 is odd and not divisible by 3, 5, 7 or 11. Try 13: 13 x 17 = 221. So it is composite."


def _reasoning(message: Any) -> Any:
    return getattr(message, "reasoning_content", None) or (message.model_extra or {}).get("reasoning_content")


def test_reasoning_effort(client: openai.OpenAI, fake: FakeUpstream, backend: Backend) -> None:
    backend.answer(fake, "reasoning")
    answer = client.chat.completions.create(model=backend.alias, messages=QUESTION, reasoning_effort="medium")
    message = answer.choices[0].message
    assert message.content == "No. 221 = 13 x 17, so it is not prime."
    assert _reasoning(message) == THOUGHT
    sent = fake.last.json
    if backend.is_ollama:
        assert sent["think"] is True
        assert "reasoning_effort" not in sent
    else:
        assert sent["reasoning_effort"] == "medium"


@pytest.mark.parametrize(("effort", "think"), [("none", False), ("minimal", False), ("high", True)])
def test_reasoning_effort_levels_for_ollama(
    client: openai.OpenAI, fake: FakeUpstream, effort: Any, think: bool
) -> None:
    OLLAMA.answer(fake, "simple")
    client.chat.completions.create(model=OLLAMA.alias, messages=QUESTION, reasoning_effort=effort)
    assert fake.last.json["think"] is think


def test_no_reasoning_asked_sends_no_think(client: openai.OpenAI, fake: FakeUpstream) -> None:
    answer = OLLAMA.answer(fake, "simple")
    result = client.chat.completions.create(model=OLLAMA.alias, messages=QUESTION)
    assert "think" not in fake.last.json
    assert answer["message"].get("thinking") is None
    assert _reasoning(result.choices[0].message) is None


def test_think_extension(client: openai.OpenAI, fake: FakeUpstream) -> None:
    OLLAMA.answer(fake, "think_param")
    answer = client.chat.completions.create(model=OLLAMA.alias, messages=QUESTION, extra_body={"think": True})
    assert fake.last.json["think"] is True
    assert _reasoning(answer.choices[0].message) == THOUGHT


def test_think_is_dropped_for_openai_with_a_warning(client: openai.OpenAI, fake: FakeUpstream) -> None:
    OPENAI.answer(fake, "simple")
    raw = client.chat.completions.with_raw_response.create(
        model=OPENAI.alias, messages=QUESTION, extra_body={"think": True}
    )
    assert "think" not in fake.last.json
    assert "think" in raw.headers["x-turnout-warning"]
    assert raw.parse().choices[0].message.content


def test_streamed_reasoning(client: openai.OpenAI, fake: FakeUpstream, backend: Backend) -> None:
    backend.stream(fake, "stream_reasoning")
    chunks = list(
        client.chat.completions.create(
            model=backend.alias, messages=QUESTION, reasoning_effort="high", stream=True
        )
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    thought = "".join(_reasoning(d) or "" for d in deltas)
    text = "".join(d.content or "" for d in deltas)
    assert thought == THOUGHT
    assert text == "No. 221 = 13 x 17, so it is not prime."
    # reasoning comes first, then the answer
    first_text = next(i for i, d in enumerate(deltas) if d.content)
    assert all(not _reasoning(d) for d in deltas[first_text:])
