"""The log an operator reads, from `turnout serve` as users run it (a real process, its standard error):
one readable line per event, the request id on every line written while handling a request (the same id
as the x-turnout-request-id header), one JSON object per line with TURNOUT_LOG_FORMAT=json, and no
credential at any level, DEBUG included, even when backends echo the keys they were sent."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.test_credential_echo import (
    GEMINI_CHAT,
    GEMINI_KEY,
    HI,
    MASTER,
    OPENAI_KEY,
    OPENAI_PATH,
    _google,
    _incorrect,
    _leaks,
)
from tests.fakes import FakeUpstream
from tests.support.process import TurnoutProcess, clean_environment, serving
from tests.support.server import free_port

SALT = "salt-Zr5Wq8Ln3Xv6Kt9Bm2"
CLIENT_SECRET = "sk-client-Jh7Gf4Ds1Qa8Wz5Xc2Vb"  # a wrong key a client presents: the gateway's to keep too
REQUEST_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class Session:
    """What one gateway process wrote while serving the requests below."""

    log: str
    out: str  # standard output
    request_ids: dict[str, str]  # what -> the x-turnout-request-id its answer carried


def _config(tmp_path: Path, upstream: str) -> Path:
    path = tmp_path / "config.yaml"
    model_list = [
        {
            "model_name": "openai-echo",
            "litellm_params": {"model": "openai/gpt-x", "api_base": upstream + "/v1", "api_key": OPENAI_KEY},
        },
        {
            "model_name": "gemini-echo",
            "litellm_params": {"model": "gemini/gemini-x", "api_base": upstream, "api_key": GEMINI_KEY},
        },
    ]
    path.write_text(yaml.safe_dump({"model_list": model_list, "general_settings": {"master_key": MASTER}}))
    return path


def _requests(running: TurnoutProcess, fake: FakeUpstream) -> dict[str, str]:
    """Answers that work and answers that fail, the failing backends echoing their keys."""
    answer = {
        "id": "c1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-x",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}
        ],
    }
    scripts = (
        ("ok", "openai-echo", OPENAI_PATH, 200, answer),
        ("401", "openai-echo", OPENAI_PATH, 401, _incorrect(OPENAI_KEY)),
        ("500", "openai-echo", OPENAI_PATH, 500, _incorrect(f"sk-proj-****{OPENAI_KEY[-4:]}")),
        ("400", "gemini-echo", GEMINI_CHAT, 400, _google(GEMINI_KEY)),
    )
    ids: dict[str, str] = {}
    with httpx.Client(
        base_url=running.url, timeout=10, headers={"authorization": f"Bearer {MASTER}"}
    ) as http:
        for what, alias, path, status, body in scripts:
            fake.clear()
            fake.add("POST", path, status=status, json=body)
            reply = http.post("/v1/chat/completions", json={"model": alias, "messages": HI})
            assert (reply.status_code == 200) == (what == "ok"), reply.text
            ids[what] = reply.headers["x-turnout-request-id"]
        refused = http.post(
            "/v1/chat/completions",
            json={"model": "openai-echo", "messages": HI},
            headers={"authorization": f"Bearer {CLIENT_SECRET}"},
        )
        assert refused.status_code == 401
        assert http.get("/no/such/route").status_code == 404
    return ids


def _serve(tmp_path: Path, log_format: str) -> Session:
    port = free_port()
    with FakeUpstream() as fake:
        env = clean_environment(
            TURNOUT_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'logs.db'}",
            TURNOUT_SALT_KEY=SALT,
            TURNOUT_LOG_LEVEL="debug",
            TURNOUT_LOG_FORMAT=log_format,
            TURNOUT_ACCESS_LOG="true",
            TURNOUT_ROUTES_REFRESH_INTERVAL="0",
            TURNOUT_KEY_REFRESH_INTERVAL="0",
        )
        config = _config(tmp_path, fake.url)
        command = [sys.executable, "-m", "engine", "serve", "--config", str(config), "--port", str(port)]
        with serving(command, env, tmp_path, port) as running:
            ids = _requests(running, fake)
        assert running.stop() in (0, -15), running.stderr
    return Session(running.stderr, running.stdout, ids)


@pytest.fixture(scope="module")
def text_log(tmp_path_factory: pytest.TempPathFactory) -> Session:
    return _serve(tmp_path_factory.mktemp("text-log"), "text")


@pytest.fixture(scope="module")
def json_log(tmp_path_factory: pytest.TempPathFactory) -> Session:
    return _serve(tmp_path_factory.mktemp("json-log"), "json")


def _entries(session: Session) -> list[dict[str, object]]:
    return [json.loads(line) for line in session.log.splitlines()]


def test_json_mode_writes_nothing_else(json_log: Session) -> None:
    assert json_log.out == ""  # the console's address went to the log, as JSON, not to standard output
    assert any("admin console at http://127.0.0.1:" in str(entry["message"]) for entry in _entries(json_log))


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_credential_at_any_level(log_format: str, request: pytest.FixtureRequest) -> None:
    session: Session = request.getfixturevalue(f"{log_format}_log")
    assert " DEBUG " in session.log or '"level": "DEBUG"' in session.log  # debug lines were written
    assert "Incorrect API key provided" in session.log  # the echoing answers were logged, redacted
    assert not _leaks(session.log, SALT, CLIENT_SECRET, f"****{OPENAI_KEY[-4:]}"), session.log


def test_text_lines_are_readable_and_carry_the_request_id(text_log: Session) -> None:
    session = text_log
    lines = session.log.splitlines()
    assert not any("ImportReport(" in line for line in lines)
    assert any(
        re.search(r" INFO turnout: imported .*config\.yaml as config: 2 deployments created, 0 updated", line)
        for line in lines
    ), session.log
    for what, request_id in session.request_ids.items():
        mine = [line for line in lines if f"[{request_id}]:" in line]
        assert any("uvicorn.access" in line and "POST /v1/chat/completions" in line for line in mine), what
        assert any(" DEBUG turnout.requests " in line for line in mine), what
    (warned,) = [line for line in lines if "failed: 401 invalid_api_key" in line]
    assert f" WARNING turnout.requests [{session.request_ids['401']}]: deployment " in warned
    assert all(REQUEST_ID.search(line) for line in lines if "uvicorn.access" in line)  # 404s too
    assert all(not REQUEST_ID.search(line) for line in lines if "Started server process" in line)


def test_json_lines_for_log_shippers(json_log: Session) -> None:
    session = json_log
    entries = _entries(session)  # every line is one JSON object, the server's and the migration's too
    assert all({"time", "level", "logger", "message", "request_id"} <= set(entry) for entry in entries)
    (imported,) = [entry for entry in entries if str(entry["message"]).startswith("imported ")]
    assert imported["import"] == {
        "source": "config",
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
        "aliases_deleted": 0,
        "providers_deleted": 0,
        "settings_changed": 0,
        "warnings": 0,
    }
    assert imported["request_id"] is None
    ready = next(entry for entry in entries if str(entry["message"]).startswith("turnout ready: 2 aliases, "))
    assert ready["aliases"] == 2 and isinstance(ready["provider_mappings"], int)
    for what, request_id in session.request_ids.items():
        mine = [entry for entry in entries if entry["request_id"] == request_id]
        assert {entry["logger"] for entry in mine} >= {"uvicorn.access", "turnout.requests"}, what
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(entries[0]["time"]))
