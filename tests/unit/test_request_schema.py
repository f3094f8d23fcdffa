"""Dialect request schemas (engine.mapping.schema): what the subset accepts, the messages and paths of
what it refuses, and load errors that name file:line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.mapping.compiler import MappingLoadError
from engine.mapping.dialects import check_dialects
from engine.mapping.schema import BodySchema, SchemaViolation, compile_schemas
from engine.mapping.tree import load_mapping_file

BLOCKS = """
schema:
  type: object
  required: [model, items]
  properties:
    model: {type: string, minLength: 1, maxLength: 8}
    count: {type: [integer, null], minimum: 1, maximum: 10}
    ratio: {type: number, minimum: 0, maximum: 1}
    flag: {enum: [true, 1, "one"]}
    items: {type: array, maxItems: 3, items: {$ref: "#/$defs/item"}}
    tree: {$ref: "#/$defs/tree"}
    strict: {type: object, additionalProperties: false, properties: {a: {type: string}}}
    labels: {type: object, additionalProperties: {type: string}}
    anything: {}
  $defs:
    item:
      anyOf:
        - {type: string}
        - type: object
          required: [text]
          properties: {type: {const: text}, text: {type: string}}
        - type: object
          required: [type, url]
          properties: {type: {const: image}, url: {type: string}}
    tree:
      type: object
      properties: {children: {type: array, items: {$ref: "#/$defs/tree"}}}
