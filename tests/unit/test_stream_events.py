"""Stream pieces rendered at the edge: SSE bytes for the OpenAI route, canonical chunks for dialects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from engine.errors import ServerShuttingDown
from engine.pipeline.model_name import ModelRename, renamed_stream
from engine.pipeline.stream_events import ChunkReader, Chunks, StreamError, StreamPiece, openai_sse

CHUNK = {"id": "c", "model": "qwen3:32b", "choices": [{"index": 0, "delta": {"content": "hi"}}]}
ERROR = ServerShuttingDown("ended")


async def _pieces(*pieces: StreamPiece) -> AsyncIterator[StreamPiece]:
    for piece in pieces:
        yield piece


def _sse(*pieces: StreamPiece) -> bytes:
    async def collect() -> bytes:
        return b"".join([data async for data in openai_sse(_pieces(*pieces))])

    return asyncio.run(collect())


def test_chunks_are_encoded_once_at_the_openai_edge_and_bytes_pass_as_they_are() -> None:
    raw = b'data: {"a":1}\n\n'
    assert _sse(raw, Chunks([CHUNK]), b"data: [DONE]\n\n") == (
        raw + b'data: {"id":"c","model":"qwen3:32b","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
        b"data: [DONE]\n\n"
    )


def test_an_error_is_an_event_of_its_own_even_after_half_an_event() -> None:
    assert _sse(b'data: {"a":1}\n\n', StreamError(ERROR)).endswith(
        b"\n\n" + b"data: " + ERROR.to_json() + b"\n\n"
    )
    assert _sse(b'data: {"a"', StreamError(ERROR)) == b'data: {"a"\n\ndata: ' + ERROR.to_json() + b"\n\n"


def test_a_dialect_reads_the_same_chunks_whatever_the_piece() -> None:
    reader = ChunkReader()
    decoded = list(reader.chunks(b'data: {"a":1}\n\ndata: [DONE]\n\n'))
    assert decoded == [{"a": 1}]
    assert list(reader.chunks(Chunks([CHUNK]))) == [CHUNK]
    assert list(reader.chunks(StreamError(ERROR))) == [ERROR.body()]


def test_the_alias_is_named_in_chunks_without_touching_the_mappings_own() -> None:
    chunks = Chunks([CHUNK, {"choices": []}])

    async def collect() -> list[StreamPiece]:
        return [piece async for piece in renamed_stream(_pieces(chunks), ModelRename("gpt-4"))]

    (renamed,) = asyncio.run(collect())
    assert isinstance(renamed, Chunks)
    assert renamed.items == [{**CHUNK, "model": "gpt-4"}, {"choices": []}]
    assert CHUNK["model"] == "qwen3:32b"
