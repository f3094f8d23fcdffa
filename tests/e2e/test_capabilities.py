"""Capability flags from SQL decide what a deployment may receive: a 400 naming what is missing, or,
with drop_params, the request without it and a warning header."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakeUpstream
from tests.support import running_gateway, sdk_types

ANSWER = {
    "model": "m",
    "created_at": "2025-01-01T00:00:00Z",
    "message": {"role": "assistant", "content": "ok"},
    "done": True,
    "done_reason": "stop",
}
TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD"}}


def _config(url: str, drop_params: bool) -> dict[str, Any]:
    info = {"supports_function_calling": False, "supports_vision": False, "supports_reasoning": False}
    return {
        "model_list": [
            {
                "model_name": "plain",
                "litellm_params": {"model": "ollama/m", "api_base": url},
                "model_info": info,
            },
            {"model_name": "unstated", "litellm_params": {"model": "ollama/m", "api_base": url}},
        ],
        "litellm_settings": {"drop_params": drop_params},
    }


@pytest.mark.parametrize(
    ("extra", "capability", "param"),
    [
        ({"tools": TOOLS}, "tools", "tools"),
        ({"reasoning_effort": "high"}, "reasoning", "reasoning_effort"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "look"}, IMAGE]}]},
            "vision",
            "messages",
        ),
    ],
)
def test_missing_capability_is_a_400_naming_it(
    tmp_path: Path, extra: dict[str, Any], capability: str, param: str
) -> None:
    with FakeUpstream() as fake, running_gateway(tmp_path, _config(fake.url, drop_params=False)) as gw:
        fake.add("POST", "/api/chat", json=ANSWER)
        body = {"model": "plain", "messages": [{"role": "user", "content": "hi"}], **extra}
        refused = sdk_types.post(gw.v1 + "/chat/completions", json=body)
        allowed = sdk_types.post(gw.v1 + "/chat/completions", json={**body, "model": "unstated"})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "unsupported_capability" and error["param"] == param
    assert f"does not support {capability}" in error["message"]
    assert allowed.status_code == 200  # a capability nobody stated is allowed
    assert len(fake.requests) == 1  # the refused request never went upstream


def test_drop_params_sends_without_it_and_warns(tmp_path: Path) -> None:
    with FakeUpstream() as fake, running_gateway(tmp_path, _config(fake.url, drop_params=True)) as gw:
        fake.add("POST", "/api/chat", json=ANSWER)
        content = [{"type": "text", "text": "look"}, IMAGE]
        answer = sdk_types.post(
            gw.v1 + "/chat/completions",
            json={"model": "plain", "messages": [{"role": "user", "content": content}], "tools": TOOLS},
        )
    assert answer.status_code == 200
    assert "removed tools, vision" in answer.headers["x-turnout-warning"]
    sent = fake.last.json
    assert "tools" not in sent and "images" not in sent["messages"][0]
    assert sent["messages"][0]["content"] == "look"
