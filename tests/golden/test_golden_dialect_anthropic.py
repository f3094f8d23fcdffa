"""The Anthropic Messages dialect x representative backends, as reviewable snapshots.

Each scenario in dialects/anthropic/<scenario>.yaml is a request in Anthropic's shape and names the
golden fixture the backend answers with. Snapshots pin the request the backend received and what the
client got back (the message, or the list of SSE events with their names), in
snapshots/dialect-anthropic/<backend>/<scenario>.{request,response,stream}.json.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import yaml
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from tests.fakes import FakeUpstream
from tests.golden.test_golden import BACKENDS, Harness, _fixture, _script, _upstream_request, normalize
from tests.support import running_gateway

HERE = Path(__file__).parent
SCENARIOS = sorted(p.stem for p in (HERE / "dialects" / "anthropic").glob("*.yaml"))
PROVIDERS = ["ollama", "openai"]
SNAPSHOTS = HERE / "snapshots" / "dialect-anthropic"
_MESSAGE_ID = re.compile(r"^msg_[0-9a-f]{32}$")


class DialectSnapshot(JSONSnapshotExtension):
    """snapshots/dialect-anthropic/<provider>/<scenario>.<kind>.json, keys sorted."""

    @classmethod
    def dirname(cls, *, test_location: Any) -> str:
        params = _params(test_location)
        if not isinstance(params.get("provider"), str):  # syrupy asks about every test's location
            return super().dirname(test_location=test_location)
        return str(SNAPSHOTS / params["provider"])

    @classmethod
    def get_snapshot_name(cls, *, test_location: Any, index: Any = 0) -> str:
        params = _params(test_location)
        if "scenario" not in params:
            return super().get_snapshot_name(test_location=test_location, index=index)
        return f"{params['scenario']}.{index}"


def _params(test_location: Any) -> dict[str, Any]:
    callspec = getattr(test_location.item, "callspec", None)
    return dict(callspec.params) if callspec is not None else {}


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with FakeUpstream() as fake:
        model_list = [
            {
                "model_name": f"golden-{name}",
                "litellm_params": {
                    "model": BACKENDS[name].model,
                    "api_base": fake.url + BACKENDS[name].api_base_suffix,
                    "api_key": "sk-upstream-secret",
                },
            }
            for name in PROVIDERS
        ]
        with running_gateway(tmp_path_factory.mktemp("dialect"), {"model_list": model_list}) as gateway:
            yield Harness(fake, gateway)


def _normalize(value: Any) -> Any:
    """normalize() plus the dialect's generated message ids."""
    value = normalize(value)
    if isinstance(value, dict):
        return {k: _normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    if isinstance(value, str) and _MESSAGE_ID.match(value):
        return "msg_<generated>"
    return value


def _events(raw: str) -> list[dict[str, Any]]:
    """Each SSE event as {event, data}."""
    events = []
    for block in raw.split("\n\n"):
        lines = block.splitlines()
        name = next((line[7:] for line in lines if line.startswith("event: ")), None)
        data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
        if data:
            events.append({"event": name, "data": _normalize(msgspec.json.decode(data))})
    return events


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_golden_dialect_anthropic(
    provider: str, scenario: str, harness: Harness, snapshot: SnapshotAssertion
) -> None:
    golden = snapshot.use_extension(DialectSnapshot)
    spec = yaml.safe_load((HERE / "dialects" / "anthropic" / f"{scenario}.yaml").read_text())
    request = spec["request"]
    backend = BACKENDS[provider]
    fake = harness.fake
    fake.clear()
    kind, fixture = _fixture(provider, spec["fixture"])
    _script(fake, backend.stream_path if request.get("stream") else backend.path, kind, fixture)

    request["model"] = f"golden-{provider}"
    answer = httpx.post(f"{harness.gateway.url}/v1/messages", json=request, timeout=10)

    assert _upstream_request(fake) == golden(name="request")
    turnout_headers = {
        k: v for k, v in answer.headers.items() if k.startswith("x-turnout-") or k == "retry-after"
    }
    if request.get("stream") and answer.status_code == 200:
        result = {"status": answer.status_code, "headers": turnout_headers, "events": _events(answer.text)}
        assert result == golden(name="stream")
    else:
        result = {"status": answer.status_code, "headers": turnout_headers, "body": _normalize(answer.json())}
        assert result == golden(name="response")
