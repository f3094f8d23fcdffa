"""`turnout mappings check` beyond loading: misspelt keys, Jinja statements and wrong filter arities,
each at its file:line, as errors or (where the checker cannot be sure) warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.mapping.checks import Report, check_mappings
from engine.mapping.checks.vocabulary import DEPLOYMENT_KEYS
from engine.routing.table import Deployment
from engine.routing.view import deployment_view
from engine.settings import project_path

# every line is numbered by the tests through _line(): keep each probe on a line of its own
PROVIDER = """\
name: toy
operations:
  chat:
    url: "{{ deployment.api_base }}/chat"
    params:
      supported: [model, messages, stream, stream_options, temperature, max_tokens, max_completion_tokens]
      dropped: [top_p, n, stop, seed, presence_penalty, frequency_penalty, logit_bias, logprobs,
                top_logprobs, user, tools, tool_choice, parallel_tool_calls, response_format,
                reasoning_effort, think, metadata, store, service_tier, modalities, audio, prediction,
                web_search_options, functions, function_call]
      other: reject
    request:
      model: "{{ deployment.model }}"
      heat: "{{ request.temperature }}"
      prompt: "{{ request.messages | map_attribute('content') | join(' ') }}"
    response:
      id: "{{ response.answer.id }}"
      object: chat.completion
      created: "{{ response.answer.created }}"
      model: "{{ response.answer.model }}"
      choices: [{index: 0, message: {content: "{{ response.answer.text }}"}, finish_reason: stop}]
    stream:
      framing: ndjson
      start: {n: 0}
      update: {n: "{{ state.n + 1 }}"}
      done: "{{ event.end }}"
      event: {object: chat.completion.chunk, choices: [{index: 0, delta: {content: "{{ event.text }}"}}]}
errors:
  message: "{{ body.error or text }}"
"""


def _check(tmp_path: Path, provider: str = PROVIDER, dialect: str | None = None) -> Report:
    (tmp_path / "providers").mkdir(exist_ok=True)
    (tmp_path / "providers" / "toy.yaml").write_text(provider)
    if dialect is not None:
        (tmp_path / "dialects").mkdir(exist_ok=True)
        (tmp_path / "dialects" / "talk.yaml").write_text(dialect)
    return check_mappings(tmp_path)


def _line(text: str, fragment: str) -> int:
    (number,) = [n for n, line in enumerate(text.splitlines(), start=1) if fragment in line]
    return number


def _edit(old: str, new: str, text: str = PROVIDER) -> str:
    assert text.count(old) == 1
    return text.replace(old, new)


def test_the_toy_and_the_bundled_mappings_are_clean(tmp_path: Path) -> None:
    assert _check(tmp_path).lines() == []
    bundled = check_mappings(project_path("mappings"))
    assert bundled.errors == 0, bundled.lines()
    assert bundled.warnings == 0, bundled.lines()


def test_a_misspelt_canonical_parameter_is_an_error_at_its_line(tmp_path: Path) -> None:
    text = _edit("request.temperature", "request.temprature")
    report = _check(tmp_path, text)
    file = tmp_path / "providers" / "toy.yaml"
    assert report.lines() == [
        f"{file}:{_line(text, 'temprature')}: error: request.temprature: 'temprature' is not a chat "
        "parameter this operation lets through; did you mean 'temperature'?"
    ]
    assert (report.errors, report.warnings) == (1, 0)


def test_other_pass_makes_an_unknown_parameter_a_warning_and_only_when_one_is_close(tmp_path: Path) -> None:
    text = _edit("other: reject", "other: pass", _edit("request.temperature", "request.temprature"))
    text = _edit('prompt: "{{', 'tag: "{{ request.my_own_tag }}"\n      prompt: "{{', text)
    report = _check(tmp_path, text)
    assert [line.split(": ", 2)[1] for line in report.lines()] == ["warning"]  # my_own_tag: nothing close
    assert "did you mean 'temperature'?" in report.lines()[0]


def test_reading_a_parameter_the_params_drop_is_a_warning(tmp_path: Path) -> None:
    text = _edit('heat: "{{ request.temperature }}"', 'heat: "{{ request.top_p }}"')
    (line,) = _check(tmp_path, text).lines()
    assert line.endswith(f":{_line(text, 'request.top_p')}: warning: request.top_p is always absent here: "
                         "this operation's params drop it")  # fmt: skip


def test_deployment_fields_and_stream_state_are_closed(tmp_path: Path) -> None:
    text = _edit("{{ deployment.model }}", "{{ deployment.modle }}")
    text = _edit('done: "{{ event.end }}"', 'done: "{{ event.end and state.count > 3 }}"', text)
    messages = [line.split(": error: ", 1)[1] for line in _check(tmp_path, text).lines()]
    assert messages == [
        "deployment.modle: 'modle' is not a deployment field; did you mean 'model'?",
        "state.count: 'count' is not set by this stream's start or update",
    ]


def test_what_mappings_see_of_a_deployment_is_what_the_checker_knows() -> None:
    assert set(deployment_view(Deployment(1, "a", "p", "m"))) == DEPLOYMENT_KEYS


def test_jinja_statements_are_an_error_wherever_they_are(tmp_path: Path) -> None:
    text = _edit(
        "object: chat.completion\n",
        'object: chat.completion\n      note: "{% if response.x %}yes{% endif %} {{ response.answer.id }}"\n',
    )
    (line,) = _check(tmp_path, text).lines()
    assert f":{_line(text, '{% if')}: error: Jinja statements" in line
    assert "would be sent as written" in line


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("join(' ', 2)", "filter 'join' called with 2 argument(s); it takes join(sep='')"),
        ("replace('a')", "filter 'replace' called with 1 argument(s); it takes replace(old, new)"),
        ("map('replace', 'a')", "filter 'replace' called through map with 1 argument(s)"),
        ("map('no_such')", "map names no filter 'no_such'"),
        ("selectattr('role', 'equals', 'user')", "selectattr takes one of the tests"),
        ("default(1, if_none=True)", "and if_none=; it takes default(fallback='', if_null=True)"),
    ],
)  # fmt: skip
def test_filters_are_held_to_their_signatures(tmp_path: Path, call: str, message: str) -> None:
    text = _edit("| join(' ') }}", f"| {call} }}}}")
    (line,) = _check(tmp_path, text).lines()
    assert f":{_line(text, call)}: error: " in line
    assert message in line


def test_tests_and_functions_too(tmp_path: Path) -> None:
    text = _edit("{{ response.answer.id }}", "{{ uuid(8) if response.answer is mapping(1) else none }}")
    messages = sorted(line.split(": error: ", 1)[1] for line in _check(tmp_path, text).lines())
    assert messages == [
        "function 'uuid' called with 1 argument(s); it takes uuid with no arguments",
        "test 'mapping' called with 1 argument(s); it takes mapping with no arguments",
    ]


def test_a_key_read_once_beside_one_read_elsewhere_is_a_warning(tmp_path: Path) -> None:
    text = _edit("{{ response.answer.model }}", "{{ response.answr.model }}")
    (line,) = _check(tmp_path, text).lines()
    assert line.endswith(
        f":{_line(text, 'answr')}: warning: response.answr: 'answr' is read only here; "
        "did you mean 'answer'? (read elsewhere)"
    )


def test_local_names_hide_the_variables(tmp_path: Path) -> None:
    text = _edit(
        "      prompt:",
        "      turns:\n        $for: request.messages\n        $as: request\n"
        "        $do: '{{ request.role }}'\n      prompt:",
    )
    assert _check(tmp_path, text).lines() == []


DIALECT = """\
paths: [/talk]
operation: chat
schema:
  type: object
  properties:
    bot: {type: string}
    say: {type: string}
