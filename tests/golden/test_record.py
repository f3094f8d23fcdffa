"""`turnout record` against a fake upstream that answers with a provider's golden fixtures.

Recording a provider's scenarios from such a fake must give back that provider's golden fixtures
(byte for byte, but for what redaction takes out) and, in recorded/, the upstream requests the golden
snapshots pin; a backend.yaml that routes as the hand-written one does; and no secret anywhere.
Then the recorded folder drives the golden machinery: each fixture replayed through a gateway gives
the recorded upstream request and the answer the provider's golden snapshot holds.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import yaml

from engine.cli import main
from engine.record.command import default_out
from engine.record.fixtures import Scrubber, request_record
from engine.record.proxy import Exchange
from engine.record.scenarios import load_scenarios, scenarios_dir
from tests.fakes import FakeUpstream
from tests.golden.support import (
    BACKENDS,
    GOLDEN,
    SNAPSHOTS,
    Backend,
    fixture_for,
    normalize,
    script_fixture,
    sse_data,
    turnout_headers,
    upstream_request,
)
from tests.golden.test_golden import PNG, REMOTE_IMAGE
from tests.support import running_gateway
from tests.support.server import free_port

PROVIDERS = ["anthropic", "gemini", "ollama", "openai"]
KEY = "sk-record-secret-7d41c0ffee99"
WRONG_KEY = "turnout-record-wrong-key-4f1c9a"
# sent differently from the golden scenario (another model, a padded prompt): their requests differ
PROVOKED_REQUEST = {"error_404", "error_context_length"}
UNSENT = {"error_429", "error_500", "error_529", "error_midstream"}
PINNED = {
    "content-type",
    "authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "anthropic-version",
    "anthropic-beta",
}


@dataclass
class Recorded:
    provider: str
    out: Path
    scenarios: list[str]
    exit_code: int
    printed: str


def _recordable(provider: str) -> list[str]:
    """The scenarios the provider has golden fixtures for and a live backend can be asked."""
    backend = BACKENDS[provider]
    skipped = set(backend.not_applicable or {}) | set(backend.refused or {}) | UNSENT
    return [s.name for s in load_scenarios() if s.name not in skipped]


def _script_in_order(fake: FakeUpstream, provider: str, scenarios: list[str]) -> None:
    """Each scenario's fixture, answered in the order the recorder sends them (a later script wins,
    so they are added last first); the unknown-model scenario is answered where it goes."""
    backend = BACKENDS[provider]
    model = backend.model.partition("/")[2]
    for name in reversed(scenarios):
        request = yaml.safe_load((scenarios_dir() / f"{name}.yaml").read_text())["request"]
        path = backend.stream_path if request.get("stream") else backend.path
        if name == "error_404":
            path = path.replace(model, f"{model}-no-such-model")
        kind, fixture = fixture_for(provider, name)
        script_fixture(fake, path, kind, fixture)


def _record(tmp: Path, provider: str) -> Recorded:
    backend = BACKENDS[provider]
    scenarios = _recordable(provider)
    out = tmp / provider
    printed = io.StringIO()
    with FakeUpstream() as fake, pytest.MonkeyPatch.context() as env, redirect_stdout(printed):
        _script_in_order(fake, provider, scenarios)
        env.setenv("FAKE_PROVIDER_KEY", KEY)
        argv = [
            "record",
            backend.model,
            "--base-url",
            fake.url + backend.api_base_suffix,
            "--api-key-env",
            "FAKE_PROVIDER_KEY",
            "--out",
            str(out),
            "--context-chars",
            "2000",
        ]
        for name in scenarios:
            argv += ["--scenario", name]
        for key, value in (backend.extra_params or {}).items():
            argv += ["--param", f"{key}={value}"]
        code = main(argv)
    return Recorded(provider, out, scenarios, code, printed.getvalue())


@pytest.fixture(scope="module", params=PROVIDERS)
def recorded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """Each provider recorded once, for every test of this module."""
    return _record(tmp_path_factory.mktemp("recorded"), request.param)


def _pinned(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {**snapshot, "headers": {k: v for k, v in snapshot["headers"].items() if k in PINNED}}


def test_recording_gives_back_the_golden_fixtures(recorded: Recorded) -> None:
    assert recorded.exit_code == 0, recorded.printed
    golden = GOLDEN / "fixtures" / recorded.provider
    for name in recorded.scenarios:
        kind, original = fixture_for(recorded.provider, name)
        mine = recorded.out / original.name
        assert mine.exists(), f"{name}: {recorded.printed}"
        if kind == "error":  # keys echoed in the message are masked: compare the rest
            theirs, ours = json.loads(original.read_text()), json.loads(mine.read_text())
            assert ours["status"] == theirs["status"]
            assert ours["body"].keys() == theirs["body"].keys()
        else:
            assert mine.read_text() == original.read_text(), name
        sent = json.loads((recorded.out / "recorded" / f"{name}.request.json").read_text())
        if name not in PROVOKED_REQUEST:
            snapshot = json.loads((SNAPSHOTS / recorded.provider / f"{name}.request.json").read_text())
            assert _pinned(sent) == snapshot, name
    spec = yaml.safe_load((recorded.out / "backend.yaml").read_text())
    theirs = yaml.safe_load((golden / "backend.yaml").read_text())
    for key in ("model", "framing", "paths", "api_base_suffix"):
        assert spec[key] == theirs[key], key
    assert "not_applicable" not in spec, spec["not_applicable"]  # every scenario asked for was recorded


def test_recorded_files_hold_no_secret(recorded: Recorded) -> None:
    files = [path for path in recorded.out.rglob("*") if path.is_file()]
    assert len(files) > len(recorded.scenarios)
    for path in files:
        text = path.read_text()
        assert KEY not in text and KEY[:12] not in text, path
        assert WRONG_KEY not in text, path
    assert KEY not in recorded.printed


@pytest.fixture
def replay(recorded: Recorded, tmp_path: Path) -> Iterator[tuple[FakeUpstream, str, Backend]]:
    """A gateway routing to the recorded folder's backend.yaml, in front of a fake upstream."""
    spec = yaml.safe_load((recorded.out / "backend.yaml").read_text())
    backend = Backend(
        model=spec["model"],
        path=spec["paths"]["chat"],
        stream_path=spec["paths"].get("chat_stream", spec["paths"]["chat"]),
        api_base_suffix=spec["api_base_suffix"],
        extra_params=spec.get("litellm_params") or {},
    )
    with FakeUpstream() as fake:
        params = {
            **(backend.extra_params or {}),
            "model": backend.model,
            "api_base": fake.url + backend.api_base_suffix,
            "api_key": "sk-upstream-secret",
        }
        config = {"model_list": [{"model_name": "replayed", "litellm_params": params}]}
        with running_gateway(
            tmp_path, config, response_model="upstream", image_fetch_allow="127.0.0.1"
        ) as gateway:
            yield fake, gateway.v1, backend


