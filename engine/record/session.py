"""Run the gateway in this process, pointed at the recording proxy, and send each case through it.

The gateway is the real one (the same mappings, the same translation), with a throwaway SQLite
database and one alias per way of reaching the backend: `record` as configured, `record-wrong-key`
with a key the backend cannot know, `record-unknown-model` with a model it cannot have. Retries and
cooldowns are off, so each case makes at most one upstream exchange.
"""

from __future__ import annotations

import asyncio
import base64
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import uvicorn
import yaml

from engine.record.cases import Case, Target
from engine.record.proxy import IMAGE_PATH, Exchange, RecordingProxy
from engine.settings import Settings

__all__ = ["WRONG_KEY", "Backend", "Outcome", "Recording", "record_cases"]

# the golden scenarios' 1x1 PNG, served to backends whose mapping fetches images
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="
)
WRONG_KEY = "turnout-record-wrong-key-4f1c9a"  # long enough for the redactor to know it in echoes
_ALIASES: dict[Target, str] = {
    "main": "record",
    "wrong_key": "record-wrong-key",
    "unknown_model": "record-unknown-model",
}


@dataclass(frozen=True)
class Backend:
    """The live backend: a LiteLLM-style model string (`<provider>/<model>`), where it is, its key."""

    model: str
    base_url: str
    api_key: str | None
    params: dict[str, Any] = field(default_factory=dict)  # more litellm_params (api_version, ...)

    @property
    def origin(self) -> str:
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def base_path(self) -> str:
        return urlsplit(self.base_url).path.rstrip("/")


@dataclass
class Outcome:
    case: Case
    status: int  # what the gateway answered the client
    answer: str  # the start of its body, for the report
    exchanges: list[Exchange]


@dataclass
class Recording:
    outcomes: list[Outcome]
    proxy_url: str  # written as http://upstream.test in the files, as the golden snapshots do


async def record_cases(
    backend: Backend, cases: list[Case], *, mappings_dir: Path, timeout: float, image_url: str | None
) -> Recording:
    """Each case sent through a gateway in this process; what went upstream for each."""
    proxy = RecordingProxy(backend.origin, PNG, timeout=timeout)
    await proxy.start()
    try:
        with tempfile.TemporaryDirectory(prefix="turnout-record-") as folder:
            settings = _settings(Path(folder), backend, proxy.url, mappings_dir)
            async with _Gateway(settings) as gateway_url, httpx.AsyncClient(timeout=timeout) as client:
                outcomes = []
                for case in cases:
                    request = _with_images(case.request, image_url or proxy.url + IMAGE_PATH)
                    request["model"] = _ALIASES[case.target]
                    before = len(proxy.exchanges)
                    answer = await client.post(gateway_url + case.route, json=request)
                    outcomes.append(
                        Outcome(case, answer.status_code, answer.text[:500], proxy.exchanges[before:])
                    )
                return Recording(outcomes, proxy.url)
    finally:
        await proxy.stop()


def _settings(folder: Path, backend: Backend, proxy_url: str, mappings_dir: Path) -> Settings:
    api_base = proxy_url + backend.base_path

    def deployment(alias: str, model_string: str, key: str | None) -> dict[str, Any]:
        params = {**backend.params, "model": model_string, "api_base": api_base}
        if key is not None:
            params["api_key"] = key
        return {"model_name": alias, "litellm_params": params}

    config = {
        "model_list": [
            deployment(_ALIASES["main"], backend.model, backend.api_key),
            deployment(_ALIASES["wrong_key"], backend.model, WRONG_KEY),
            deployment(_ALIASES["unknown_model"], f"{backend.model}-no-such-model", backend.api_key),
        ],
        "router_settings": {"num_retries": 0, "cooldown_time": 0},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    return Settings(
        database_url=f"sqlite+aiosqlite:///{folder / 'record.db'}",
        config=folder / "config.yaml",
        mappings_dir=mappings_dir,
        master_key=None,
        salt_key="turnout-record",  # the database is thrown away with the folder
        redis_url=None,
        discovery_interval=0,
        response_model="upstream",
        image_fetch_allow="127.0.0.1",  # the proxy serves the vision scenario's image on loopback
        ui_enabled=False,
        log_level="warning",
        access_log=False,
    )


class _Gateway:
    """The gateway on a free loopback port for the length of a `with` block."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> str:
        from engine.app import create_app
        from engine.bootstrap import prepare
        from engine.mapping.loader import load_registry

        registry = load_registry(self._settings.mappings_dir)
        # prepare runs an event loop of its own: in a thread, beside this one
        resolved = await asyncio.to_thread(prepare, self._settings, registry)
        app = create_app(resolved, registry=registry)
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                raise RuntimeError("the gateway did not start")
            await asyncio.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task


def _with_images(request: dict[str, Any], image_url: str) -> dict[str, Any]:
    """The request with each remote image URL pointing at `image_url` (data: URLs stay as they are)."""

    def swap(value: Any) -> Any:
        if isinstance(value, dict):
            url = value.get("url")
            if isinstance(url, str) and url.startswith(("http://", "https://")) and "image_url" not in value:
                return {**value, "url": image_url}
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value

    swapped: dict[str, Any] = swap(request)
    return swapped
