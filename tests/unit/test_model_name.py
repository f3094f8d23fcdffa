"""ModelRename: the `model` key's value replaced in JSON bytes, never anything inside a string."""

from __future__ import annotations

import json

from engine.pipeline.model_name import ModelRename

CHUNK = (
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"qwen3:32b",'
    b'"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n'
)


def test_a_stream_chunk_names_the_alias_and_later_chunks_take_the_fast_way() -> None:
    rename = ModelRename("gpt-4")
    first = rename.events(CHUNK)
    assert json.loads(first[6:])["model"] == "gpt-4"
    two = rename.events(CHUNK + CHUNK)  # the remembered bytes: one count and one replace
    assert two == first + first
    assert rename.events(b"data: [DONE]\n\n") == b"data: [DONE]\n\n"


def test_any_spacing_and_escaping_of_the_key_is_found() -> None:
    rename = ModelRename('odd "name"')
    data = b'data: {"id": "c", "model" :  "a\\"b", "choices": []}\n\n'
    assert json.loads(rename.events(data)[6:]) == {"id": "c", "model": 'odd "name"', "choices": []}


def test_text_that_looks_like_the_key_is_left_alone() -> None:
    rename = ModelRename("gpt-4")
    inside = {
        "content": 'say "model": "x"',  # escaped inside a string
        "role": "model",  # a value, not a key
        'k"model': "v",  # a key that only ends in "model
        "arguments": json.dumps({"model": "y"}),
    }
    data = json.dumps({"model": "q", "choices": [inside]}).encode()
    assert json.loads(rename.events(data)) == {"model": "gpt-4", "choices": [inside]}


def test_a_whole_answer_has_its_top_level_model_replaced() -> None:
    answer = {"id": "a", "object": "chat.completion", "model": "qwen3:32b", "choices": []}
    compact = json.dumps(answer, separators=(",", ":")).encode()
    spaced = json.dumps(answer).encode()
    for body in (compact, spaced):
        assert json.loads(ModelRename("gpt-4").answer(body, answer)) == {**answer, "model": "gpt-4"}
    same = ModelRename("qwen3:32b")
    assert same.answer(compact, answer) is compact
    assert ModelRename("gpt-4").answer(b"{}", {}) == b"{}"