def test_recorded_fixtures_replay_as_the_golden_suite_does(
    recorded: Recorded, replay: tuple[FakeUpstream, str, Backend]
) -> None:
    fake, v1, backend = replay
    for name in recorded.scenarios:
        request = yaml.safe_load((scenarios_dir() / f"{name}.yaml").read_text())["request"]
        request = msgspec.json.decode(
            msgspec.json.encode(request).replace(REMOTE_IMAGE.encode(), f"{fake.url}/cat.png".encode())
        )
        fake.clear()
        fake.add("GET", "/cat.png", body=PNG, content_type="image/png")
        fixture = next(p for p in recorded.out.glob(f"{name}.*") if p.name.split(".")[0] == name)
        kind = fixture.name.split(".")[1]
        script_fixture(fake, backend.stream_path if request.get("stream") else backend.path, kind, fixture)
        request["model"] = "replayed"
        answer = httpx.post(f"{v1}/chat/completions", json=request, timeout=10)

        if name not in PROVOKED_REQUEST | {"error_401"}:
            sent = json.loads((recorded.out / "recorded" / f"{name}.request.json").read_text())
            assert upstream_request(fake) == _pinned(sent), name
        headers = turnout_headers(answer)
        if request.get("stream") and answer.status_code == 200:
            result = {"status": 200, "headers": headers, "events": sse_data(answer.text)}
            stored = SNAPSHOTS / recorded.provider / f"{name}.stream.json"
        else:
            result = {"status": answer.status_code, "headers": headers, "body": normalize(answer.json())}
            stored = SNAPSHOTS / recorded.provider / f"{name}.response.json"
        if kind != "error":  # error messages echoing a key were masked: the answer says *** instead
            assert result == json.loads(stored.read_text()), name
        else:
            assert answer.status_code == json.loads(stored.read_text())["status"], name


