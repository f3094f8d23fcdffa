"""The golden files themselves: scenarios parse, and each provider has one well-framed answer per scenario."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

GOLDEN = Path(__file__).parent
SCENARIOS = sorted(p.stem for p in (GOLDEN / "scenarios").glob("*.yaml"))
CAPABILITIES = {"tools", "vision", "reasoning", "json_schema", "streaming"}
# Each provider's backend.yaml says how it frames streams and which scenarios do not apply to it.
BACKENDS = {
    p.parent.name: yaml.safe_load(p.read_text()) for p in sorted((GOLDEN / "fixtures").glob("*/backend.yaml"))
}
FRAMING = {name: spec["framing"] for name, spec in BACKENDS.items()}


def load_scenario(name: str) -> dict[str, Any]:
    data = yaml.safe_load((GOLDEN / "scenarios" / f"{name}.yaml").read_text())
    assert isinstance(data, dict)
    return data


def parse_ndjson(text: str) -> list[dict[str, Any]]:
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def parse_sse(text: str) -> list[Any]:
    """Each event is `event:` (optional) and `data:` lines then a blank line; `[DONE]` stays a string."""
    assert text.endswith("\n\n")
    events: list[Any] = []
    for block in text.split("\n\n")[:-1]:
        lines = block.split("\n")
        assert all(line.startswith(("data: ", "event: ", ":")) for line in lines), block
        payload = "\n".join(line.removeprefix("data: ") for line in lines if line.startswith("data: "))
        if payload:
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def fixture_for(provider: str, name: str) -> Path:
    found = [p for p in (GOLDEN / "fixtures" / provider).glob(f"{name}.*") if p.name.split(".")[0] == name]
    assert len(found) == 1, f"{provider}/{name}: expected one fixture, found {found}"
    return found[0]


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_shape(name: str) -> None:
    data = load_scenario(name)
    assert set(data) == {"description", "needs", "request"}
    assert set(data["needs"]) <= CAPABILITIES
    assert data["request"]["model"] == "test-alias"
    assert data["request"]["messages"]
    assert ("streaming" in data["needs"]) == bool(data["request"].get("stream"))


@pytest.mark.parametrize("provider", sorted(FRAMING))
@pytest.mark.parametrize("name", SCENARIOS)
def test_fixture_kind_and_framing(provider: str, name: str) -> None:
    spec = BACKENDS[provider]
    if name in (spec.get("not_applicable") or {}) or name in (spec.get("refused") or {}):
        assert not list((GOLDEN / "fixtures" / provider).glob(f"{name}.*")), (
            "a fixture for a scenario said not to apply, or refused before any upstream call"
        )
        return
    request = load_scenario(name)["request"]
    path = fixture_for(provider, name)
    kind = path.name.removeprefix(f"{name}.")
    if name.startswith("error_") and name != "error_midstream":
        assert kind == "error.json"
        error = json.loads(path.read_text())
        assert set(error) == {"status", "headers", "body"}
        code = name.removeprefix("error_")
        assert error["status"] == int(code) if code.isdigit() else 400 <= error["status"] < 500
        body = error["body"]  # providers shape errors differently: {"error": ...}, {"object": "error", ...}
        assert "error" in body or body.get("object") == "error" or "message" in body or "detail" in body
        if error["status"] == 429:
            in_body = BACKENDS[provider].get("retry_after_in_body")  # why there is no header, if so
            assert "retry-after" in error["headers"] or in_body
    elif request.get("stream"):
        assert kind == "stream.txt"
        parse = parse_ndjson if FRAMING[provider] == "ndjson" else parse_sse
        if FRAMING[provider] == "sse-events":  # e.g. an error line in an event-typed stream
            parse = parse_sse
        events = parse(path.read_text())
        assert len(events) >= 2
        if name == "error_midstream":
            last = events[-1]
            assert isinstance(last, dict)
            ended_in_error = "error" in last or last.get("type") == "error"
            finish = [c.get("finish_reason") for c in last.get("choices") or []]
            assert (
                ended_in_error or "error" in finish
            )  # some servers end a failed stream with finish_reason error
    else:
        assert kind == "response.json"
        assert isinstance(json.loads(path.read_text()), dict)


@pytest.mark.parametrize("name", ["tools", "tool_choice", "parallel_tools"])
def test_tool_scenarios_answer_with_calls(name: str) -> None:
    wanted = 2 if name == "parallel_tools" else 1
    ollama = json.loads(fixture_for("ollama", name).read_text())
    openai = json.loads(fixture_for("openai", name).read_text())
    assert len(ollama["message"]["tool_calls"]) == wanted
    assert len(openai["choices"][0]["message"]["tool_calls"]) == wanted
    assert openai["choices"][0]["finish_reason"] == "tool_calls"
