"""The operations beyond chat (embeddings, legacy completions, rerank) x the backends that serve each one.

As in test_golden.py: a scenario's request goes to the gateway over a real socket, a fake upstream answers
with the provider's fixture, and snapshots pin the exact upstream request and the client's answer, in
tests/golden/snapshots/<provider>/<operation>.<scenario>.<kind>.json.

  operations/<operation>/scenarios/<scenario>.yaml     the client's request (model `test-alias`)
  fixtures/<provider>/operations/<operation>/backend.yaml
      how to route to the backend: model string, api_base suffix, upstream path, litellm_params
  fixtures/<provider>/operations/<operation>/<scenario>.{response.json,stream.txt,error.json}
      the upstream's answer, shaped as that provider documents it

Every backend with a backend.yaml for an operation runs every scenario of that operation.
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
from tests.golden.support import (
    SNAPSHOTS,
    normalize,
    script_fixture,
    snapshot_extension,
    sse_data,
    turnout_headers,
    upstream_request,
)
from tests.support import GatewayServer, running_gateway
from tests.support.sdk_types import problems as sdk_problems

HERE = Path(__file__).parent
OPERATIONS = HERE / "operations"
ENDPOINTS = {"embeddings": "/embeddings", "completions": "/completions", "rerank": "/rerank"}
MODES = {"embeddings": "embedding", "completions": "completion", "rerank": "rerank"}
BACKENDS: dict[str, dict[str, dict[str, Any]]] = {
    operation: {
        spec.parents[2].name: yaml.safe_load(spec.read_text())
        for spec in sorted(HERE.glob(f"fixtures/*/operations/{operation}/backend.yaml"))
    }
    for operation in ENDPOINTS
}
CASES = [
    (operation, scenario.stem, provider)
    for operation in ENDPOINTS
    for scenario in sorted((OPERATIONS / operation / "scenarios").glob("*.yaml"))
    for provider in sorted(BACKENDS[operation])
]


OperationSnapshot = snapshot_extension(
    lambda p: str(SNAPSHOTS / p["provider"]) if isinstance(p.get("provider"), str) else None,
    lambda p: f"{p['operation']}.{p['scenario']}" if "operation" in p else None,
)


@pytest.fixture
def golden(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(OperationSnapshot)


def _alias(operation: str, provider: str) -> str:
    return f"golden-{operation}-{provider}"


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeUpstream, GatewayServer]]:
    """One fake upstream and one gateway with an alias per (operation, backend)."""
    with FakeUpstream() as fake:
        model_list = [
            {
                "model_name": _alias(operation, provider),
                "litellm_params": {
                    **backend.get("litellm_params", {}),
                    "model": backend["model"],
                    "api_base": fake.url + backend.get("api_base_suffix", ""),
                    "api_key": "sk-upstream-secret",
                },
                "model_info": {"mode": MODES[operation]},
            }
            for operation, backends in BACKENDS.items()
            for provider, backend in backends.items()
        ]
        # snapshots pin each mapping's translation, model name included (test_golden.py says why)
        with running_gateway(
            tmp_path_factory.mktemp("golden-ops"), {"model_list": model_list}, response_model="upstream"
        ) as gateway:
            yield fake, gateway


def _fixture(provider: str, operation: str, scenario: str) -> tuple[str, Path]:
    for kind in ("response.json", "stream.txt", "error.json"):
        path = HERE / "fixtures" / provider / "operations" / operation / f"{scenario}.{kind}"
        if path.exists():
            return kind.split(".")[0], path
    raise FileNotFoundError(f"no fixture for {provider}/operations/{operation}/{scenario}")


_GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


def _normalize(value: Any) -> Any:
    """As in test_golden.py, plus the generated ids and clocks of text completions and rerank answers."""
    if isinstance(value, dict):
        out = {k: _normalize(v) for k, v in value.items()}
        if "results" in out and isinstance(out.get("id"), str) and _GENERATED_ID.match(out["id"]):
            out["id"] = "<generated>"
        if out.get("object") == "text_completion":
            if isinstance(out.get("created"), int):
                out["created"] = "<created>"
            if isinstance(out.get("id"), str) and len(out["id"]) == 37 and out["id"].startswith("cmpl-"):
                out["id"] = "cmpl-<generated>"
        return out
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    return normalize(value)


@pytest.mark.parametrize(("operation", "scenario", "provider"), CASES)
def test_golden_operation(
    operation: str,
    scenario: str,
    provider: str,
    harness: tuple[FakeUpstream, GatewayServer],
    golden: SnapshotAssertion,
) -> None:
    fake, gateway = harness
    backend = BACKENDS[operation][provider]
    scenario_file = OPERATIONS / operation / "scenarios" / f"{scenario}.yaml"
    request = yaml.safe_load(scenario_file.read_text())["request"]
    fake.clear()
    kind, fixture = _fixture(provider, operation, scenario)
    script_fixture(fake, backend["path"], kind, fixture)

    request["model"] = _alias(operation, provider)
    answer = httpx.post(f"{gateway.v1}{ENDPOINTS[operation]}", json=request, timeout=10)

    assert upstream_request(fake) == golden(name="request")
    headers = turnout_headers(answer)
    if request.get("stream") and answer.status_code == 200:
        events = [_normalize(event) for event in sse_data(answer.text)]
        assert {"status": answer.status_code, "headers": headers, "events": events} == golden(name="stream")
    else:
        body = _normalize(msgspec.json.decode(answer.content))
        assert {"status": answer.status_code, "headers": headers, "body": body} == golden(name="response")
    assert sdk_problems(answer) == []  # answers, chunks and errors are the openai SDK's types