def _run(argv: list[str]) -> tuple[int, str]:
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as env, redirect_stdout(printed):
        env.setenv("FAKE_PROVIDER_KEY", KEY)
        code = main([*argv, "--api-key-env", "FAKE_PROVIDER_KEY"])
    return code, printed.getvalue()


def test_one_exchange_with_the_key_echoed_everywhere_is_written_without_it(tmp_path: Path) -> None:
    """A backend that echoes the key whole, cut short and masked, in its body and its headers; an
    api_base carrying a credential in its query string (Gemini's `key=`)."""
    echo = f"key {KEY}, cut {KEY[:14]}, masked sk-...{KEY[-4:]}, url https://x.test/?key={KEY}"
    answer = {
        "id": "chatcmpl-echo",
        "object": "chat.completion",
        "created": 1735732800,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": echo}, "finish_reason": "stop"}],
    }
    request = {"messages": [{"role": "user", "content": "What is my key?"}]}
    (tmp_path / "request.json").write_text(json.dumps(request))
    out = tmp_path / "echo"
    with FakeUpstream() as fake:
        fake.add("POST", "/v1/chat/completions", json=answer, headers={"x-ratelimit-limit": KEY})
        code, printed = _run(
            [
                *("record", "openai/m", "--base-url", fake.url + "/v1", "--out", str(out)),
                *("--request", f"@{tmp_path / 'request.json'}", "--save-as", "echo"),
            ]
        )
        assert fake.last.headers["authorization"] == f"Bearer {KEY}"  # the real key went upstream
    assert code == 0, printed
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == [
        "backend.yaml",
        "echo.request.json",
        "echo.response.json",
    ]
    written = (out / "echo.response.json").read_text()
    content = json.loads(written)["choices"][0]["message"]["content"]
    assert content == "key <upstream key>, cut ***, masked ***, url https://x.test/?key=<upstream key>"
    for path in out.rglob("*.*"):
        text = path.read_text()
        assert KEY[:12] not in text and KEY[-6:] not in text, path
    sent = json.loads((out / "recorded" / "echo.request.json").read_text())
    assert sent["headers"]["authorization"] == "Bearer <upstream key>"
    assert sent["body"]["messages"] == request["messages"]


def test_fixtures_go_into_the_checkouts_golden_folder_by_default() -> None:
    assert default_out("parrot") == GOLDEN / "fixtures" / "parrot"


def test_query_string_keys_and_credential_headers_are_redacted_in_the_recorded_request() -> None:
    """Gemini-style `key=` in the query string, key headers, and credentials nobody announced."""
    exchange = Exchange(
        "POST",
        "/v1beta/models/m:generateContent",
        [("key", KEY), ("alt", "sse"), ("access_token", "ya29.unannounced-token-123")],
        {
            "x-goog-api-key": KEY,
            "authorization": "Bearer eyJunannounced0123456789",
            "cookie": "session=abc",
            "content-type": "application/json",
            "host": "127.0.0.1:1",
        },
        json.dumps({"contents": [], "note": f"http://127.0.0.1:9/x {WRONG_KEY}"}).encode(),
    )
    scrub = Scrubber([KEY, WRONG_KEY], "http://127.0.0.1:9")
    assert json.loads(request_record(exchange, scrub)) == {
        "method": "POST",
        "path": "/v1beta/models/m:generateContent",
        "query": {"key": "<upstream key>", "alt": "sse", "access_token": "<redacted>"},
        "headers": {
            "x-goog-api-key": "<upstream key>",
            "authorization": "<redacted>",
            "cookie": "<redacted>",
            "content-type": "application/json",
        },
        "body": {"contents": [], "note": "http://upstream.test/x <upstream key>"},
    }


