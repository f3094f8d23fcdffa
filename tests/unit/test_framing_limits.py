"""Framing in bounded memory: a huge event is not copied once per piece, and one past the limit stops.

(`bench/framing.py` times a 50 MB event and the golden streams; these tests pin the behaviour.)
"""

from __future__ import annotations

import pytest

from engine.mapping.framing import (
    FrameTooLarge,
    MalformedEvent,
    SseSplitter,
    check_sse_events,
    decoder_for,
)

PIECE = b"x" * 1000


@pytest.mark.parametrize("framing", ["sse", "ndjson"])
def test_the_pieces_of_an_unfinished_line_are_kept_as_they_came(framing: str) -> None:
    """Copying each piece onto all that came before is quadratic: 50 MB in 64 KB pieces took 26 s."""
    decoder = decoder_for(framing)
    first = (b"data: " if framing == "sse" else b"") + b'{"x": "'
    pieces = [first, *[bytes(PIECE) for _ in range(50)]]
    for piece in pieces:
        assert list(decoder.feed(piece)) == []
    assert decoder._buffer is first  # the start, untouched
    assert all(kept is piece for kept, piece in zip(decoder._parts, pieces[1:], strict=True))
    end = b'"}\n\n' if framing == "sse" else b'"}\n'
    (event,) = decoder.feed(end)
    assert event.data == b'{"x": "' + PIECE * 50 + b'"}'


@pytest.mark.parametrize("framing", ["sse", "ndjson"])
def test_an_event_that_grows_past_the_limit_is_refused(framing: str) -> None:
    decoder = decoder_for(framing, max_event_bytes=10_000)
    list(decoder.feed(b"data: {" if framing == "sse" else b"{"))
    with pytest.raises(FrameTooLarge, match="10000 bytes"):
        for _ in range(11):
            list(decoder.feed(PIECE))


def test_an_sse_event_of_many_lines_without_its_end_is_refused() -> None:
    decoder = decoder_for("sse", max_event_bytes=10_000)
    with pytest.raises(FrameTooLarge):
        for _ in range(20):
            list(decoder.feed(b"data: " + PIECE + b"\n"))


@pytest.mark.parametrize("framing", ["sse", "ndjson"])
def test_events_within_the_limit_pass_in_any_pieces(framing: str) -> None:
    event = b"data: " + b"y" * 9_000 if framing == "sse" else b"y" * 9_000
    stream = (event + (b"\n\n" if framing == "sse" else b"\n")) * 3
    decoder = decoder_for(framing, max_event_bytes=10_000)
    got = [e.data for start in range(0, len(stream), 700) for e in decoder.feed(stream[start : start + 700])]
    got += [e.data for e in decoder.close()]
    assert got == [b"y" * 9_000] * 3


@pytest.mark.parametrize("size", [1, 2, 3, 5, 1000])
def test_the_splitter_gives_whole_events_unchanged_from_any_pieces(size: int) -> None:
    stream = b'data: {"a":1}\n\n: keep-alive\r\n\r\ndata: {"b":\n data: 2}\n\ndata: [DONE]\n\n'
    splitter = SseSplitter()
    outs = [splitter.feed(stream[start : start + size]) for start in range(0, len(stream), size)]
    assert all(out.endswith((b"\n\n", b"\r\n\r\n")) for out in outs if out)  # whole events only
    assert b"".join(outs) == stream and splitter.rest() == b""


def test_the_splitter_holds_a_piece_without_an_event_end() -> None:
    splitter = SseSplitter()
    assert splitter.feed(b"data: {") == b""  # not its first bytes: they are no event yet
    assert splitter.feed(b'"a": 1}\n\n') == b'data: {"a": 1}\n\n'


def test_the_splitter_passes_a_chunk_of_whole_events_on_as_it_is() -> None:
    chunk = b'data: {"a":1}\n\ndata: {"b":2}\n\n'
    assert SseSplitter().feed(chunk) is chunk


def test_the_splitter_keeps_an_unterminated_event_within_its_limit() -> None:
    splitter = SseSplitter(max_event_bytes=10_000)
    assert splitter.feed(b'data: {"a":1}\n\ndata: {"b"') == b'data: {"a":1}\n\n'
    assert splitter.rest() == b'data: {"b"'
    splitter.feed(b"data: ")
    with pytest.raises(FrameTooLarge):
        for _ in range(11):
            splitter.feed(PIECE)


def test_complete_events_come_out_before_an_oversized_rest_is_refused() -> None:
    """However the network cut the bytes: the events before the oversized one are not lost."""
    splitter = SseSplitter(max_event_bytes=10_000)
    assert splitter.feed(b'data: {"a":1}\n\ndata: {"b": "' + PIECE * 20) == b'data: {"a":1}\n\n'
    with pytest.raises(FrameTooLarge):
        splitter.feed(PIECE)
    splitter = SseSplitter(max_event_bytes=10_000)
    splitter.feed(b'data: {"a":1}\n\ndata: {"b": "' + PIECE * 20)
    with pytest.raises(FrameTooLarge):
        splitter.rest()
    decoder = decoder_for("ndjson", max_event_bytes=10_000)
    assert [e.data for e in decoder.feed(b'{"a":1}\n{"b": "' + PIECE * 20)] == [b'{"a":1}']
    with pytest.raises(FrameTooLarge):
        list(decoder.close())


def test_passed_through_events_must_carry_json() -> None:
    check_sse_events(b'data: {"a": 1}\n\nevent: x\ndata: {"b":\ndata: 2}\n\n: comment\n\ndata: [DONE]\n\n')
    for bad in (b"data: <html>\n\n", b'data: {"a": \n\n', b"data: not json"):
        with pytest.raises(MalformedEvent):
            check_sse_events(bad)
