"""The scenario matrix x every backend: the exact upstream request, the translated answer and stream.

Each case runs over real sockets: the scenario's request goes to the gateway, a fake upstream answers
with the provider's fixture and records what it was sent. Snapshots pin all three. A backend that
cannot serve a scenario says so in NOT_APPLICABLE, with the reason — never a silent skip.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import yaml
from syrupy.assertion import SnapshotAssertion

from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway

HERE = Path(__file__).parent
SCENARIOS = sorted(p.stem for p in (HERE / "scenarios").glob("*.yaml"))
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="
)
REMOTE_IMAGE = "https://example.com/cat.png"


@dataclass(frozen=True)
class Backend:
    """tests/golden/fixtures/<provider>/backend.yaml: how to route to it and where it is reached."""

    model: str  # LiteLLM-style model string of the deployment
    path: str  # where the upstream receives chat requests
    stream_path: str  # where it receives streamed chat requests (the same for most backends)
    api_base_suffix: str = ""
    not_applicable: dict[str, str] | None = None  # scenario -> why this backend cannot serve it
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
            extra_params=data.get("litellm_params") or {},
        )
    return backends


BACKENDS = _load_backends()


@dataclass
class Harness:
    fake: FakeUpstream
    gateway: GatewayServer


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """One fake upstream and one gateway with an alias `golden-<provider>` per backend."""
    with FakeUpstream() as fake:
        model_list = [
            {
                "model_name": f"golden-{name}",
                "litellm_params": {
                    **(backend.extra_params or {}),
                    "model": backend.model,
                    "api_base": fake.url + backend.api_base_suffix,
                    "api_key": "sk-upstream-secret",
                },
            }
            for name, backend in BACKENDS.items()
        ]
        with running_gateway(tmp_path_factory.mktemp("golden"), {"model_list": model_list}) as gateway:
            yield Harness(fake, gateway)


def _fixture(provider: str, scenario: str) -> tuple[str, Path]:
    for kind in ("response.json", "stream.txt", "error.json"):
        path = HERE / "fixtures" / provider / f"{scenario}.{kind}"
        if path.exists():
            return kind.split(".")[0], path
    raise FileNotFoundError(f"no fixture for {provider}/{scenario}")


def _script(fake: FakeUpstream, path: str, kind: str, fixture: Path) -> None:
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


def _upstream_request(fake: FakeUpstream) -> dict[str, Any]:
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


def _events(raw: str) -> list[Any]:
    events = []
    for block in raw.split("\n\n"):
        data = "\n".join(line[6:] for line in block.splitlines() if line.startswith("data: "))
        if data:
            events.append(data if data == "[DONE]" else normalize(msgspec.json.decode(data)))
    return events


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("provider", sorted(BACKENDS))
def test_golden(provider: str, scenario: str, harness: Harness, golden: SnapshotAssertion) -> None:
    backend = BACKENDS[provider]
    if scenario in (backend.not_applicable or {}):
        pytest.skip(f"not applicable to {provider}: {(backend.not_applicable or {})[scenario]}")
    fake = harness.fake
    request = yaml.safe_load((HERE / "scenarios" / f"{scenario}.yaml").read_text())["request"]
    request = msgspec.json.decode(
        msgspec.json.encode(request).replace(REMOTE_IMAGE.encode(), f"{fake.url}/cat.png".encode())
    )
    fake.clear()
    fake.add("GET", "/cat.png", body=PNG, content_type="image/png")
    kind, fixture = _fixture(provider, scenario)
    _script(fake, backend.stream_path if request.get("stream") else backend.path, kind, fixture)

    request["model"] = f"golden-{provider}"
    answer = httpx.post(f"{harness.gateway.v1}/chat/completions", json=request, timeout=10)

    assert _upstream_request(fake) == golden(name="request")
    turnout_headers = {
        k: v for k, v in answer.headers.items() if k.startswith("x-turnout-") or k == "retry-after"
    }
    if request.get("stream") and answer.status_code == 200:
        result = {"status": answer.status_code, "headers": turnout_headers, "events": _events(answer.text)}
        assert result == golden(name="stream")
    else:
        result = {"status": answer.status_code, "headers": turnout_headers, "body": normalize(answer.json())}
        assert result == golden(name="response")
