"""Run Turnout as users run it: migrate, import a config, serve on a real local socket (in a thread)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from engine.app import create_app
from engine.bootstrap import prepare
from engine.mapping.loader import load_registry
from engine.settings import Settings, project_path

__all__ = ["GatewayServer", "free_port", "running_gateway"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class GatewayServer:
    url: str  # http://127.0.0.1:PORT
    settings: Settings
    app: Any

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    @property
    def gateway(self) -> Any:
        return self.app.state.gateway


@contextmanager
def running_gateway(
    tmp_path: Path,
    config: dict[str, Any] | None = None,
    *,
    mappings_dir: Path | None = None,
    clock: Callable[[], float] | None = None,
    tracer_provider: Any = None,
    **settings: Any,
) -> Iterator[GatewayServer]:
    """Serve Turnout with `config` (a LiteLLM-format dict, or None for the default alias set); `clock`
    (epoch seconds, e.g. a FakeClock) replaces the gateway's clocks: rate-limit minutes, cooldowns,
    key expiry and stored responses' expiry, so no test depends on the wall clock. `tracer_provider` (an
    OpenTelemetry SDK TracerProvider) receives the gateway's spans."""
    config_path = None
    if config is not None:
        config_path = tmp_path / "config.yaml"
        config_path.write_text(yaml.safe_dump(config))
    base = Settings.model_validate(
        {
            "database_url": f"sqlite+aiosqlite:///{tmp_path / 'turnout.db'}",
            "config": config_path,
            "mappings_dir": mappings_dir or project_path("mappings"),
            "TURNOUT_SALT_KEY": "test-salt",
            # no background discovery unless a test asks: its requests would mix with the test's own
            "discovery_interval": 0,
            **settings,
        }
    )
    registry = load_registry(base.mapping_folders)
    # in a thread of its own: prepare runs its own event loop, and a test may hold one already
    # (Playwright's sync API keeps one running in the test's thread)
    with ThreadPoolExecutor(1) as preparing:
        resolved = preparing.submit(prepare, base, registry).result()
    app = create_app(resolved, registry=registry, clock=clock, tracer_provider=tracer_provider)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", loop="asyncio", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the gateway did not start")
        time.sleep(0.01)
    try:
        yield GatewayServer(f"http://127.0.0.1:{port}", resolved, app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
