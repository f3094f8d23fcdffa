"""The redactor: known credentials (whole, masked, cut short), credential shapes, and what it leaves be;
and the pass-through stream, which redacts from an in-band error on and never scans content."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from engine.errors import UpstreamStatus
from engine.pipeline.stream_events import openai_sse
from engine.pipeline.stream_usage import StreamUsage
from engine.pipeline.streaming import passthrough_stream
from engine.redact import MAX_MESSAGE, Redactor, credentials_of
from engine.routing.table import Alias, Deployment, RoutingTable
from tests.fakes.reads import event_stream_reads

KEY = "sk-proj-Tq7WmZr3Kd9XpLb2Nc5VfHy8Jg4Sa6Ue1Qo0IiRtMwPz"
PLAIN = "q8XvT2mLr7WkZp4Nc9HbJd"  # a key without a telling prefix
REDACTOR = Redactor([KEY, PLAIN, "ollama", "none"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Incorrect API key provided: {KEY}.", "Incorrect API key provided: ***."),
        (f"Incorrect API key provided: sk-proj-****{KEY[-4:]}.", "Incorrect API key provided: ***."),
        (f"key {PLAIN[:3]}...{PLAIN[-4:]} refused", "key *** refused"),
        (f"key …{PLAIN[-4:]} refused", "key *** refused"),
        (f"key {PLAIN[:12]}... is invalid", "key ***... is invalid"),  # cut short
        (f"{PLAIN}{PLAIN}", "***"),
        ("GET /v1/x?alt=json&key=AIzaSyZZ9nKq4Rt7Wm2XpL", "GET /v1/x?alt=json&key=***"),
        ("sent api_key=abc123xyz and token=t0k3n", "sent api_key=*** and token=***"),
        ("Authorization: Bearer eyJhbGciOi.J9x8", "Authorization: Bearer ***"),
        ("unknown key sk-abcdef123456 given", "unknown key sk-*** given"),
        ("masked by them: ab12********cd34.", "masked by them: ***."),
        ("fetching https://bob:hunter2@proxy.local/v1 failed", "fetching https://***@proxy.local/v1 failed"),
    ],
)
def test_what_is_replaced(text: str, expected: str) -> None:
    assert REDACTOR.text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "ollama is not running; none of the models is loaded",  # placeholder "keys" are too short to hide
        "Basic authentication is not supported",
        "the model 'gpt-4' does not exist; task-force ready... done",
        f"{KEY[:8]} keys are project keys",  # a public prefix alone is no echo
    ],
)
def test_what_is_left_alone(text: str) -> None:
    assert REDACTOR.text(text) == text


def test_json_stays_json() -> None:
    event = json.dumps({"error": {"message": f'bad "key={PLAIN}" \\ and {KEY}', "code": "invalid_api_key"}})
    out = REDACTOR.data(event.encode())
    assert PLAIN.encode() not in out and KEY.encode() not in out
    assert json.loads(out)["error"]["code"] == "invalid_api_key"


def test_bytes_that_are_not_utf8_go_through() -> None:
    data = b"\xff\xfe " + KEY.encode() + b" \x80"
    assert REDACTOR.data(data) == b"\xff\xfe *** \x80"


def test_an_error_is_rewritten_whole() -> None:
    error = UpstreamStatus(
        401, f"x returned HTTP 401: {KEY}", code=KEY, param=PLAIN, headers={"retry-after": KEY}
    )
    assert REDACTOR.error(error) is error
    assert (error.message, error.code, error.param, error.headers) == (
        "x returned HTTP 401: ***",
        "***",
        "***",
        {"retry-after": "***"},
    )
    assert KEY not in str(error) and KEY not in error.to_json().decode()


@pytest.mark.parametrize("unit", ["a", "a-", "*", ".", "a.", "sk-", "key=", "bearer ", "http://"])
def test_long_pathological_text_takes_linear_time(unit: str) -> None:
    """A backend's error text is anyone's to write: no pattern may try a long run from every position
    (quadratic: 300 KB of one of these took many minutes; the suite's timeout catches that)."""
    text = unit * (300_000 // len(unit))
    assert KEY not in REDACTOR.text(text + KEY)


def test_a_huge_error_message_is_cut_before_it_is_scanned() -> None:
    error = UpstreamStatus(502, "x" * (MAX_MESSAGE * 4) + KEY)
    REDACTOR.error(error)
    assert error.message == "x" * MAX_MESSAGE + " [cut]"


def test_every_credential_the_table_holds() -> None:
    deployments = (
        Deployment(1, "a", "openai", "m", api_key=KEY),
        Deployment(
            2,
            "a",
            "openai",
            "m",
            api_base="https://bob:hunter2-long@h.example/v1?code=q1w2e3r4t5&v=2024-01-01",
        ),
        Deployment(3, "a", "openai", "m", params={"aws_secret_access_key": "AKs3cr3tValue", "num_ctx": 4096}),
    )
    table = RoutingTable(aliases={"a": Alias("a", deployments)})
    found = set(credentials_of(table, "master-key-1234", None))
    assert found == {KEY, "bob", "hunter2-long", "q1w2e3r4t5", "AKs3cr3tValue", "master-key-1234"}
    redactor = Redactor(found)
    assert redactor.text("salt AKs3cr3tValue master-key-1234 hunter2-long") == "salt *** *** ***"


# ---- the pass-through stream ----------------------------------------------------------------------


class _Watching(Redactor):
    """Counts what it is asked to scan."""

    def __init__(self) -> None:
        super().__init__([KEY])
        self.scanned: list[bytes] = []

    def data(self, data: bytes) -> bytes:
        self.scanned.append(data)
        return super().data(data)


def _through(chunks: list[bytes], redactor: Redactor, usage: StreamUsage | None = None) -> list[bytes]:
    async def collect() -> list[bytes]:
        response = event_stream_reads(chunks)
        # without the empty READY marker every pipeline stream starts with
        stream = passthrough_stream(response, "x", usage, redactor)
        return [out async for out in openai_sse(stream) if out]

    return asyncio.run(collect())


def _event(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


CONTENT = [_event({"choices": [{"index": 0, "delta": {"content": text}}]}) for text in ('Say "error"', "!")]
ERROR = _event({"error": {"message": f"Incorrect API key provided: {KEY}", "code": "invalid_api_key"}})


def test_content_goes_through_unscanned() -> None:
    redactor = _Watching()
    chunks = [*CONTENT, b"data: [DONE]\n\n"]
    out = _through(chunks, redactor)
    assert all(sent is given for sent, given in zip(out, chunks, strict=True))  # the very same bytes
    assert redactor.scanned == []


@pytest.mark.parametrize("noted", [False, True], ids=["bytes", "with-usage"])
def test_an_error_event_cut_anywhere_is_redacted(noted: bool) -> None:
    marker = ERROR.index(b'{"error"')
    # every cut through the `{"error"` marker, one in the key, and one before the blank line
    for cut in (*range(marker - 2, marker + 10), ERROR.index(KEY.encode()) + 10, len(ERROR) - 1):
        redactor = _Watching()
        usage = StreamUsage(strip=True) if noted else None
        out = b"".join(_through([CONTENT[0], ERROR[:cut], ERROR[cut:]], redactor, usage))
        assert KEY.encode() not in out and b"Incorrect API key provided: ***" in out
        assert out.startswith(CONTENT[0]) and b"ended the stream" not in out  # its own error ends it
        assert all(CONTENT[0] not in scanned for scanned in redactor.scanned)
        if usage is not None:  # the request log gets the redacted error
            assert usage.error == ("api_error", "invalid_api_key")  # sent as our own error event


def test_an_error_the_stream_breaks_on_is_redacted_too() -> None:
    out = b"".join(_through([CONTENT[0], ERROR[:-30]], Redactor([KEY])))
    assert out.startswith(CONTENT[0]) and b'"error"' in out and KEY.encode() not in out
