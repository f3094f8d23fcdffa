"""The smallest end-to-end proof: the OpenAI SDK -> Turnout -> a fake Ollama, over real sockets."""

from __future__ import annotations

from pathlib import Path

from tests.fakes import FakeUpstream
from tests.support import running_gateway
from tests.support.sdk_types import openai_client


def test_chat_through_ollama_mapping(tmp_path: Path) -> None:
    with FakeUpstream() as fake:
        fake.add(
            "POST",
            "/api/chat",
            json={
                "model": "qwen3:8b",
                "created_at": "2025-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": "Hello!"},
                "done": True,
                "done_reason": "stop",
                "prompt_eval_count": 5,
                "eval_count": 2,
            },
        )
        config = {
            "model_list": [
                {"model_name": "gpt-4", "litellm_params": {"model": "ollama/qwen3:8b", "api_base": fake.url}}
            ]
        }
        with running_gateway(tmp_path, config) as gw:
            client = openai_client(gw.v1, "unused")
            answer = client.chat.completions.create(
                model="gpt-4", messages=[{"role": "user", "content": "hi"}]
            )
        assert answer.choices[0].message.content == "Hello!"
        assert answer.usage is not None and answer.usage.total_tokens == 7
        assert fake.last.json["model"] == "qwen3:8b"
        assert fake.last.json["stream"] is False
