"""The Responses API dialect x two backends: the exact upstream request and the Responses-shaped answer.

Scenarios are tests/golden/dialects/responses/<scenario>.yaml: a Responses request and the backend
fixture (tests/golden/fixtures/<backend>/) the fake upstream answers with. Snapshots are
tests/golden/snapshots/dialect-responses/<backend>/<scenario>.{request,response,stream}.json, with
generated ids and clocks normalized. A scenario refused before any upstream call snapshots no request.
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
    SNAPSHOTS,
    Harness,
    fixture_for,
    golden_gateway,
    script_fixture,
    snapshot_extension,
    sse_events,
    upstream_request,
)
from tests.golden.support import normalize as normalize_chat
from tests.support.sdk_types import problems as sdk_problems

HERE = Path(__file__).parent
SCENARIOS = sorted(p.stem for p in (HERE / "dialects" / "responses").glob("*.yaml"))
DIALECT_BACKENDS = ["ollama", "openai"]

_IDS = re.compile(r"^(resp|msg|rs|fc)_[0-9a-f]{32}\d*$")


# "backend" rather than "provider": the e2e tests' `backend` fixture is an object, hence the isinstance
DialectSnapshot = snapshot_extension(
    lambda p: (
        str(SNAPSHOTS / "dialect-responses" / p["backend"]) if isinstance(p.get("backend"), str) else None
    ),
    lambda p: str(p["scenario"]) if "scenario" in p else None,
)


def normalize(value: Any) -> Any:
    """Chat normalization, plus the Responses ids (`resp_`, `msg_`, `rs_`, `fc_`) and `created_at`."""
    value = normalize_chat(value)
    if isinstance(value, dict):
        out = {k: normalize(v) for k, v in value.items()}
        if out.get("object") == "response" and isinstance(out.get("created_at"), int):
            out["created_at"] = "<created_at>"
        return out
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, str) and _IDS.match(value):
        return value.split("_", 1)[0] + "_<generated>"
    return value


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with golden_gateway(tmp_path_factory.mktemp("golden"), DIALECT_BACKENDS) as harness:
        yield harness


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("backend", DIALECT_BACKENDS)
def test_golden_responses(backend: str, scenario: str, harness: Harness, snapshot: SnapshotAssertion) -> None:
    golden = snapshot.use_extension(DialectSnapshot)
    spec = yaml.safe_load((HERE / "dialects" / "responses" / f"{scenario}.yaml").read_text())
    request = {"model": f"golden-{backend}", **spec["request"]}
    fake = harness.fake
    fake.clear()
    if spec["fixture"]:
        kind, fixture = fixture_for(backend, spec["fixture"])
        path = BACKENDS[backend].stream_path if request.get("stream") else BACKENDS[backend].path
        script_fixture(fake, path, kind, fixture)

    answer = httpx.post(f"{harness.gateway.v1}/responses", json=request, timeout=10)

    if spec["fixture"]:
        assert upstream_request(fake) == golden(name="request")
    else:
        assert not [r for r in fake.requests if r.method == "POST"]
    if request.get("stream") and answer.status_code == 200:
        events = sse_events(answer.text, normalize)
        assert [e["data"]["sequence_number"] for e in events] == list(range(len(events)))
        assert all(e["event"] == e["data"]["type"] for e in events)
        assert {"status": 200, "events": events} == golden(name="stream")
    else:
        assert {"status": answer.status_code, "body": normalize(answer.json())} == golden(name="response")
    assert sdk_problems(answer) == []  # the Response, each event and errors are the openai SDK's types
