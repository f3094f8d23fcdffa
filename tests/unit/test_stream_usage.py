"""Reading usage out of streams: canonical chunks and passthrough SSE bytes, stripped when not asked."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from engine.mapping.framing import MalformedEvent
from engine.pipeline.stream_events import openai_sse
from engine.pipeline.stream_usage import StreamUsage
from engine.pipeline.streaming import passthrough_stream
from engine.pipeline.tokens import answer_characters, tokens
from tests.fakes.reads import event_stream_reads

USAGE = {"prompt_tokens": 16, "completion_tokens": 9, "total_tokens": 25}


def _event(payload: Any, newline: bytes = b"\n\n") -> bytes:
    return b"data: " + json.dumps(payload).encode() + newline


def _delta(text: str) -> dict[str, Any]:
    return {"id": "c", "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


def test_chunks_count_text_and_take_out_the_usage_chunk() -> None:
    usage = StreamUsage(strip=True)
    assert usage.chunk(_delta("Hello")) == _delta("Hello")
    assert usage.chunk({"id": "c", "choices": [], "usage": USAGE}) is None
    # usage on a chunk that also has choices: the chunk goes on without it
    last = {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": USAGE}
    assert usage.chunk(last) == {"id": "c", "choices": last["choices"]}
    assert usage.usage == USAGE and usage.characters == 5


def test_a_client_that_asked_keeps_its_usage() -> None:
    usage = StreamUsage(strip=False)
    chunk = {"id": "c", "choices": [], "usage": USAGE}
    assert usage.chunk(chunk) is chunk and usage.usage == USAGE


def test_tool_arguments_and_reasoning_count_towards_the_estimate() -> None:
    usage = StreamUsage(strip=True)
    call = {"index": 0, "function": {"name": "get_weather", "arguments": '{"a":1}'}}
    usage.chunk({"choices": [{"delta": {"reasoning_content": "hmm", "tool_calls": [call]}}]})
    assert usage.characters == 3 + len("get_weather") + 7
    assert tokens(usage.characters) == 6  # ceil(21 / 4)


def test_a_whole_answer_is_counted_as_its_stream_would_be() -> None:
    call = {"index": 0, "function": {"name": "get_weather", "arguments": '{"a":1}'}}
    usage = StreamUsage(strip=True)
    usage.chunk({"choices": [{"delta": {"reasoning_content": "hmm", "tool_calls": [call]}}]})
    usage.chunk({"choices": [{"delta": {"content": "Sunny."}}]})
    message = {"role": "assistant", "content": "Sunny.", "reasoning_content": "hmm", "tool_calls": [call]}
    assert answer_characters({"choices": [{"index": 0, "message": message}]}) == usage.characters
    text_completion = {"choices": [{"index": 0, "text": "Sunny."}]}
    assert answer_characters(text_completion) == len("Sunny.")


def test_sse_bytes_pass_unchanged_unless_a_usage_event_is_taken_out() -> None:
    usage = StreamUsage(strip=True)
    text = _event(_delta("Hi")) + _event(_delta(" there"))
    assert usage.sse(text) == text
    tail = _event({"id": "c", "choices": [], "usage": USAGE}) + b"data: [DONE]\n\n"
    assert usage.sse(tail) == b"data: [DONE]\n\n"
    assert usage.usage == USAGE and usage.characters == 8


def test_crlf_events_are_split_on_their_own_blank_lines() -> None:
    usage = StreamUsage(strip=True)
    data = _event(_delta("Hi"), b"\r\n\r\n") + _event({"choices": [], "usage": USAGE}, b"\r\n\r\n")
    assert usage.sse(data) == _event(_delta("Hi"), b"\r\n\r\n")


def test_an_in_band_error_is_noted() -> None:
    usage = StreamUsage(strip=False)
    usage.sse(_event({"error": {"message": "overloaded", "type": "server_error", "code": "busy"}}))
    assert usage.error == ("server_error", "busy")


def test_a_usage_event_cut_across_reads_is_still_taken_out() -> None:
    usage_event = _event({"id": "c", "choices": [], "usage": USAGE})
    reads = [_event(_delta("Hi")), usage_event[:4], usage_event[4:], b"data: [DONE]\n\n"]

    async def forwarded() -> bytes:
        response = event_stream_reads(reads)
        return b"".join([data async for data in openai_sse(passthrough_stream(response, "x", usage))])

    usage = StreamUsage(strip=True)
    assert asyncio.run(forwarded()) == _event(_delta("Hi")) + b"data: [DONE]\n\n"
    assert usage.usage == USAGE


@pytest.mark.parametrize("strip", [True, False])
def test_events_whose_data_is_not_json_are_malformed(strip: bool) -> None:
    usage = StreamUsage(strip=strip)
    split_json = b'data: {"id": "c",\ndata: "choices": []}\n\n'  # JSON over two data lines is fine
    assert usage.sse(split_json + _event({"id": "c", "choices": [], "usage": USAGE})) is not None
    for bad in (b"data: <html>\n\n", b'data: {"id": \n\n', _event(_delta("a")) + b"data: oops\n\n"):
        with pytest.raises(MalformedEvent):
            usage.sse(bad)
