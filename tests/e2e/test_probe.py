"""`turnout probe` as users run it: a real subprocess against a fake backend on a real socket.

The fake plays a backend that chats, calls tools and streams, but refuses images with a 400 and does
not think. The fake answers by (method, path) only, so its answers are scripted in the probe's fixed
order (chat, tools, vision, reasoning, streaming), each used once: later scripts win, spent ones fall
through to the earlier ones.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.conftest import OLLAMA, golden_json
from tests.fakes import FakeUpstream
from tests.support.server import free_port

SECRET = "sk-probe-secret-4711"
STEPS = ("chat", "tools", "vision", "reasoning", "streaming")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TURNOUT_", "LITELLM_"))}
    env["TURNOUT_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'probe.db'}"
    env["TURNOUT_SALT_KEY"] = "probe-test-salt"
    return env


def _probe(tmp_path: Path, upstream_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"model_list": [OLLAMA.entry(upstream_url, api_key=SECRET)]}))
    command = [sys.executable, "-m", "engine", "probe", "--config", str(config), *args]
    return subprocess.run(
        command, env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


def _script_backend(fake: FakeUpstream) -> None:
    """Answers in reverse order of the probe's steps (see the module docstring)."""
    OLLAMA.stream(fake, "stream_text", times=1)  # streaming
    fake.add("POST", OLLAMA.path, json=_golden("simple"), times=1)  # reasoning: no `thinking` in it
    refusal = {"error": f"this model does not support images (key {SECRET})"}  # an error echoing the key
    fake.add("POST", OLLAMA.path, status=400, json=refusal, times=1)  # vision
    fake.add("POST", OLLAMA.path, json=_golden("tools"), times=1)  # tools
    fake.add("POST", OLLAMA.path, json=_golden("simple"), times=1)  # chat


def _golden(scenario: str) -> dict[str, Any]:
    return golden_json("ollama", f"{scenario}.response.json")


def _row(stdout: str, alias: str) -> dict[str, str]:
    """The table row of `alias`, cell by column name (cells are separated by two spaces or more)."""
    lines = stdout.splitlines()
    header = re.split(r"\s{2,}", lines[0].strip())
    row = next(line for line in lines if line.startswith(alias + " "))
    return dict(zip(header, re.split(r"\s{2,}", row.strip()), strict=True))


def _capabilities(database: Path) -> dict[str, Any]:
    with sqlite3.connect(database) as connection:
        connection.row_factory = sqlite3.Row
        row = connection.execute(
            "SELECT c.supports_tools, c.supports_vision, c.supports_reasoning, c.supports_streaming "
            "FROM capabilities c JOIN deployments d ON d.id = c.deployment_id "
            "WHERE d.upstream_model = 'test-model'"
        ).fetchone()
    return dict(row)


def test_probe_reports_what_the_backend_can_do(tmp_path: Path) -> None:
    with FakeUpstream() as fake:
        _script_backend(fake)
        result = _probe(tmp_path, fake.url)
        sent = [request.json for request in fake.requests]
    assert result.returncode == 0, result.stderr
    row = _row(result.stdout, OLLAMA.alias)
    assert row["deployment"] == "ollama/test-model"
    assert row["tier"] == "local"
    assert re.fullmatch(r"✓ \d+ ms", row["chat"]), row
    assert re.fullmatch(r"✓ \d+ ms", row["tools"]), row
    assert row["vision"] == "✗ HTTP 400"
    assert row["reasoning"] == "✗ no reasoning_content"
    assert re.fullmatch(r"✓ \d+ ms", row["streaming"]), row
    assert "does not support images" in result.stdout  # the backend's own words, below the table
    # what each step sent upstream, in order
    assert len(sent) == len(STEPS)
    assert sent[0]["messages"][0]["content"] == "Reply with the word pong." and "tools" not in sent[0]
    assert sent[1]["tools"][0]["function"]["name"] == "get_weather"
    assert sent[2]["messages"][0]["images"]  # the PNG, inlined as base64
    assert sent[3]["think"] is True
    assert sent[4]["stream"] is True
    # the key reaches the backend, never the output (not even echoed in an error)
    assert fake.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    # without --write, SQL is left as the config stated it
    assert _capabilities(tmp_path / "probe.db") == dict.fromkeys(
        ("supports_tools", "supports_vision", "supports_reasoning", "supports_streaming")
    )


def test_probe_write_stores_the_verified_capabilities(tmp_path: Path) -> None:
    with FakeUpstream() as fake:
        _script_backend(fake)
        result = _probe(tmp_path, fake.url, "--write")
    assert result.returncode == 0, result.stderr
    assert _capabilities(tmp_path / "probe.db") == {
        "supports_tools": 1,
        "supports_vision": 0,
        "supports_reasoning": 0,
        "supports_streaming": 1,
    }
    assert "supports_tools unset -> true" in result.stdout
    assert "supports_vision unset -> false" in result.stdout
    assert "next start or reload" in result.stdout and "Re-importing a config keeps" in result.stdout
    assert "supports_native_streaming: true" in result.stdout  # how to keep it in the config file
    # re-importing the same config (which states none of these flags) keeps what the probe verified
    again = subprocess.run(
        [sys.executable, "-m", "engine", "import", str(tmp_path / "config.yaml")],
        env=_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0, again.stderr
    assert _capabilities(tmp_path / "probe.db")["supports_tools"] == 1


def test_an_unreachable_backend_is_inconclusive_and_nothing_is_written(tmp_path: Path) -> None:
    result = _probe(tmp_path, f"http://127.0.0.1:{free_port()}", "--write", "--timeout", "5")
    assert result.returncode == 0, result.stderr
    row = _row(result.stdout, OLLAMA.alias)
    assert row["chat"].startswith("? ")
    assert all(row[step] == "- skipped" for step in STEPS[1:]), row
    assert "Nothing written" in result.stdout
    assert _capabilities(tmp_path / "probe.db")["supports_tools"] is None


def test_an_unknown_alias_is_a_usage_error(tmp_path: Path) -> None:
    with FakeUpstream() as fake:
        result = _probe(tmp_path, fake.url, "--alias", "no-such-alias")
        assert fake.requests == []
    assert result.returncode == 2
    assert "no alias named no-such-alias" in result.stderr
    assert OLLAMA.alias in result.stderr  # the aliases there are
    assert "Traceback" not in result.stderr
