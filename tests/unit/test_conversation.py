"""Stored conversations: the stream accumulator, how history joins a new request, the `store` section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.api.conversation import AssistantAccumulator, assistant_message, continue_from
from engine.mapping.compiler import MappingLoadError
from engine.mapping.dialects import load_dialects
from engine.settings import project_path


def chunk(**delta: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": None}
    return {"object": "chat.completion.chunk", "choices": [choice]}


def test_accumulator_joins_text_reasoning_and_blocks() -> None:
    acc = AssistantAccumulator()
    for piece in (
        chunk(role="assistant", content=""),
        chunk(reasoning_content="Think"),
        chunk(reasoning_content="ing."),
        chunk(thinking_blocks=[{"type": "thinking", "thinking": "Thinking.", "signature": "s"}]),
        chunk(content="Hello"),
        chunk(content=" there."),
        {"choices": [], "usage": {"prompt_tokens": 3}},  # a usage-only chunk
    ):
        acc.feed(piece)
    assert acc.message() == {
        "role": "assistant",
        "content": "Hello there.",
        "reasoning_content": "Thinking.",
        "thinking_blocks": [{"type": "thinking", "thinking": "Thinking.", "signature": "s"}],
    }


def test_accumulator_assembles_parallel_tool_calls_by_index() -> None:
    acc = AssistantAccumulator()
    start = {"type": "function", "function": {"name": "get_weather", "arguments": ""}}
    acc.feed(chunk(tool_calls=[{"index": 0, "id": "call_a", **start}]))
    acc.feed(chunk(tool_calls=[{"index": 0, "function": {"arguments": '{"location":'}}]))
    acc.feed(chunk(tool_calls=[{"index": 1, "id": "call_b", **start, "extra_content": {"k": "v"}}]))
    acc.feed(chunk(tool_calls=[{"index": 1, "function": {"arguments": '{"location":"Rome"}'}}]))
    acc.feed(chunk(tool_calls=[{"index": 0, "function": {"arguments": '"Paris"}'}}]))
    assert acc.message() == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_a",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
            },
            {
                "id": "call_b",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"location":"Rome"}'},
                "extra_content": {"k": "v"},
            },
        ],
    }


def test_empty_stream_is_an_empty_assistant_message() -> None:
    assert AssistantAccumulator().message() == {"role": "assistant", "content": None}


def test_assistant_message_of_an_answer_keeps_what_is_sent_back() -> None:
    answer = {
        "choices": [
            {
                "message": {"role": "assistant", "content": "Hi", "reasoning_content": "r", "refusal": None},
                "finish_reason": "stop",
            }
        ]
    }
    assert assistant_message(answer) == {"role": "assistant", "content": "Hi", "reasoning_content": "r"}
    assert assistant_message({}) == {"role": "assistant", "content": None}


def test_continue_from_keeps_the_new_instructions_first_and_drops_the_old() -> None:
    history = [
        {"role": "system", "content": "old"},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
    ]
    new = [{"role": "system", "content": "new"}, {"role": "user", "content": "q2"}]
    assert continue_from(history, new) == [
        {"role": "system", "content": "new"},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
    ]
    assert continue_from(history, [{"role": "user", "content": "q2"}])[0] == {"role": "user", "content": "q1"}


def _dialect(tmp_path: Path, text: str) -> None:
    (tmp_path / "dialects").mkdir()
    (tmp_path / "dialects" / "toy.yaml").write_text(text)
    load_dialects(tmp_path)


TOY = """\
paths: [/toy]
operation: {operation}
request: {{model: m, messages: [{{role: user, content: hi}}]}}
response: {{id: x}}
error: {{e: "{{{{ error.message }}}}"}}
"""


STORE = 'store: {save: true, previous: "{{ request.p }}", id: "{{ response.id }}"}\n'


def test_store_needs_save_previous_and_id(tmp_path: Path) -> None:
    with pytest.raises(MappingLoadError, match=r"toy\.yaml:6: `store` must be a mapping with"):
        _dialect(tmp_path, TOY.format(operation="chat") + 'store: {save: true, id: "{{ response.id }}"}\n')


def test_store_is_for_chat_dialects(tmp_path: Path) -> None:
    with pytest.raises(MappingLoadError, match="needs `operation: chat`"):
        _dialect(tmp_path, TOY.format(operation="embeddings") + STORE)


def test_a_streaming_dialect_with_store_needs_stream_id(tmp_path: Path) -> None:
    with pytest.raises(MappingLoadError, match=r"store\.stream_id"):
        _dialect(tmp_path, TOY.format(operation="chat") + STORE + "stream: {event: []}\n")


def test_store_sections_see_only_their_variables(tmp_path: Path) -> None:
    wrong = STORE.replace("request.p", "response.id")  # `previous` sees (request, headers) only
    with pytest.raises(MappingLoadError, match=r"toy\.yaml:6"):
        _dialect(tmp_path, TOY.format(operation="chat") + wrong)


def test_the_responses_dialect_keeps_and_continues() -> None:
    store = load_dialects(project_path("mappings"))["responses"].store
    assert store is not None and store.stream_id is not None and store.missing is not None
    assert store.save({}, {}) is True and store.save({"store": False}, {}) is False
    assert store.previous({"previous_response_id": "resp_1"}, {}) == "resp_1"
    assert store.missing("resp_1", {})["code"] == "previous_response_not_found"
