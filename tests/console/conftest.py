"""The console's tests: one gateway with a master key per module, one Chromium per session, and a
fresh browser context (no cookies) per test.

`console.url` is the gateway; `signed_in` is a page already signed in with the master key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway
from tests.support.browser import launch_chromium, sign_in

MASTER_KEY = "sk-console-master-0123456789"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream) -> Iterator[GatewayServer]:
    """A gateway with the master key and one Ollama alias on the fake upstream; failed sign-ins
    answer at once (the delay is a setting, tested on its own)."""
    config = {
        "model_list": [
            {
                "model_name": "local-chat",
                "litellm_params": {"model": "ollama_chat/llama3.2", "api_base": upstream.url},
            }
        ]
    }
    with running_gateway(
        tmp_path_factory.mktemp("console"), config, master_key=MASTER_KEY, ui_sign_in_delay=0
    ) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per module, not per session: Playwright's sync API keeps an event loop running in
    the test thread while it is started, and tests elsewhere that call asyncio.run() need none."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def signed_in(page: Any, console: GatewayServer) -> Any:
    sign_in(page, console.url, MASTER_KEY)
    return page


@pytest.fixture
def fresh_upstream(upstream: FakeUpstream) -> FakeUpstream:
    upstream.clear()
    return upstream
