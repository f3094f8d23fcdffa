"""A client dialect needs no Python either: a made-up one, written into a temporary mappings folder,
is served on its own route, translated to and from the canonical format, streams and errors included."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx

from engine.settings import project_path
from tests.fakes import FakeUpstream
from tests.support import running_gateway

TOY = """
name: toy
description: a made-up client API
paths: [/toy/ask]
operation: chat
request:
  model: "{{ request.bot }}"
  messages: [{role: user, content: "{{ request.question }}"}]
  stream: "{{ request.live | default(false) }}"
response:
  answer: "{{ response.choices[0].message.content }}"
  tokens: "{{ response.usage.total_tokens }}"
stream:
  start: {pieces: 0}
  event:
    $if: "chunk.choices and chunk.choices[0].delta.content"
    $then: [{event: piece, data: {text: "{{ chunk.choices[0].delta.content }}", seen: "{{ state.pieces }}"}}]
  update:
    pieces: "{{ state.pieces + (1 if chunk.choices and chunk.choices[0].delta.content else 0) }}"
  end: [{event: done, data: {pieces: "{{ state.pieces }}"}}]
  error: [{event: oops, data: {why: "{{ error.message }}"}}]
error:
  problem: "{{ error.message }}"
  status: "{{ status }}"
local_routes:
  ping:
    paths: [/toy/ping]
    response: {pong: "{{ request.x }}"}
"""


def _line(content: str, done: bool = False) -> str:
    """One Ollama NDJSON line."""
    line: dict[str, object] = {
        "model": "m",
        "created_at": "2025-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": content},
        "done": done,
    }
    if done:
        line |= {"done_reason": "stop", "prompt_eval_count": 3, "eval_count": 2}
    return json.dumps(line) + "\n"


def test_a_dialect_written_as_data_is_served(tmp_path: Path) -> None:
    folder = tmp_path / "mappings"
    shutil.copytree(project_path("mappings"), folder)
    (folder / "dialects").mkdir(exist_ok=True)
    (folder / "dialects" / "toy.yaml").write_text(TOY)
    with FakeUpstream() as fake:
        config = {
            "model_list": [
                {"model_name": "buddy", "litellm_params": {"model": "ollama/m", "api_base": fake.url}}
            ]
        }
        with running_gateway(tmp_path, config, mappings_dir=folder) as gw:
            fake.add("POST", "/api/chat", stream=[_line("Hel"), _line("lo"), _line("", done=True)], times=1)
            streamed = httpx.post(gw.url + "/toy/ask", json={"bot": "buddy", "question": "hi", "live": True})
            fake.add("POST", "/api/chat", body=_line("Hello", done=True), content_type="application/json")
            answer = httpx.post(gw.url + "/toy/ask", json={"bot": "buddy", "question": "hi"})
            unknown = httpx.post(gw.url + "/toy/ask", json={"bot": "nobody", "question": "hi"})
            ping = httpx.post(gw.url + "/toy/ping", json={"x": 7})
    assert answer.json() == {"answer": "Hello", "tokens": 5}
    assert fake.last.json["messages"] == [{"role": "user", "content": "hi"}]
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert streamed.text == (
        'event: piece\ndata: {"text":"Hel","seen":0}\n\n'
        'event: piece\ndata: {"text":"lo","seen":1}\n\n'
        'event: done\ndata: {"pieces":2}\n\n'
    )
    assert unknown.status_code == 404
    assert unknown.json()["status"] == 404 and "nobody" in unknown.json()["problem"]
    assert ping.json() == {"pong": 7}