"""


def _schemas(tmp_path: Path, text: str) -> dict[str, BodySchema]:
    path = tmp_path / "dialect.yaml"
    path.write_text(text)
    tree = load_mapping_file(path)
    return compile_schemas(tree["schema"], tree, {})


@pytest.fixture
def check(tmp_path: Path) -> Any:
    return _schemas(tmp_path, BLOCKS)[""].check


def _refused(check: Any, body: Any) -> str:
    with pytest.raises(SchemaViolation) as caught:
        check(body)
    return str(caught.value)


GOOD = {"model": "m", "items": ["a", {"text": "t"}, {"type": "image", "url": "u"}]}


def test_a_body_that_fits_passes(check: Any) -> None:
    check(GOOD)
    check({**GOOD, "count": None, "ratio": 1, "flag": 1, "anything": [{"x": None}], "unknown": {"a": 1}})
    check({**GOOD, "tree": {"children": [{"children": [{}]}]}, "labels": {"a": "b"}, "strict": {"a": "x"}})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": 5}, "model: must be a string; got 5"),
        ({"model": ""}, "model: must have at least 1 character(s)"),
        ({"model": "123456789"}, "model: must have at most 8 character(s)"),
        ({"count": 1.5}, "count: must be an integer or null; got 1.5"),
        ({"count": True}, "count: must be an integer or null; got True"),
        ({"count": 11}, "count: must be at most 10; got 11"),
        ({"ratio": 2**64}, "ratio: must be a number that fits in 64 bits"),
        ({"ratio": "0.5"}, "ratio: must be a number; got '0.5'"),
        ({"flag": False}, "flag: must be one of True, 1, 'one'; got False"),
        ({"flag": "two"}, "flag: must be one of True, 1, 'one'; got 'two'"),
        ({"flag": {"a": 1}}, "flag: must be one of True, 1, 'one'; got an object"),
        ({"flag": [1]}, "flag: must be one of True, 1, 'one'; got an array"),
        ({"items": "a"}, "items: must be an array; got 'a'"),
        ({"items": ["a"] * 4}, "items: must have at most 3 item(s)"),
        ({"items": [5]}, "items[0]: must be an object or a string; got 5"),
        ({"items": ["a", {"type": "video"}]}, "items[1].type: must be one of 'text', 'image'; got 'video'"),
        ({"items": [{"type": "image"}]}, "items[0].url: is required"),
        ({"items": [{}]}, "items[0].text: is required"),
        ({"tree": {"children": [{"children": 5}]}}, "tree.children[0].children: must be an array; got 5"),
        ({"strict": {"b": 1}}, "strict.b: is not a known field"),
        ({"labels": {"a": 1}}, "labels.a: must be a string; got 1"),
    ],
)
def test_a_body_that_does_not_fit_is_refused_by_path(
    check: Any, change: dict[str, Any], message: str
) -> None:
    assert _refused(check, {**GOOD, **change}) == message


def test_the_body_itself_and_required_fields(check: Any) -> None:
    assert _refused(check, [GOOD]) == "the body must be an object; got an array"
    assert _refused(check, {"model": "m"}) == "items: is required"
    with pytest.raises(SchemaViolation) as caught:
        check({**GOOD, "items": [{"type": "image"}]})
    assert caught.value.param == "items[0].url"


@pytest.mark.parametrize(
    ("schema", "complaint"),
    [
        ("{type: objekt}", "`type` must be one or a list of"),
        ("{type: string, pattern: 'a+'}", "schema keyword 'pattern' is not supported"),
        ("{type: string, items: {type: string}}", "schema keyword 'items' is not supported"),
        ("{properties: {a: {type: string}}}", "a schema needs `type`"),
        ("{$ref: '#/$defs/nothing'}", "`$ref` must be '#/$defs/<name>'"),
        ("{anyOf: [{type: string}, {type: string, maxLength: 3}]}", "2 alternatives of type string"),
        ("{anyOf: [{type: integer}, {type: number}]}", "integer and number"),
        ("{anyOf: [{type: object}, {type: object}]}", "need a property that each fixes"),
        (
            "{anyOf: [{type: object, properties: {t: {const: a}}},"
            " {type: object, properties: {t: {const: b}}}]}",
            "only one `anyOf` alternative may leave 't' out",
        ),
        ("{type: array, minItems: -1}", "`minItems` must be a whole number"),
        ("{enum: []}", "`enum` must be a non-empty list"),
    ],
)
def test_a_schema_outside_the_subset_is_a_load_error(tmp_path: Path, schema: str, complaint: str) -> None:
    with pytest.raises(MappingLoadError) as caught:
        _schemas(tmp_path, f"schema: {schema}\n")
    assert complaint in str(caught.value)
    assert str(caught.value).startswith(f"{tmp_path / 'dialect.yaml'}:1: ")


def test_mappings_check_reports_a_bad_schema_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "dialects").mkdir()
    (tmp_path / "dialects" / "toy.yaml").write_text(
        "paths: [/toy]\noperation: chat\nrequest: {}\nresponse: {}\nerror: {}\n"
        "schema:\n  type: object\n  properties:\n    a: {type: text}\n"
    )
    (problem,) = check_dialects(tmp_path)
    assert problem.endswith(
        "toy.yaml:9: `type` must be one or a list of array, boolean, integer, null, number, object, string"
    )


def test_local_routes_share_the_dialect_defs(tmp_path: Path) -> None:
    (tmp_path / "dialects").mkdir()
    (tmp_path / "dialects" / "toy.yaml").write_text(
        "paths: [/toy]\noperation: chat\nrequest: {}\nresponse: {}\nerror: {}\n"
        "local_routes:\n  count:\n    paths: [/toy/count]\n    response: {n: 1}\n"
        "    schema: {type: object, properties: {q: {$ref: '#/$defs/q'}}}\n"
        "schema: {type: object, $defs: {q: {type: string}}}\n"
    )
    from engine.mapping.dialects import load_dialects

    (route,) = load_dialects(tmp_path)["toy"].local_routes
    assert route.schema is not None
    route.schema.check({"q": "x"})
    with pytest.raises(SchemaViolation):
        route.schema.check({"q": 5})
    assert route.schema.document["$defs"] == {"q": {"type": "string"}}


def test_the_readme_example_schema_compiles_and_checks(tmp_path: Path) -> None:
    from engine.settings import project_path

    readme = (project_path("mappings") / "README.md").read_text()
    section = readme.split("### Request schemas", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    check = _schemas(tmp_path, block)[""].check
    check(
        {
            "bot": "b",
            "question": "q",
            "attachments": [{"kind": "link", "url": "u"}, {"kind": "inline", "data": ""}],
        }
    )
    assert _refused(check, {"bot": "b", "question": "q", "attachments": [{"kind": "file"}]}) == (
        "attachments[0].kind: must be one of 'link', 'inline'; got 'file'"
    )


def test_an_anyof_of_objects_alone_checks_the_type(tmp_path: Path) -> None:
    schema = (
        "schema:\n  anyOf:\n    - {type: object, required: [t], properties: {t: {const: a}}}\n"
        "    - {type: object, required: [t], properties: {t: {const: b}}}\n"
    )
    check = _schemas(tmp_path, schema)[""].check
    check({"t": "a"})
    assert _refused(check, 5) == "the body must be an object; got 5"
    assert _refused(check, {"t": "c"}) == "t: must be one of 'a', 'b'; got 'c'"
