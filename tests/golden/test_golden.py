"""The scenario matrix x every backend: the exact upstream request, the translated answer and stream.

Each case runs over real sockets: the scenario's request goes to the gateway, a fake upstream answers
with the provider's fixture and records what it was sent. Snapshots pin all three. A backend that
cannot serve a scenario says so in NOT_APPLICABLE, with the reason — never a silent skip; one whose
mapping refuses it says so under `refused`, and the case checks that refusal instead.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
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
    sse_data,
    turnout_headers,
    upstream_request,
)
from tests.support.sdk_types import problems as sdk_problems

HERE = Path(__file__).parent
SCENARIOS = sorted(p.stem for p in (HERE / "scenarios").glob("*.yaml"))
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="
)
REMOTE_IMAGE = "https://example.com/cat.png"


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    # the snapshots pin each mapping's own translation: answers keep the model name the mapping gives
    # them (the name the client asked for replaces it after the mapping, by default: test_model_name.py)
    with golden_gateway(tmp_path_factory.mktemp("golden"), BACKENDS, response_model="upstream") as harness:
        yield harness


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
    if scenario in (backend.refused or {}):
        _assert_refused(harness, provider, request)
        return
    kind, fixture = fixture_for(provider, scenario)
    script_fixture(fake, backend.stream_path if request.get("stream") else backend.path, kind, fixture)

    request["model"] = f"golden-{provider}"
    answer = httpx.post(f"{harness.gateway.v1}/chat/completions", json=request, timeout=10)

    assert upstream_request(fake) == golden(name="request")
    headers = turnout_headers(answer)
    if request.get("stream") and answer.status_code == 200:
        result = {"status": answer.status_code, "headers": headers, "events": sse_data(answer.text)}
        assert result == golden(name="stream")
    else:
        result = {"status": answer.status_code, "headers": headers, "body": normalize(answer.json())}
        assert result == golden(name="response")
    assert sdk_problems(answer) == []  # answers, chunks and errors are what the openai SDK's types say


def _assert_refused(harness: Harness, provider: str, request: dict[str, object]) -> None:
    """A scenario the backend's backend.yaml lists under `refused`: Turnout answers a 400 itself, and
    nothing reaches the upstream (the fidelity matrix shows these cells as refused)."""
    request["model"] = f"golden-{provider}"
    answer = httpx.post(f"{harness.gateway.v1}/chat/completions", json=request, timeout=10)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert [r for r in harness.fake.requests if r.method == "POST"] == []
    assert sdk_problems(answer) == []
