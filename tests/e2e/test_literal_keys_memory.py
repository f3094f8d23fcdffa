"""A gateway whose config has a literal api key stores it encrypted and decrypts it to route, without
importing `cryptography` (~8 MB per process) where the process's libcrypto serves
(engine/config/fernet.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.support.process import fresh_interpreter

_SCRIPT = """
import json, sys
import httpx
from pathlib import Path
from tests.fakes import FakeUpstream
from tests.support import running_gateway

if sys.argv[2] == "fallback":
    import engine.config.fernet
    engine.config.fernet._native_aes = lambda: None

with FakeUpstream() as fake:
    fake.add("POST", "/v1/chat/completions", json={"id": "x", "object": "chat.completion", "created": 1,
        "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
        "finish_reason": "stop"}]})
    config = {"model_list": [{"model_name": "a", "litellm_params": {"model": "openai/m",
        "api_base": fake.url + "/v1", "api_key": "sk-literal-Zq8Wm3"}}]}
    with running_gateway(Path(sys.argv[1]), config) as gw:
        answer = httpx.post(gw.v1 + "/chat/completions", json={"model": "a",
            "messages": [{"role": "user", "content": "hi"}]})
        assert answer.status_code == 200, answer.text
        sent = fake.last.headers.get("authorization")
print(json.dumps({"authorization": sent,
    "cryptography": sorted(m for m in sys.modules if m.split(".")[0] == "cryptography")}))
"""


def _serve_a_literal_key(tmp_path: Path, mode: str) -> tuple[str, list[str]]:
    seen = fresh_interpreter(_SCRIPT, str(tmp_path), mode, home=tmp_path)
    return seen["authorization"], seen["cryptography"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the libcrypto binding is Linux-only")
def test_a_literal_key_is_stored_and_used_without_importing_cryptography(tmp_path: Path) -> None:
    authorization, imported = _serve_a_literal_key(tmp_path, "native")
    assert authorization == "Bearer sk-literal-Zq8Wm3"
    assert imported == []


def test_the_fallback_imports_cryptography_and_serves_the_same(tmp_path: Path) -> None:
    """The check above can fail: with the libcrypto path refused, the same script imports it."""
    authorization, imported = _serve_a_literal_key(tmp_path, "fallback")
    assert authorization == "Bearer sk-literal-Zq8Wm3"
    assert "cryptography.fernet" in imported