def test_nothing_is_overwritten_without_force(tmp_path: Path) -> None:
    out = tmp_path / "openai"
    argv = [
        "record",
        "openai/test-model",
        "--out",
        str(out),
        "--scenario",
        "simple",
        "--scenario",
        "error_500",
    ]
    with FakeUpstream() as fake:
        _script_in_order(fake, "openai", ["simple"])
        assert _run([*argv, "--base-url", fake.url + "/v1"])[0] == 0
        first = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
        assert sorted(p.name for p in first) == [
            "backend.yaml",
            "simple.request.json",
            "simple.response.json",
        ]
        spec = yaml.safe_load((out / "backend.yaml").read_text())
        assert spec["not_applicable"] == {
            "error_500": "not recorded: a live backend cannot be made to answer HTTP 500 on demand"
        }

        fake.clear()
        fake.add("POST", "/v1/chat/completions", status=400, json={"error": {"message": "changed"}})
        code, _ = _run([*argv, "--base-url", fake.url + "/v1"])
        assert code == 2
        assert not fake.requests  # refused before anything was sent
        assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == first

        code, printed = _run([*argv, "--base-url", fake.url + "/v1", "--force"])
    assert code == 1, printed  # replaced, and this time nothing could be recorded
    assert "simple: not recorded: the backend answered HTTP 400, not 200" in printed
    assert not (out / "simple.response.json").exists()
    assert "simple" in yaml.safe_load((out / "backend.yaml").read_text())["not_applicable"]


def test_a_request_turnout_refuses_itself_is_reported_not_recorded(tmp_path: Path) -> None:
    """tgi_native takes no tools: the gateway answers 400 before any upstream call."""
    out = tmp_path / "tgi_native"
    with FakeUpstream() as fake:
        code, _ = _run(
            ["record", "tgi_native/m", "--base-url", fake.url, "--out", str(out), "--scenario", "tools"]
        )
        assert not fake.requests
    assert code == 1
    reason = yaml.safe_load((out / "backend.yaml").read_text())["refused"]["tools"]
    assert reason.startswith("Turnout answered HTTP 400 before any upstream call")


def test_an_unreachable_backend_records_nothing_and_says_why(tmp_path: Path) -> None:
    out = tmp_path / "down"
    closed = f"http://127.0.0.1:{free_port()}"
    code, printed = _run(
        [
            *("record", "openai/m", "--base-url", closed + "/v1", "--out", str(out), "--scenario", "simple"),
            *(
                "--param",
                "vertex_credentials=secret-credential-0123456789",
                "--param",
                "api_version=2024-10-21",
            ),
        ]
    )
    assert code == 1
    assert "simple: not recorded: the backend could not be reached" in printed
    written = (out / "backend.yaml").read_text()
    assert "secret-credential" not in written
    params = yaml.safe_load(written)["litellm_params"]
    assert params == {"vertex_credentials": "<redacted>", "api_version": "2024-10-21"}


@pytest.mark.parametrize(
    "extra",
    [
        ["--save-as", "../escape"],
        ["--name", "a/b"],
        ["--save-as", ".hidden"],
        ["--route", "http://elsewhere"],
        ["--base-url", "file:///etc"],
    ],
)
def test_names_that_would_write_outside_the_folder_and_bad_urls_are_refused(
    tmp_path: Path, extra: list[str]
) -> None:
    with FakeUpstream() as fake:
        code, _ = _run(
            [
                "record",
                "openai/m",
                "--base-url",
                fake.url,
                "--out",
                str(tmp_path / "out"),
                "--request",
                "{}",
                *extra,
            ]
        )
        assert not fake.requests
    assert code == 2
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape.response.json").exists()
