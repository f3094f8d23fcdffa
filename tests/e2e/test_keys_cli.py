"""`turnout keys create | list | revoke` as a real subprocess, and the keys they make used over HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.e2e.conftest import OLLAMA, OPENAI, two_backend_config
from tests.e2e.test_cli import _turnout
from tests.fakes import FakeUpstream
from tests.support import running_gateway


def test_create_list_revoke(tmp_path: Path, fake: FakeUpstream) -> None:
    config = two_backend_config(fake.url, general_settings={"master_key": "sk-master"})
    database = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"  # the one `_turnout` points the CLI at
    with running_gateway(tmp_path, config, database_url=database, key_refresh_interval=0.1) as gateway:
        created = _turnout(
            tmp_path, "keys", "create", "--models", f"{OLLAMA.alias}, {OPENAI.alias}", "--budget", "20",
            "--rpm", "60", "--name", "ci", "--expires", "30d",
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip()
        assert key.startswith("sk-") and len(key.splitlines()) == 1
        listed = _turnout(tmp_path, "keys", "list")
        assert listed.returncode == 0 and key[:8] in listed.stdout and "ci" in listed.stdout
        assert key not in listed.stdout and key[8:] not in listed.stdout + listed.stderr
        assert key not in created.stderr
        headers = {"x-api-key": key}
        assert _eventually(gateway.v1 + "/models", headers, 200)
        revoked = _turnout(tmp_path, "keys", "revoke", key[:8])
        assert revoked.returncode == 0, revoked.stderr
        assert _eventually(gateway.v1 + "/models", headers, 401)
        assert "no active keys" in _turnout(tmp_path, "keys", "list").stdout


def test_bad_input_is_refused(tmp_path: Path) -> None:
    bad = _turnout(tmp_path, "keys", "create", "--expires", "soon")
    assert bad.returncode == 2 and "duration" in bad.stderr and "Traceback" not in bad.stderr
    unknown = _turnout(tmp_path, "keys", "create", "--models", "no-such-alias")
    assert unknown.returncode == 2 and "no-such-alias" in unknown.stderr
    missing = _turnout(tmp_path, "keys", "revoke", "sk-nope")
    assert missing.returncode == 2 and "sk-nope" in missing.stderr
    assert "no active keys" in _turnout(tmp_path, "keys", "list").stdout


def _eventually(url: str, headers: dict[str, str], status: int) -> bool:
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if httpx.get(url, headers=headers, timeout=5).status_code == status:
            return True
        time.sleep(0.05)
    return False
