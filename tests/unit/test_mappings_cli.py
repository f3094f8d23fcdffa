"""`turnout mappings check | show | eval` through the command's own entry point (in-process)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main
from engine.settings import project_path
from tests.unit.test_mapping_checks import PROVIDER

OLLAMA_STREAM = Path(__file__).parents[1] / "golden" / "fixtures" / "ollama" / "stream_text.stream.txt"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["mappings", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _folder(tmp_path: Path, provider: str = PROVIDER) -> Path:
    (tmp_path / "providers").mkdir()
    (tmp_path / "providers" / "toy.yaml").write_text(provider)
    return tmp_path


def _input(tmp_path: Path, value: Any) -> str:
    path = tmp_path / "input.json"
    path.write_text(json.dumps(value))
    return str(path)


def test_check_fails_on_errors_and_counts_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _folder(tmp_path, PROVIDER.replace("request.temperature", "request.temprature"))
    code, out, err = _run(capsys, "check", "--dir", str(folder))
    assert code == 1
    assert "toy.yaml:14: error: request.temprature" in err
    assert out == f"1 provider mappings and 0 dialect mappings in {folder}: 1 error(s), 0 warning(s)\n"


def test_check_passes_with_warnings_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _folder(tmp_path, PROVIDER.replace("request.temperature", "request.top_p"))
    code, out, err = _run(capsys, "check", "--dir", str(folder))
    assert code == 0
    assert "toy.yaml:14: warning: request.top_p is always absent here" in err
    assert out.endswith(": valid, with 1 warning(s)\n")


def test_a_yaml_syntax_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _folder(tmp_path, "name: toy\noperations:\n  chat: [\n    a: 1\n")
    code, _, err = _run(capsys, "check", "--dir", str(folder))
    assert code == 1
    [line] = err.splitlines()
    assert line.startswith(f"{folder / 'providers' / 'toy.yaml'}:5: error: not valid YAML: did not find")
    assert line.endswith("(while parsing a flow sequence at line 3)")


def test_show_prints_the_section_after_extends(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "show", "groq", "chat", "url")
    assert (code, err) == (0, "")
    heading, variables, body = out.splitlines()
    assert heading.startswith("# groq chat url, from ") and "providers/openai.yaml:" in heading  # inherited
    assert variables == "# (request, deployment) -> the upstream URL"
    assert body == "'{{ deployment.api_base }}/chat/completions'"


def test_show_python_prints_the_generated_function(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "show", "ollama", "chat", "request", "--python")
    assert code == 0
    assert "def _section(v_request, v_deployment):" in out
    assert "# L" in out  # each expression marked with its YAML line


def test_show_without_a_section_lists_them(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "show", "ollama", "chat")
    assert (code, out) == (1, "")
    assert err == (
        "turnout: ollama chat has the sections: url, headers, request, response, stream, stream.start, "
        "stream.event, stream.error\n"
    )


def test_eval_runs_a_request_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    given = {"request": {"model": "x", "messages": [{"role": "user", "content": "Hi"}], "temperature": 0.5}}
    code, out, err = _run(capsys, "eval", "ollama", "chat", "request", "--input", _input(tmp_path, given))
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "model": "upstream-model",  # the placeholder deployment, as no `deployment` was given
        "stream": False,
        "messages": [{"role": "user", "content": "Hi"}],
        "options": {"temperature": 0.5},
    }


def test_eval_runs_a_stream_event_by_event(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = [json.loads(line) for line in OLLAMA_STREAM.read_text().splitlines() if line.strip()]
    given = {"request": {"model": "x", "stream": True}, "deployment": {"model": "qwen"}, "events": events}
    code, out, err = _run(capsys, "eval", "ollama", "chat", "stream", "--input", _input(tmp_path, given))
    assert (code, err) == (0, "")
    steps = json.loads(out)
    assert [step["event"] for step in steps] == list(range(len(events)))
    text = "".join(
        c["choices"][0]["delta"].get("content") or "" for s in steps for c in s["chunks"] if c["choices"]
    )
    assert text == "".join(e["message"]["content"] for e in events)
    assert [step["done"] for step in steps] == [False] * (len(events) - 1) + [True]
    # each chunk as the gateway sends it: laid over the stream's `envelope` (id, object, created, model)
    chunks = [c for s in steps for c in s["chunks"]]
    assert chunks and all(
        c["object"] == "chat.completion.chunk" and c["model"] == events[0]["model"] for c in chunks
    )
    assert {c["id"] for c in chunks} == {steps[0]["state"]["id"]}


def test_eval_runs_the_errors_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    given = {"status": 404, "body": {"error": "model 'x' not found"}, "text": "", "headers": {}}
    code, out, _ = _run(capsys, "eval", "ollama", "errors", "--input", _input(tmp_path, given))
    assert code == 0
    assert json.loads(out)["message"] == "model 'x' not found"


@pytest.mark.parametrize(
    ("argv", "given", "message"),
    [
        (["nope", "chat", "request"], {}, "turnout: no provider mapping named 'nope' in "),
        (["ollama", "rerank", "request"], {}, "turnout: ollama has no operation 'rerank' (it has: chat, "),
        (["ollama", "chat", "reply"], {}, "turnout: ollama chat has no section 'reply'; it has: url, "),
        (["ollama", "chat", "request"], "not json", "not valid JSON"),
        (["ollama", "chat", "request"], [1], "turnout: the input must be a JSON object"),
        (["ollama", "chat", "stream"], {"events": 3}, "turnout: a stream's input needs `events`"),
        (["ollama", "chat", "request"], {"request": {"messages": 5}}, "ollama.yaml:"),
    ],
)
def test_eval_failures_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], given: Any, message: str
) -> None:
    path = tmp_path / "input.json"
    path.write_text(given if isinstance(given, str) else json.dumps(given))
    code, out, err = _run(capsys, "eval", *argv, "--input", str(path))
    assert (code, out) == (1, "")
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_broken_provider_file_is_said_by_its_load_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "mappings"
    shutil.copytree(project_path("mappings"), folder)
    (folder / "providers" / "toy.yaml").write_text(PROVIDER.replace("other: reject", "other: maybe"))
    code, _, err = _run(capsys, "show", "toy", "chat", "request", "--dir", str(folder))
    assert code == 1
    assert err.startswith(f"turnout: {folder / 'providers' / 'toy.yaml'}:11: `other` must be one of")


def test_eval_reads_a_stream_as_the_upstream_sends_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    anthropic = OLLAMA_STREAM.parents[1] / "anthropic" / "stream_text.stream.txt"  # SSE with event names
    given = _input(tmp_path, {"request": {"model": "x", "stream": True}})
    code, out, err = _run(
        capsys, "eval", "anthropic", "chat", "stream", "--input", given, "--stream", str(anthropic)
    )
    assert (code, err) == (0, "")
    steps = json.loads(out)
    assert [step["done"] for step in steps][-1] is True
    finish = [c["choices"][0]["finish_reason"] for s in steps for c in s["chunks"] if c["choices"]]
    assert finish[-1] == "stop"
    code, out, _ = _run(capsys, "eval", "ollama", "chat", "stream", "--stream", str(OLLAMA_STREAM))
    assert code == 0 and json.loads(out)[-1]["done"] is True  # without --input: an empty request
    code, _, err = _run(capsys, "eval", "ollama", "chat", "request")
    assert (code, err) == (1, "turnout: eval needs --input FILE.json (or, for a stream, --stream FILE)\n")
