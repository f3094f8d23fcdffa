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
    model: str  # LiteLLM-style model string of the deployment
    path: str  # where the upstream receives chat requests
    api_base_suffix: str = ""


BACKENDS = {
    "ollama": Backend("ollama/test-model", "/api/chat"),
    "openai": Backend("openai/test-model", "/v1/chat/completions", "/v1"),
}

NOT_APPLICABLE: dict[tuple[str, str], str] = {}


@dataclass
class Harness:
    fake: FakeUpstream
    gateways: dict[str, GatewayServer]


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with FakeUpstream() as fake:
        gateways: dict[str, GatewayServer] = {}
        stack = []
        for name, backend in BACKENDS.items():
            config = {
                "model_list": [
                    {
                        "model_name": "test-alias",
                        "litellm_params": {
                            "model": backend.model,
                            "api_base": fake.url + backend.api_base_suffix,
                            "api_key": "sk-upstream-secret",
                        },
                    }
                ]
            }
            context = running_gateway(tmp_path_factory.mktemp(name), config)
            gateways[name] = context.__enter__()
            stack.append(context)
        try:
            yield Harness(fake, gateways)
        finally:
            for context in reversed(stack):
                context.__exit__(None, None, None)


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


def _upstream_request(fake: FakeUpstream) -> dict[str, Any]:
    sent = next(r for r in reversed(fake.requests) if r.method == "POST")
    headers = {k: v for k, v in sent.headers.items() if k in ("content-type", "authorization")}
    if "authorization" in headers:  # pin that the key is sent, never the key itself
        headers["authorization"] = re.sub(r"sk-[\w-]+", "<upstream key>", headers["authorization"])
    body = msgspec.json.decode(
        msgspec.json.encode(sent.json).replace(fake.url.encode(), b"http://upstream.test")
    )
    return {"method": sent.method, "path": sent.path, "headers": headers, "body": body}


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
    if (provider, scenario) in NOT_APPLICABLE:
        pytest.skip(f"not applicable: {NOT_APPLICABLE[provider, scenario]}")
    backend = BACKENDS[provider]
    fake = harness.fake
    request = yaml.safe_load((HERE / "scenarios" / f"{scenario}.yaml").read_text())["request"]
    request = msgspec.json.decode(
        msgspec.json.encode(request).replace(REMOTE_IMAGE.encode(), f"{fake.url}/cat.png".encode())
    )
    fake.clear()
    fake.add("GET", "/cat.png", body=PNG, content_type="image/png")
    kind, fixture = _fixture(provider, scenario)
    _script(fake, backend.path, kind, fixture)

    answer = httpx.post(f"{harness.gateways[provider].v1}/chat/completions", json=request, timeout=10)

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
