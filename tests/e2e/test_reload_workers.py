"""`turnout serve --workers 2`, a real process: each worker reloads a changed mapping file and a changed
config file by itself (each watches), and both then serve the new version."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.test_hot_reload import ANSWER, HI, acme, entry
from tests.fakes import FakeUpstream
from tests.support.process import clean_environment
from tests.support.reload import rewrite
from tests.support.server import free_port


class Output:
    """A process's standard error, read line by line as it comes (in a thread)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stderr is not None
        self._stream = process.stderr
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self._stream:
            self.lines.append(line)

    def wait(self, condition: Callable[[list[str]], bool], what: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not condition(list(self.lines)):
            assert time.monotonic() < deadline, (
                f"no {what} within {seconds} s:\n{''.join(self.lines)[-4000:]}"
            )
            time.sleep(0.02)


def pids(lines: list[str], pattern: str) -> set[str]:
    return {match.group(1) for line in lines if (match := re.search(pattern, line))}


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


def test_every_worker_reloads_by_itself(tmp_path: Path, fake: FakeUpstream) -> None:
    own = tmp_path / "own"
    (own / "providers").mkdir(parents=True)
    (own / "providers" / "acme.yaml").write_text(acme("v1"))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"model_list": [entry("acme-chat", fake)]}))
    port = free_port()
    env = clean_environment(
        TURNOUT_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'turnout.db'}",
        TURNOUT_RELOAD_INTERVAL="0.05",
        TURNOUT_LOG_LEVEL="info",
    )
    command = [sys.executable, "-m", "engine", "serve", "--config", str(config), "--port", str(port)]
    command += ["--workers", "2", "--mappings", str(own)]
    process = subprocess.Popen(command, env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    output = Output(process)
    url = f"http://127.0.0.1:{port}"
    try:
        output.wait(
            lambda lines: sum("Application startup complete" in line for line in lines) == 2, "two workers"
        )
        fake.add("POST", "/v1/chat/completions", json=ANSWER)

        def fingerprints(alias: str) -> set[str]:
            # fresh connections, so that both workers are asked
            answers = [
                httpx.post(url + "/v1/chat/completions", json={"model": alias, "messages": HI}, timeout=10)
                for _ in range(8)
            ]
            assert all(answer.status_code == 200 for answer in answers), [a.text for a in answers]
            return {answer.json()["system_fingerprint"] for answer in answers}

        assert fingerprints("acme-chat") == {"acme-v1"}
        rewrite(own / "providers" / "acme.yaml", acme("v2"))
        output.wait(
            lambda lines: len(pids(lines, r"process (\d+) serves mappings version 2")) == 2,
            "reload in both workers",
        )
        assert fingerprints("acme-chat") == {"acme-v2"}

        config.write_text(yaml.safe_dump({"model_list": [entry("acme-chat", fake), entry("acme-two", fake)]}))
        output.wait(
            lambda lines: len(pids(lines, r"process (\d+) imported .*config\.yaml again")) == 2,
            "import in both workers",
        )
        assert fingerprints("acme-two") == {"acme-v2"}
        assert not [line for line in output.lines if "refused a change" in line or "Traceback" in line]
    finally:
        process.terminate()
        process.wait(timeout=60)
