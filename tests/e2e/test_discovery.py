"""Model discovery: GET /v1/models?include_discovered=true and readiness ask each backend what it serves."""

from __future__ import annotations

import time
from pathlib import Path

from tests.fakes import FakeUpstream
from tests.support import running_gateway, sdk_types
from tests.support.server import free_port

HI = [{"role": "user", "content": "hi"}]


def test_discovered_models_and_availability(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    with FakeUpstream() as fake:
        fake.add(
            "GET",
            "/api/tags",
            json={
                "models": [
                    {"name": "qwen3:8b", "model": "qwen3:8b", "size": 1},
                    {"name": "llama3.2:latest", "model": "llama3.2:latest"},
                ]
            },
        )
        fake.add(
            "GET", "/v1/models", json={"object": "list", "data": [{"id": "other-model", "object": "model"}]}
        )
        config = {
            "model_list": [
                {"model_name": "here", "litellm_params": {"model": "ollama/qwen3:8b", "api_base": fake.url}},
                {
                    "model_name": "gone",
                    "litellm_params": {"model": "openai/missing", "api_base": fake.url + "/v1"},
                },
                {"model_name": "down", "litellm_params": {"model": "ollama/x", "api_base": closed}},
            ]
        }
        with running_gateway(tmp_path, config) as gw:
            plain = sdk_types.get(gw.v1 + "/models").json()["data"]
            listed = sdk_types.get(gw.v1 + "/models", params={"include_discovered": "true"}).json()["data"]
            ready = sdk_types.get(gw.url + "/health/readiness").json()
    assert [m["id"] for m in plain] == ["down", "gone", "here"]
    assert all("available" not in m for m in plain)  # nobody was asked
    by_id = {m["id"]: m for m in listed}
    assert by_id["here"]["available"] is True
    assert by_id["gone"]["available"] is False
    assert by_id["down"]["available"] is None  # its backend could not be asked
    assert by_id["llama3.2:latest"] == {
        "id": "llama3.2:latest",
        "object": "model",
        "created": 0,
        "owned_by": "ollama",
        "discovered": True,
    }
    assert by_id["other-model"]["owned_by"] == "openai"
    assert ready["status"] == "ok"
    assert ready["backends"] == {"reachable": 2, "unreachable": 1}


def test_the_watcher_marks_missing_models_and_routing_prefers_listed_ones(tmp_path: Path) -> None:
    with FakeUpstream() as fake:
        fake.add("GET", "/api/tags", json={"models": [{"name": "present:latest", "model": "present:latest"}]})
        answer = {
            "model": "present",
            "created_at": "2025-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": "ok"},
            "done": True,
            "done_reason": "stop",
        }
        fake.add("POST", "/api/chat", json=answer)
        entries = [
            {"model_name": "a", "litellm_params": {"model": "ollama/gone", "api_base": fake.url, "order": 1}},
            {
                "model_name": "a",
                "litellm_params": {"model": "ollama/present", "api_base": fake.url, "order": 2},
            },
        ]
        with running_gateway(tmp_path, {"model_list": entries}, discovery_interval=60) as gw:
            deadline = time.monotonic() + 5
            while not gw.gateway.router.missing and time.monotonic() < deadline:
                time.sleep(0.02)
            response = sdk_types.post(gw.v1 + "/chat/completions", json={"model": "a", "messages": HI})
            states = sdk_types.get(gw.url + "/turnout/deployments").json()["data"]
    assert response.headers["x-turnout-deployment"] == "ollama/present"  # `gone` is skipped, though first
    by_model = {d["upstream_model"]: d for d in states}
    assert by_model["gone"]["state"] == "missing_model"
    assert by_model["present"]["state"] == "healthy" and by_model["present"]["served"] == 1
