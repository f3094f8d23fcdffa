"""Plain chat through both backends with the OpenAI SDK: one answer, a stream with usage, a conversation."""

from __future__ import annotations

import httpx
import openai

from tests.e2e.conftest import OLLAMA, Backend, sse_events
from tests.fakes import FakeUpstream


def test_chat_answer(client: openai.OpenAI, fake: FakeUpstream, backend: Backend) -> None:
    backend.answer(fake, "simple")
    answer = client.chat.completions.create(
        model=backend.alias, messages=[{"role": "user", "content": "Hello!"}]
    )
    assert answer.object == "chat.completion"
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].message.content == "Hello! It's nice to meet you."
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (
        16,
        9,
        25,
    )
    sent = fake.last.json
    assert sent["model"] == "test-model"
    assert sent["messages"] == [{"role": "user", "content": "Hello!"}]
    if backend.is_ollama:
        assert sent["stream"] is False
    else:
        assert "stream" not in sent


def test_stream_with_usage(client: openai.OpenAI, fake: FakeUpstream, backend: Backend) -> None:
    backend.stream(fake, "stream_text")
    chunks = list(
        client.chat.completions.create(
            model=backend.alias,
            messages=[{"role": "user", "content": "Hello!"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello! It's nice to meet you."
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 25
    assert len({c.id for c in chunks}) == 1
    sent = fake.last.json
    assert sent["stream"] is True
    if not backend.is_ollama:
        assert sent["stream_options"] == {"include_usage": True}


def test_stream_bytes_end_with_done(http: httpx.Client, fake: FakeUpstream, backend: Backend) -> None:
    backend.stream(fake, "stream_text")
    body = {
        "model": backend.alias,
        "messages": [{"role": "user", "content": "Hello!"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.content.endswith(b"data: [DONE]\n\n")
    events = sse_events(response.content)
    assert events[-1] == "[DONE]"
    assert events[:-1] and all(e["object"] == "chat.completion.chunk" for e in events[:-1])
    assert "usage" in events[-2] and events[-2]["choices"] == []


def test_stream_without_usage_has_no_usage_chunk(client: openai.OpenAI, fake: FakeUpstream) -> None:
    # only the translating backend decides about the usage chunk; a passthrough forwards what it gets
    OLLAMA.stream(fake, "stream_text")
    chunks = list(
        client.chat.completions.create(
            model="ollama-model", messages=[{"role": "user", "content": "Hello!"}], stream=True
        )
    )
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_multi_turn_with_system(client: openai.OpenAI, fake: FakeUpstream, backend: Backend) -> None:
    backend.answer(fake, "multi_turn")
    conversation: list[dict[str, str]] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "What is my name?"},
    ]
    answer = client.chat.completions.create(model=backend.alias, messages=conversation)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "Your name is Ada."
    sent = fake.last.json["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [(m["role"], m["content"]) for m in conversation]


def test_developer_role_becomes_system_for_ollama(client: openai.OpenAI, fake: FakeUpstream) -> None:
    OLLAMA.answer(fake, "system")
    client.chat.completions.create(
        model="ollama-model",
        messages=[{"role": "developer", "content": "Talk like a pirate."}, {"role": "user", "content": "Hi"}],
    )
    assert fake.last.json["messages"][0] == {"role": "system", "content": "Talk like a pirate."}
