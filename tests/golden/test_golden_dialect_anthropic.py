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
import pytest
import yaml
from syrupy.assertion import SnapshotAssertion

from tests.golden.support import (
    BACKENDS,
    Harness,
    fixture_for,
    golden_gateway,
    normalize,
    script_fixture,
    snapshot_extension,
    sse_events,
    turnout_headers,
    upstream_request,
)
from tests.support.sdk_types import problems as sdk_problems

HERE = Path(__file__).parent
SCENARIOS = sorted(p.stem for p in (HERE / "dialects" / "anthropic").glob("*.yaml"))
PROVIDERS = ["ollama", "openai"]
SNAPSHOTS = HERE / "snapshots" / "dialect-anthropic"
_MESSAGE_ID = re.compile(r"^msg_[0-9a-f]{32}$")


DialectSnapshot = snapshot_extension(
    lambda p: str(SNAPSHOTS / p["provider"]) if isinstance(p.get("provider"), str) else None,
    lambda p: str(p["scenario"]) if "scenario" in p else None,
)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with golden_gateway(tmp_path_factory.mktemp("golden"), PROVIDERS) as harness:
        yield harness


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
    kind, fixture = fixture_for(provider, spec["fixture"])
    script_fixture(fake, backend.stream_path if request.get("stream") else backend.path, kind, fixture)

    request["model"] = f"golden-{provider}"
    answer = httpx.post(f"{harness.gateway.url}/v1/messages", json=request, timeout=10)

    assert upstream_request(fake) == golden(name="request")
    headers = turnout_headers(answer)
    if request.get("stream") and answer.status_code == 200:
        result = {
            "status": answer.status_code,
            "headers": headers,
            "events": sse_events(answer.text, _normalize),
        }
        assert result == golden(name="stream")
    else:
        result = {"status": answer.status_code, "headers": headers, "body": _normalize(answer.json())}
        assert result == golden(name="response")
    assert sdk_problems(answer) == []  # the message, each event and errors are the anthropic SDK's types
