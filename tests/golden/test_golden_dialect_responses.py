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
import msgspec
import pytest
import yaml
from syrupy.assertion import SnapshotAssertion

from tests.fakes import FakeUpstream
from tests.golden.conftest import SNAPSHOTS, GoldenSnapshot
from tests.golden.test_golden import BACKENDS, Harness, _fixture, _script, _upstream_request
from tests.golden.test_golden import normalize as normalize_chat
from tests.support import running_gateway

HERE = Path(__file__).parent
SCENARIOS = sorted(p.stem for p in (HERE / "dialects" / "responses").glob("*.yaml"))
DIALECT_BACKENDS = ["ollama", "openai"]

_IDS = re.compile(r"^(resp|msg|rs|fc)_[0-9a-f]{32}\d*$")


class DialectSnapshot(GoldenSnapshot):
    @classmethod
    def dirname(cls, *, test_location: Any) -> str:
        callspec = getattr(test_location.item, "callspec", None)
        # syrupy also asks about other modules' tests when it looks for unused snapshot files
        if callspec is None or test_location.item.module.__name__ != __name__:
            return super().dirname(test_location=test_location)
        return str(SNAPSHOTS / "dialect-responses" / callspec.params["backend"])


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


def _events(raw: str) -> list[dict[str, Any]]:
    events = []
    for block in raw.split("\n\n"):
        lines = block.splitlines()
        name = next((line[7:] for line in lines if line.startswith("event: ")), None)
        data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
        if data:
            events.append({"event": name, "data": normalize(msgspec.json.decode(data))})
    return events


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
            for name in DIALECT_BACKENDS
        ]
        with running_gateway(tmp_path_factory.mktemp("golden"), {"model_list": model_list}) as gateway:
            yield Harness(fake, gateway)


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("backend", DIALECT_BACKENDS)
def test_golden_responses(backend: str, scenario: str, harness: Harness, snapshot: SnapshotAssertion) -> None:
    golden = snapshot.use_extension(DialectSnapshot)
    spec = yaml.safe_load((HERE / "dialects" / "responses" / f"{scenario}.yaml").read_text())
    request = {"model": f"golden-{backend}", **spec["request"]}
    fake = harness.fake
    fake.clear()
    if spec["fixture"]:
        kind, fixture = _fixture(backend, spec["fixture"])
        path = BACKENDS[backend].stream_path if request.get("stream") else BACKENDS[backend].path
        _script(fake, path, kind, fixture)

    answer = httpx.post(f"{harness.gateway.v1}/responses", json=request, timeout=10)

    if spec["fixture"]:
        assert _upstream_request(fake) == golden(name="request")
    else:
        assert not [r for r in fake.requests if r.method == "POST"]
    if request.get("stream") and answer.status_code == 200:
        events = _events(answer.text)
        assert [e["data"]["sequence_number"] for e in events] == list(range(len(events)))
        assert all(e["event"] == e["data"]["type"] for e in events)
        assert {"status": 200, "events": events} == golden(name="stream")
    else:
        assert {"status": answer.status_code, "body": normalize(answer.json())} == golden(name="response")