request:
  model: "{{ request.bot }}"
  messages: [{role: user, content: "{{ request.say }}"}]
response:
  text: "{{ response.choices[0].message.content }}"
error:
  problem: "{{ error.message }}"
"""


def test_dialects_are_held_to_their_schema_and_the_canonical_answer(tmp_path: Path) -> None:
    text = _edit("{{ request.say }}", "{{ request.sya }}", DIALECT)
    text = _edit("{{ response.choices", "{{ response.choice", text)
    text = _edit("{{ error.message }}", "{{ error.mesage }}", text)
    file = tmp_path / "dialects" / "talk.yaml"
    assert _check(tmp_path, dialect=text).lines() == [
        f"{file}:{_line(text, 'sya')}: warning: request.sya: 'sya' is not a field of the talk dialect's "
        "request schema; did you mean 'say'?",
        f"{file}:{_line(text, 'choice[')}: warning: response.choice: 'choice' is not a field of a canonical "
        "chat answer; did you mean 'choices'?",
        f"{file}:{_line(text, 'mesage')}: error: error.mesage: 'mesage' is not a field of an error; did you "
        "mean 'message'?",
    ]


def test_load_errors_come_first_and_count_as_errors(tmp_path: Path) -> None:
    report = _check(tmp_path, _edit("other: reject", "other: maybe"))
    (line,) = report.lines()
    where = f"{tmp_path / 'providers' / 'toy.yaml'}:{_line(PROVIDER, 'other:')}"
    assert line == f"{where}: error: `other` must be one of pass, drop, reject"
    assert report.errors == 1


def test_an_inherited_section_is_read_against_the_overlays_params_and_says_so(tmp_path: Path) -> None:
    params = PROVIDER.split("    params:\n", 1)[1].split("      other:", 1)[0]
    params = params.replace("temperature, ", "").replace("dropped: [", "dropped: [temperature, ")
    overlay = f"extends: toy\nname: tiny\noperations:\n  chat:\n    params:\n{params}"
    (tmp_path / "providers").mkdir()
    (tmp_path / "providers" / "tiny.yaml").write_text(overlay)
    (line,) = _check(tmp_path).lines()
    assert line == (
        f"{tmp_path / 'providers' / 'toy.yaml'}:{_line(PROVIDER, 'request.temperature')}: warning: "
        "request.temperature is always absent here: this operation's params drop it (in tiny, which extends "
        "this file)"
    )
