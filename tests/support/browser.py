"""A real browser for the console's tests: Playwright driving Debian's Chromium, headless.

Playwright's own browser download is not used (and not reachable here): `TURNOUT_TEST_CHROMIUM`
(default /usr/bin/chromium, Debian's `chromium` package, which `.ci/run` installs) is launched
instead. A missing browser fails the tests that need it, loudly, rather than skipping them.

Screenshots go to `TURNOUT_SCREENSHOTS` (default `artifacts/screenshots`, kept by CI as artifacts).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

__all__ = ["CHROMIUM", "SCREENSHOTS", "launch_chromium", "save_screenshot", "sign_in"]

CHROMIUM = Path(os.environ.get("TURNOUT_TEST_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(
    os.environ.get("TURNOUT_SCREENSHOTS", Path(__file__).resolve().parents[2] / "artifacts" / "screenshots")
)


def launch_chromium(playwright: Any) -> Any:
    if not CHROMIUM.exists():
        raise RuntimeError(
            f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install -y chromium) "
            "or point TURNOUT_TEST_CHROMIUM at a Chromium binary"
        )
    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # Chromium's sandbox refuses to run as root
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)


def sign_in(page: Any, base_url: str, secret: str, *, username: str = "", ui: str = "/ui") -> None:
    """Sign in through the form, as a person would, and wait for the console's first page."""
    page.goto(f"{base_url}{ui}/sign-in")
    page.fill("input[name=username]", username)
    page.fill("input[name=secret]", secret)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(re.escape(base_url + ui) + r"/?(\?.*)?$"))


def save_screenshot(page: Any, name: str) -> Path:
    """A full-page PNG of what the browser shows now, named for the page (e.g. "overview")."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
