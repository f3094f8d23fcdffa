"""What the golden suites share: backends, fake-upstream scripting, normalisation, snapshot naming.

Every golden module (the chat matrix, other operations, client dialects) runs requests through a real
gateway against a fake upstream answering with the provider's fixtures, then snapshots what was sent
upstream and what came back. Snapshot files get names a reviewer can read, never syrupy's indices.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import yaml
from syrupy.extensions.json import JSONSnapshotExtension

from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway

__all__ = [
    "BACKENDS",
    "GOLDEN",
    "SNAPSHOTS",
    "Backend",
    "Harness",
    "fixture_for",
    "golden_gateway",
    "normalize",
    "script_fixture",
    "snapshot_extension",
    "sse_events",
    "turnout_headers",
    "upstream_request",
]

GOLDEN = Path(__file__).parent
SNAPSHOTS = GOLDEN / "snapshots"
HERE = GOLDEN


@dataclass(frozen=True)
class Backend:
    """tests/golden/fixtures/<provider>/backend.yaml: how to route to it and where it is reached."""

    model: str  # LiteLLM-style model string of the deployment
    path: str  # where the upstream receives chat requests
    stream_path: str  # where it receives streamed chat requests (the same for most backends)
    api_base_suffix: str = ""
    not_applicable: dict[str, str] | None = None  # scenario -> why this backend cannot serve it
    refused: dict[str, str] | None = None  # scenario -> why Turnout answers it with a 400 itself
    extra_params: dict[str, Any] | None = None  # more litellm_params (api_version, ...)


def _load_backends() -> dict[str, Backend]:
    backends = {}
    for spec in sorted((HERE / "fixtures").glob("*/backend.yaml")):
        data = yaml.safe_load(spec.read_text())
        backends[spec.parent.name] = Backend(
            model=data["model"],
            path=data["paths"]["chat"],
            stream_path=data["paths"].get("chat_stream", data["paths"]["chat"]),
            api_base_suffix=data.get("api_base_suffix", ""),
            not_applicable=data.get("not_applicable") or {},
            refused=data.get("refused") or {},
            extra_params=data.get("litellm_params") or {},
        )
    return backends


BACKENDS = _load_backends()


@dataclass
class Harness:
    fake: FakeUpstream
    gateway: GatewayServer


def fixture_for(provider: str, scenario: str) -> tuple[str, Path]:
    for kind in ("response.json", "stream.txt", "error.json"):
        path = HERE / "fixtures" / provider / f"{scenario}.{kind}"
        if path.exists():
            return kind.split(".")[0], path
    raise FileNotFoundError(f"no fixture for {provider}/{scenario}")


def script_fixture(fake: FakeUpstream, path: str, kind: str, fixture: Path) -> None:
    if kind == "response":
        fake.add("POST", path, json=msgspec.json.decode(fixture.read_bytes()), times=1)
    elif kind == "stream":
        fake.add("POST", path, stream=fixture.read_text().splitlines(keepends=True), times=1)
    else:
        error = msgspec.json.decode(fixture.read_bytes())
        fake.add("POST", path, status=error["status"], json=error["body"], headers=error["headers"], times=1)


_IDS = [
    (re.compile(r"^chatcmpl-[0-9a-f]{32}$"), "chatcmpl-<generated>"),
    (re.compile(r"^call_[0-9a-f]{24}$"), "call_<generated>"),
]


def normalize(value: Any) -> Any:
    """Generated ids and clocks replaced by placeholders, so snapshots only change when behaviour does."""
    if isinstance(value, dict):
        out = {k: normalize(v) for k, v in value.items()}
        if isinstance(out.get("created"), int) and out.get("object", "").startswith("chat.completion"):
            out["created"] = "<created>"
        return out
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, str):
        for pattern, placeholder in _IDS:
            if pattern.match(value):
                return placeholder
    return value


_PINNED = {
    "content-type",
    "authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "anthropic-version",
    "anthropic-beta",
}


def upstream_request(fake: FakeUpstream) -> dict[str, Any]:
    sent = next(r for r in reversed(fake.requests) if r.method == "POST")
    # the headers that carry auth, versions and content type; keys are pinned as sent, never shown
    headers = {k: re.sub(r"sk-[\w-]+", "<upstream key>", v) for k, v in sent.headers.items() if k in _PINNED}
    body = msgspec.json.decode(
        msgspec.json.encode(sent.json).replace(fake.url.encode(), b"http://upstream.test")
    )
    snapshot = {"method": sent.method, "path": sent.path, "headers": headers, "body": body}
    if sent.query:
        snapshot["query"] = {k: re.sub(r"sk-[\w-]+", "<upstream key>", v) for k, v in sent.query.items()}
    return snapshot


def sse_data(raw: str) -> list[Any]:
    events = []
    for block in raw.split("\n\n"):
        data = "\n".join(line[6:] for line in block.splitlines() if line.startswith("data: "))
        if data:
            events.append(data if data == "[DONE]" else normalize(msgspec.json.decode(data)))
    return events


def sse_events(raw: str, clean: Callable[[Any], Any] = normalize) -> list[dict[str, Any]]:
    """Each SSE event as {event, data} (event-typed streams), data decoded and cleaned."""
    events = []
    for block in raw.split("\n\n"):
        lines = block.splitlines()
        name = next((line[7:] for line in lines if line.startswith("event: ")), None)
        data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
        if data:
            events.append({"event": name, "data": clean(msgspec.json.decode(data))})
    return events


def turnout_headers(response: httpx.Response) -> dict[str, str]:
    """The headers a snapshot pins: Turnout's own and retry-after (the request id is random: only its
    presence is pinned; the deployment id is the routing table's SQL id, pinned by the e2e suite)."""
    return {
        k: "<request id>" if k == "x-turnout-request-id" else v
        for k, v in response.headers.items()
        if (k.startswith("x-turnout-") and k != "x-turnout-deployment-id") or k == "retry-after"
    }


