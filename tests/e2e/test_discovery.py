"""Model discovery: GET /v1/models?include_discovered=true and readiness ask each backend what it serves."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.fakes import FakeUpstream
from tests.support import running_gateway
from tests.support.server import free_port


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
            plain = httpx.get(gw.v1 + "/models").json()["data"]
            listed = httpx.get(gw.v1 + "/models", params={"include_discovered": "true"}).json()["data"]
            ready = httpx.get(gw.url + "/health/readiness").json()
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
