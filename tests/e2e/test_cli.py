"""The `turnout` command as users run it: a real subprocess for serve, mappings check and import."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from engine.settings import project_path
from tests.e2e.conftest import OLLAMA
from tests.fakes import FakeUpstream
from tests.support.sdk_types import openai_client
from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TURNOUT_", "LITELLM_"))}
    env["TURNOUT_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env["TURNOUT_SALT_KEY"] = "cli-test-salt"
    env["TURNOUT_DISCOVERY_INTERVAL"] = "0"  # keep the fake upstream's request log to this test's own
    return env


def _turnout(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "engine", *args]
    return subprocess.run(
        command, env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


def _config(tmp_path: Path, upstream_url: str, **sections: object) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"model_list": [OLLAMA.entry(upstream_url)], **sections}))
    return path


def _wait_healthy(url: str, process: subprocess.Popen[str], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"turnout serve exited early: {process.communicate()}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("turnout serve did not become healthy")


def test_serve(tmp_path: Path) -> None:
    port = free_port()
    with FakeUpstream() as fake:
        OLLAMA.answer(fake, "simple")
        config = _config(tmp_path, fake.url, general_settings={"master_key": "sk-cli-master"})
        command = [sys.executable, "-m", "engine", "serve", "--config", str(config), "--port", str(port)]
        process = subprocess.Popen(
            command,
            env=_env(tmp_path),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(url, process)
            # the config's own settings reach the server (they are applied in a child process)
            assert httpx.get(url + "/v1/models", timeout=5).status_code == 401
            client = openai_client(url + "/v1", "sk-cli-master")
            answer = client.chat.completions.create(
                model=OLLAMA.alias, messages=[{"role": "user", "content": "Hi"}]
            )
            assert answer.choices[0].message.content == "Hello! It's nice to meet you."
            assert fake.last.json["model"] == "test-model"
            assert httpx.get(url + "/ui/sign-in", timeout=5).status_code == 200
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                out, err = process.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status still says why it stopped
    assert process.returncode in (0, -signal.SIGTERM), err
    assert "Application shutdown complete" in err
    assert "Traceback" not in err and "ERROR" not in err
    assert (tmp_path / "cli.db").exists()
    # the console's address is printed before the server's own lines (the config set a master key)
    assert f"admin console at http://127.0.0.1:{port}/ui (sign in with the master key" in out


def test_mappings_check_passes_on_the_project(tmp_path: Path) -> None:
    result = _turnout(tmp_path, "mappings", "check")
    assert result.returncode == 0, result.stderr
    assert "all valid" in result.stdout


def test_mappings_check_names_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "mappings"
    shutil.copytree(project_path("mappings"), folder)
    broken = folder / "providers" / "ollama.yaml"
    lines = broken.read_text().splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines, start=1) if "m.content | text" in line)
    lines[number - 1] = lines[number - 1].replace("| text", "| no_such_filter")
    broken.write_text("".join(lines))
    result = _turnout(tmp_path, "mappings", "check", "--dir", str(folder))
    assert result.returncode == 1
    assert f"{broken}:{number}:" in result.stderr
    assert "no_such_filter" in result.stderr
    assert "Traceback" not in result.stderr


def _row_counts(database: Path) -> dict[str, int]:
    with sqlite3.connect(database) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: connection.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def test_import_twice_is_idempotent(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model_list": [
                    OLLAMA.entry("http://127.0.0.1:11434", num_ctx=4096),
                    {
                        "model_name": "gpt-4.1",
                        "litellm_params": {"model": "gpt-4.1", "api_key": "sk-literal"},
                    },
                    {
                        "model_name": "gpt-4.1",
                        "litellm_params": {
                            "model": "openai/gpt-4.1-mini",
                            "api_key": "os.environ/OPENAI_API_KEY",
                        },
                    },
                ],
                "litellm_settings": {"drop_params": True},
            }
        )
    )
    first = _turnout(tmp_path, "import", str(config))
    assert first.returncode == 0, first.stderr
    counts = _row_counts(tmp_path / "cli.db")
    assert sum(counts.values()) > 0
    second = _turnout(tmp_path, "import", str(config))
    assert second.returncode == 0, second.stderr
    assert _row_counts(tmp_path / "cli.db") == counts
    with sqlite3.connect(tmp_path / "cli.db") as connection:
        stored = "\n".join(
            str(row) for table in counts for row in connection.execute(f'SELECT * FROM "{table}"')
        )
    assert "sk-literal" not in stored  # literal keys are encrypted at rest


def test_import_of_a_broken_config_fails_cleanly(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("model_list:\n  - model_name: x\n")
    result = _turnout(tmp_path, "import", str(config))
    assert result.returncode == 2
    assert "litellm_params.model is missing" in result.stderr and "Traceback" not in result.stderr


def test_serve_migrates_a_database_behind_and_keeps_alembic_out(tmp_path: Path) -> None:
    """A database at an old revision is migrated before serving (by Alembic, in a child process); the
    serving process itself never imports Alembic, whatever the database held."""
    from alembic import command

    from engine.store.migrate import alembic_config
    from engine.store.schema import HEAD_REVISION

    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    command.upgrade(alembic_config(url), "69382d679281")  # the initial schema
    port = free_port()
    config = _config(tmp_path, "http://127.0.0.1:9")
    # the serving process cannot import Alembic or Mako; the child that migrates is a fresh interpreter
    probe = (
        "import sys\n"
        "class NoAlembic:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] in ('alembic', 'mako'):\n"
        "            raise ImportError(f'the serving process imported {name}')\n"
        "sys.meta_path.insert(0, NoAlembic())\n"
        "from engine.cli import main\n"
        f"raise SystemExit(main(['serve', '--config', {str(config)!r}, '--port', '{port}']))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", probe],
        env=_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", process)
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=15)
    assert "Traceback" not in err and "ERROR" not in err, err
    with sqlite3.connect(tmp_path / "cli.db") as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD_REVISION,)]
