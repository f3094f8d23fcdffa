"""The end of the shutdown grace ends event streams with an error event and a 503 record, not a cut;
a client leaving (any other cancellation, or the stream closed) is a 499, and a bug mid-stream a 500."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from engine.pipeline.grace import StreamGrace
from engine.pipeline.metering import Meter, NullSink, metered_stream
from engine.pipeline.stream_events import openai_sse
from engine.usage.record import UsageRecord

FIRST = b'data: {"choices": []}\n\n'


class Records(NullSink):
    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    def finished(self, record: UsageRecord) -> None:
        self.records.append(record)


async def _endless(first: bytes, closed: asyncio.Event) -> AsyncIterator[bytes]:
    """An upstream that sends one chunk and then nothing, until it is closed."""
    try:
        yield first
        await asyncio.Event().wait()
    finally:
        closed.set()


async def _run(grace: StreamGrace, first: bytes, *, leave: bool = False) -> tuple[bytes, UsageRecord, bool]:
    """Consume a metered stream as the server does, in a task of its own; end the grace (or cancel the
    task, as a client leaving does) once its first chunk is out. What the client got, the record, and
    whether the upstream was closed."""
    sink, closed = Records(), asyncio.Event()
    meter = Meter(sink, "chat", {"model": "m", "stream": True}, None)
    out: list[bytes] = []

    async def consume() -> None:
        async for chunk in openai_sse(metered_stream(_endless(first, closed), meter, None, grace)):
            out.append(chunk)

    task = asyncio.create_task(consume())
    while not out and not task.done():
        await asyncio.sleep(0)
    if leave:
        task.cancel()
    else:
        grace.end()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled() == leave
    return b"".join(out), sink.records[0], closed.is_set()


def _last_event(body: bytes) -> dict[str, object]:
    data = body.rstrip().rsplit(b"\n\n", 1)[-1]
    assert data.startswith(b"data: ")
    event: dict[str, object] = json.loads(data[6:])
    return event


def test_a_stream_running_when_the_grace_ends_gets_an_error_event_and_a_503_record() -> None:
    body, record, closed = asyncio.run(_run(StreamGrace(), FIRST))
    assert body.startswith(FIRST)
    assert _last_event(body)["error"] == {
        "message": "the server is shutting down and ended this stream; retry the request",
        "type": "api_error",
        "param": None,
        "code": "server_shutting_down",
    }
    assert (record.status, record.error_code) == (503, "server_shutting_down")
    assert closed, "the upstream stream was left open"


def test_the_error_event_is_an_event_of_its_own_after_half_an_event() -> None:
    half = b'data: {"choi'
    body, _record, _closed = asyncio.run(_run(StreamGrace(), half))
    assert body.startswith(half + b"\n\ndata: {")


def test_a_stream_that_starts_after_the_grace_ended_ends_at_once() -> None:
    async def late() -> tuple[bytes, UsageRecord, bool]:
        grace = StreamGrace()
        grace.end()
        return await _run(grace, FIRST)

    body, record, _closed = asyncio.run(late())
    assert _last_event(body)["error"]["code"] == "server_shutting_down"  # type: ignore[index]
    assert record.status == 503


def test_a_client_leaving_is_still_a_499() -> None:
    body, record, closed = asyncio.run(_run(StreamGrace(), FIRST, leave=True))
    assert body == FIRST
    assert (record.status, record.error_type) == (499, "client_disconnected")
    assert closed


def test_a_client_closing_the_stream_is_a_499() -> None:
    async def scenario() -> UsageRecord:
        sink, closed = Records(), asyncio.Event()
        meter = Meter(sink, "chat", {"model": "m", "stream": True}, None)
        stream = metered_stream(_endless(FIRST, closed), meter, None)
        assert await anext(stream) == FIRST
        await stream.aclose()  # what the server does with a response body its client left
        return sink.records[0]

    record = asyncio.run(scenario())
    assert (record.status, record.error_type) == (499, "client_disconnected")


def test_a_bug_mid_stream_is_a_500_not_a_disconnect() -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield FIRST
        raise KeyError("a bug")

    async def scenario() -> UsageRecord:
        sink = Records()
        meter = Meter(sink, "chat", {"model": "m", "stream": True}, None)
        try:
            async for _chunk in metered_stream(broken(), meter, None, StreamGrace()):
                pass
        except KeyError:
            return sink.records[0]
        raise AssertionError("the bug was swallowed")

    record = asyncio.run(scenario())
    assert (record.status, record.error_type) == (500, "api_error")


def test_begin_counts_from_the_first_stop_signal() -> None:
    async def scenario() -> bool:
        grace = StreamGrace()
        grace.begin(0)
        grace.begin(3600)  # a second signal does not push the end back
        for _ in range(100):
            if grace.over:
                break
            await asyncio.sleep(0)
        return grace.over

    assert asyncio.run(scenario())
