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


_CALL = {"index": 0, "function": {"name": "get_weather", "arguments": '{"a":1}'}}
# chunk shapes the typed view of a plain chunk reads, and shapes it leaves to the general reading
SHAPES: list[Any] = [
    _delta("Hello"),
    _delta('h\u00e9llo \u2603\n"quoted" \\ end'),
    {"choices": [{"delta": {"reasoning_content": "hmm", "reasoning": "so", "refusal": "no", "text": "t"}}]},
    {"choices": [{"delta": {"role": "assistant", "content": None, "tool_calls": [_CALL]}}]},
    {"choices": [{"delta": {"tool_calls": [{"function": None}, {"index": 1}, _CALL]}}]},
    {"choices": [{"delta": {}, "text": "a text completion's", "finish_reason": "stop"}]},
    {"choices": [{"text": "no delta at all", "content": "and this", "tool_calls": [_CALL]}]},
    {"choices": [{"delta": None, "text": "null delta"}]},
    {"choices": [{"delta": {"role": "assistant"}, "text": "not counted: the delta is not empty"}]},
    {"choices": [{"delta": {"content": "x", "audio": {"id": "a"}}}]},  # a field the view does not know
    {"choices": [{"delta": "not an object", "text": "abc"}]},
    {"choices": [{"delta": {"content": 5}}, {"delta": {"content": "yes"}}]},  # a number is not text
    {"choices": [{"delta": {"tool_calls": [{"function": {"name": 1, "arguments": "ab"}}]}}]},
    {"choices": [{"delta": {"tool_calls": ["call"]}}]},
    {"choices": ["not a choice", {"delta": {"content": "counted"}}]},
    {"choices": {"0": {"delta": {"content": "not a list"}}}},
    {"choices": [{"delta": {"content": "a"}}], "usage": None, "model": "m", "service_tier": "default"},
    {"choices": [{"delta": {"content": "with usage"}}], "usage": USAGE},
    {"choices": [], "usage": USAGE},
    {"choices": [{"delta": {"content": "an error too"}}], "error": {"message": "m", "type": "t"}},
    [1, 2],
]


@pytest.mark.parametrize("strip", [True, False])
@pytest.mark.parametrize("shape", SHAPES, ids=range(len(SHAPES)))
def test_pass_through_events_count_as_their_chunks_do(shape: Any, strip: bool) -> None:
    """The typed reading of a plain event, or the general one it leaves the others to, counts and takes
    out what `chunk` does with the decoded event."""
    by_chunk, by_event = StreamUsage(strip=strip), StreamUsage(strip=strip)
    sent = by_chunk.chunk(json.loads(json.dumps(shape)))
    for event in (_event(shape), _event(shape, b"\r\n\r\n"), _event(shape) + b"data: [DONE]\n\n"):
        by_event = StreamUsage(strip=strip)
        out = by_event.sse(event)
        assert by_event.characters == by_chunk.characters
        assert (by_event.usage, by_event.error) == (by_chunk.usage, by_chunk.error)
        if sent is None:
            assert b"usage" not in out and b"choices" not in out
        elif out.startswith(b"data: "):
            assert json.loads(out[6:].split(b"\n")[0]) == sent


def test_unread_fields_of_a_plain_event_are_checked_too() -> None:
    usage = StreamUsage(strip=True)
    for bad in (
        b'data: {"id": "\xff", "choices": []}\n\n',  # not UTF-8, in a field the count skips
        b'data: {"choices": 5, "id": }\n\n',  # the view stops at `choices`: the rest is still JSON
    ):
        with pytest.raises(MalformedEvent):
            usage.sse(bad)
    assert usage.sse('data: {"id": "h\u00e9", "choices": []}\n\n'.encode()) is not None
