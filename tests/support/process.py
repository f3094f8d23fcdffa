"""Run `turnout serve` as users do: a real process, stopped with SIGTERM like a container runtime does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import free_port

__all__ = ["TurnoutProcess", "clean_environment", "fresh_interpreter", "serving", "turnout_process"]


@dataclass
class TurnoutProcess:
    url: str
    process: subprocess.Popen[str]
    workdir: Path
    stderr: str = ""
    stdout: str = ""

    def stop(self, timeout: float = 40) -> int:
        """SIGTERM, then wait for the graceful shutdown; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.stdout, self.stderr = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.stdout, self.stderr = self.process.communicate()
            raise AssertionError(f"turnout did not stop within {timeout} s: {self.stderr[-2000:]}") from None
        return self.process.returncode


def clean_environment(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TURNOUT_", "LITELLM_"))}
    env.update({"TURNOUT_SALT_KEY": "process-test-salt", "TURNOUT_DISCOVERY_INTERVAL": "0", **settings})
    return env


@contextmanager
def turnout_process(
    workdir: Path, config: Path, *, port: int | None = None, **settings: str
) -> Iterator[TurnoutProcess]:
    """`turnout serve --config` with TURNOUT_* `settings` (names without the prefix, e.g. database_url)."""
    port = port or free_port()
    env = clean_environment(**{f"TURNOUT_{name.upper()}": value for name, value in settings.items()})
    command = [sys.executable, "-m", "engine", "serve", "--config", str(config), "--port", str(port)]
    with serving(command, env, workdir, port) as running:
        yield running


@contextmanager
def serving(command: list[str], env: dict[str, str], workdir: Path, port: int) -> Iterator[TurnoutProcess]:
    """Any command that serves Turnout on `port` (an installed `turnout`, an image's CMD), once healthy;
    stopped with SIGTERM at the end."""
    process = subprocess.Popen(
        command, env=env, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    running = TurnoutProcess(f"http://127.0.0.1:{port}", process, workdir)
    try:
        _wait_healthy(running)
        yield running
    finally:
        if process.poll() is None:
            running.stop()


def _wait_healthy(running: TurnoutProcess, seconds: float = 40) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise AssertionError(f"turnout serve exited early: {running.process.communicate()}")
        try:
            if httpx.get(running.url + "/health/liveness", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("turnout serve did not become healthy")


def fresh_interpreter(script: str, *args: str, home: Path, timeout: float = 60) -> dict[str, Any]:
    """Run `script` (Python source, given `args` as sys.argv[1:]) in a new interpreter with a bare
    environment, from the checkout's root, and return the JSON object its last output line holds: what
    a process imports is only seen in one that nothing else has imported into."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
        cwd=Path(__file__).resolve().parents[2],
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    seen: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return seen
