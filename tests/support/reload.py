"""Waiting for a hot reload without sleeping a fixed time: poll /health/readiness until a condition
holds, with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

__all__ = ["readiness", "rewrite", "wait_for_readiness"]


def readiness(url: str) -> dict[str, Any]:
    answer = httpx.get(url + "/health/readiness", timeout=5)
    assert answer.status_code == 200, answer.text  # a refused change never makes a gateway unready
    body: dict[str, Any] = answer.json()
    return body


def wait_for_readiness(
    url: str, condition: Callable[[dict[str, Any]], bool], what: str, seconds: float = 30
) -> dict[str, Any]:
    """The first readiness body for which `condition` holds; fails naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        body = readiness(url)
        if condition(body):
            return body
        assert time.monotonic() < deadline, f"no {what} within {seconds} s; readiness: {body}"
        time.sleep(0.02)


def rewrite(path: Path, text: str) -> None:
    """Replace a file as editors do (write aside, then rename over it): a new inode each time, so a
    change is seen even when size and modification time happen to match the old file's."""
    aside = path.with_name(path.name + ".swap")
    aside.write_text(text)
    aside.replace(path)