def _params(test_location: Any) -> dict[str, Any]:
    callspec = getattr(test_location.item, "callspec", None)
    return dict(callspec.params) if callspec is not None else {}


Naming = Callable[[dict[str, Any]], str | None]


def snapshot_extension(folder: Naming, name: Naming) -> type[JSONSnapshotExtension]:
    """A syrupy extension writing <folder(params)>/<name(params)>.<kind>.json, keys sorted.

    For tests whose parameters do not fit (syrupy also asks about other tests' locations when it looks
    for unused files) `folder` or `name` returns None and syrupy's own naming applies.
    """

    class GoldenFiles(JSONSnapshotExtension):
        @classmethod
        def dirname(cls, *, test_location: Any) -> str:
            where = folder(_params(test_location))
            return super().dirname(test_location=test_location) if where is None else where

        @classmethod
        def get_snapshot_name(cls, *, test_location: Any, index: Any = 0) -> str:
            stem = name(_params(test_location))
            if stem is None:
                return super().get_snapshot_name(test_location=test_location, index=index)
            return f"{stem}.{index}"

    return GoldenFiles


@contextmanager
def golden_gateway(tmp: Path, providers: Iterable[str], **settings: Any) -> Iterator[Harness]:
    """One fake upstream, and one gateway with an alias `golden-<provider>` for each backend named."""
    with FakeUpstream() as fake:
        model_list = [
            {
                "model_name": f"golden-{name}",
                "litellm_params": {
                    **(BACKENDS[name].extra_params or {}),
                    "model": BACKENDS[name].model,
                    "api_base": fake.url + BACKENDS[name].api_base_suffix,
                    "api_key": "sk-upstream-secret",
                },
            }
            for name in providers
        ]
        # the vision scenarios' image is served by the fake, on loopback: allowed as an internal server
        settings.setdefault("image_fetch_allow", "127.0.0.1")
        with running_gateway(tmp, {"model_list": model_list}, **settings) as gateway:
            yield Harness(fake, gateway)
