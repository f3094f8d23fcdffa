"""The strict SDK-type checker the e2e and golden suites use (tests/support/sdk_types.py) catches what a
typed client would trip on, and only that."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

from tests.support.sdk_types import check_body, check_event

CHUNK = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1735732800,
    "model": "gpt-4",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}],
}


def _raw(value: Any) -> bytes:
    return json.dumps(value).encode()


def test_a_chunk_passes_and_extensions_ride_as_extras() -> None:
    assert check_event("chat/completions", None, _raw(CHUNK)) is None
    extended = {**CHUNK, "choices": [{**CHUNK["choices"][0], "delta": {"reasoning_content": "hmm"}}]}
    assert check_event("chat/completions", None, _raw({**extended, "prompt_filter_results": []})) is None
    assert check_event("chat/completions", None, b"[DONE]") is None


def _chunk_problem(chunk: dict[str, Any]) -> str:
    return check_event("chat/completions", None, _raw(chunk)) or ""


def test_types_are_strict_no_coercion() -> None:
    assert "object" in _chunk_problem({**CHUNK, "object": ""})
    assert "created" in _chunk_problem({**CHUNK, "created": "1735732800"})
    assert "created" in _chunk_problem({**CHUNK, "created": 1735732800.0})
    assert "id: Field required" in _chunk_problem({k: v for k, v in CHUNK.items() if k != "id"})


def test_errors_are_checked_in_each_dialect_shape() -> None:
    openai_error = {"error": {"message": "no", "type": "invalid_request_error", "param": None, "code": None}}
    assert check_body("chat/completions", 400, "application/json", _raw(openai_error)) is None
    numeric_code = {"error": {**openai_error["error"], "code": 500}}
    assert "code" in (check_event("chat/completions", None, _raw(numeric_code)) or "")
    anthropic_error = {"type": "error", "error": {"type": "not_found_error", "message": "no"}}
    assert check_body("messages", 404, "application/json", _raw(anthropic_error)) is None
    unknown = {"type": "error", "error": {"type": "request_too_large", "message": "big"}}
    assert "names no variant" in (check_body("messages", 413, "application/json", _raw(unknown)) or "")


def test_typed_events_are_checked_against_the_variant_they_name() -> None:
    delta = {
        "type": "response.output_text.delta",
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "delta": "Hi",
        "logprobs": [],
        "sequence_number": 3,
    }
    assert check_event("responses", "response.output_text.delta", _raw(delta)) is None
    assert "carries data of type" in (check_event("responses", "response.text.delta", _raw(delta)) or "")
    no_number = {k: v for k, v in delta.items() if k != "sequence_number"}
    assert "sequence_number" in (check_event("responses", delta["type"], _raw(no_number)) or "")
    assert check_event("messages", "ping", _raw({"type": "ping"})) is None
    assert "names no variant" in (check_event("messages", "bogus", _raw({"type": "bogus"})) or "")


def test_base64_embeddings_are_decoded_as_the_sdk_decodes_them() -> None:
    vector = base64.b64encode(struct.pack("<2f", 0.5, -1.0)).decode()
    answer = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": vector}],
        "model": "m",
        "usage": {"prompt_tokens": 1, "total_tokens": 1},
    }
    assert check_body("embeddings", 200, "application/json", _raw(answer)) is None
    answer["data"][0]["embedding"] = base64.b64encode(b"abc").decode()
    assert "float32" in (check_body("embeddings", 200, "application/json", _raw(answer)) or "")


def test_a_streamed_completion_may_leave_finish_reason_null_as_openai_does() -> None:
    chunk = {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "text": "a", "logprobs": None, "finish_reason": None}],
    }
    assert check_event("completions", None, _raw(chunk)) is None
    del chunk["choices"][0]["finish_reason"]
    assert "finish_reason" in (check_event("completions", None, _raw(chunk)) or "")
