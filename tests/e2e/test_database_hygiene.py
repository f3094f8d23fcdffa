"""What the database side leaves around: no SQL parameters in the logs (keys, prompts), and a SQLite
database only its owner can read."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.keys.ring import hash_key
from engine.settings import Settings
from tests.fakes import FakeUpstream
from tests.support import running_gateway

MASTER = "sk-hygiene-master"
ADMIN = {"authorization": f"Bearer {MASTER}"}
PROVIDER_KEY = "sk-provider-credential-4f2a9c"
PROMPT = "my-confidential-prompt-7c1e"
DEFAULT_DATABASE = Settings.model_fields["database_url"].default  # ./turnout.db


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


def _answer(fake: FakeUpstream) -> None:
    message = {"role": "assistant", "content": "ok"}
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1735732800,
        "model": "test-model",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
    fake.add("POST", "/v1/chat/completions", json=body)


def _one(database: Path, query: str) -> object:
    with sqlite3.connect(database) as connection:
        row = connection.execute(query).fetchone()
    return None if row is None else row[0]


def test_debug_logs_show_no_sql_parameters(
    fake: FakeUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """TURNOUT_LOG_LEVEL=debug puts the root logger at DEBUG: the database drivers below SQLAlchemy
    must not log the statements they run with their values (key hashes, encrypted credentials,
    stored prompts)."""
    caplog.set_level(logging.DEBUG)
    params = {"model": "openai/test-model", "api_base": fake.url + "/v1", "api_key": PROVIDER_KEY}
    config = {
        "model_list": [{"model_name": "private", "litellm_params": params}],
        "general_settings": {"master_key": MASTER},
    }
    _answer(fake)
    with (
        running_gateway(tmp_path, config, usage_flush_interval=0.05) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        created = http.post("/key/generate", json={"key_alias": "hygiene"}, headers=ADMIN)
        assert created.status_code == 200, created.text
        key = created.json()["key"]
        stored = http.post(
            "/v1/responses",
            json={"model": "private", "input": PROMPT},
            headers={"authorization": f"Bearer {key}"},
        )
        assert stored.status_code == 200, stored.text
        database = tmp_path / "turnout.db"
        deadline = time.monotonic() + 10
        while not _one(database, "SELECT count(*) FROM request_log"):
            assert time.monotonic() < deadline, "the request was not logged"
            time.sleep(0.05)
    encrypted = _one(database, "SELECT api_key_encrypted FROM providers")
    assert isinstance(encrypted, str) and encrypted
    assert PROMPT in str(_one(database, "SELECT messages FROM stored_exchanges")), "the prompt was stored"
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert logged, "debug logging was on"
    for secret in (PROMPT, hash_key(key), key, encrypted, PROVIDER_KEY):
        assert secret not in logged


def test_the_sqlite_database_is_readable_by_its_owner_only(
    fake: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default database (./turnout.db) holds key hashes, encrypted credentials and stored prompts:
    created 0600, and SQLite gives its -wal and -shm files the database file's mode."""
    monkeypatch.chdir(tmp_path)
    umask = os.umask(0o022)  # the usual umask, under which SQLite would create 0644 files
    try:
        with running_gateway(tmp_path, database_url=DEFAULT_DATABASE) as server:
            assert httpx.get(server.url + "/health/readiness", timeout=10).status_code == 200
            files = sorted(tmp_path.glob("turnout.db*"))
            assert [f.name for f in files] == ["turnout.db", "turnout.db-shm", "turnout.db-wal"]
            modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
    finally:
        os.umask(umask)
    assert modes == dict.fromkeys(modes, 0o600)
