"""The mapping language: leaves, absence, constructs, sandboxing and file:line errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from engine.mapping.compiler import MappingLoadError, authoring, compile_section
from engine.mapping.runtime import MISSING, MappingRuntimeError
from engine.mapping.yaml_lines import load_yaml


def section(tmp_path: Path, text: str, variables: tuple[str, ...] = ("request",)) -> Any:
    path = tmp_path / "m.yaml"
    path.write_text("section:\n" + "\n".join("  " + line for line in text.strip("\n").splitlines()) + "\n")
    tree = load_yaml(path)
    return compile_section(tree["section"], variables, str(path), tree.key_lines["section"])


def test_leaves_are_native_values_literals_and_interpolations(tmp_path: Path) -> None:
    s = section(tmp_path, 'n: "{{ request.n + 1 }}"\nlit: plain text\nmix: "id-{{ request.n }}"\nflag: true')
    assert s({"n": 1}) == {"n": 2, "lit": "plain text", "mix": "id-1", "flag": True}


def test_the_generated_python_is_kept_only_for_the_authors_tools(tmp_path: Path) -> None:
    """Serving keeps the function, not its source (`mappings show --python` compiles within `authoring`);
    a failure still names its YAML line either way."""
    text = 'n: "{{ request.n + 1 }}"\nm: "{{ request.x.upper() }}"'
    served = section(tmp_path, text)
    with authoring():
        shown = section(tmp_path, text)
    assert served.source == "" and served.sites == ()
    assert shown.source.startswith("def _section(v_request):") and shown.sites
    for compiled in (served, shown):
        with pytest.raises(MappingRuntimeError, match=r"m\.yaml:3"):
            compiled({"n": 1, "x": 2})


def test_absent_values_leave_their_key_out_but_null_stays(tmp_path: Path) -> None:
    s = section(
        tmp_path,
        'a: "{{ request.a }}"\nb: "{{ request.b }}"\nc: "{{ request.x.y.z }}"\nd: "x{{ request.a }}"',
    )
    assert s({"b": None}) == {"b": None}


def test_for_builds_lists_and_absent_source_is_absent(tmp_path: Path) -> None:
    s = section(
        tmp_path,
        """
items:
  $for: request.xs
  $as: x
  $index: i
  $where: "x != 'skip'"
  $do: "{{ i ~ ':' ~ x }}"
""",
    )
    assert s({"xs": ["a", "skip", "b"]}) == {"items": ["0:a", "2:b"]}
    assert s({}) == {}
    assert s({"xs": []}) == {"items": []}


def test_flat_for_splices_lists(tmp_path: Path) -> None:
    s = section(tmp_path, 'all:\n  $for: request.xs\n  $flat: true\n  $do: "{{ [item, item] }}"')
    assert s({"xs": [1, 2]}) == {"all": [1, 1, 2, 2]}


def test_if_switch_merge_let_literal(tmp_path: Path) -> None:
    s = section(
        tmp_path,
        """
if:
  $if: request.on
  $then: yes-branch
  $else: no-branch
switch:
  $switch: request.kind
  $cases: {a: 1, b: 2}
  $default: 0
merge:
  $merge: ["{{ request.base }}", {extra: "{{ request.kind }}"}]
let:
  $let: {twice: "{{ request.n * 2 }}"}
  $in: "{{ twice + 1 }}"
literal:
  $literal: "{{ not evaluated }}"
""",
    )
    out = s({"on": False, "kind": "b", "base": {"k": 1}, "n": 3})
    assert out == {
        "if": "no-branch",
        "switch": 2,
        "merge": {"k": 1, "extra": "b"},
        "let": 7,
        "literal": "{{ not evaluated }}",
    }


def test_filters_and_tests(tmp_path: Path) -> None:
    s = section(
        tmp_path,
        """
text: "{{ request.content | text }}"
images: "{{ request.content | image_urls | map('data_url_base64') }}"
json: "{{ request.obj | tojson }}"
back: "{{ '{\\"a\\": 1}' | fromjson }}"
defaulted: "{{ request.missing | default('d') }}"
defined: "{{ request.missing is defined }}"
name: "{{ request.messages | tool_call_name('c1') }}"
""",
    )
    request = {
        "content": [
            {"type": "text", "text": "hi"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD"}},
        ],
        "obj": {"b": [1, 2]},
        "messages": [{"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "f"}}]}],
    }
    assert s(request) == {
        "text": "hi",
        "images": ["QUJD"],
        "json": '{"b":[1,2]}',
        "back": {"a": 1},
        "defaulted": "d",
        "defined": False,
        "name": "f",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('x: "{{ nothing }}"', "unknown name 'nothing'"),
        ('x: "{{ request | nofilter }}"', "unknown filter 'nofilter'"),
        ('x: "{{ request is weird }}"', "unknown test 'weird'"),
        ('x: "{{ open() }}"', "unknown function 'open'"),
        ('x: "{{ request. }}"', "invalid expression"),
        ("x:\n  $for: request\n  extra: 1", "'extra' beside a $for construct"),
        ("x:\n  $switch: request\n  $cases:\n    a: 1\n    $default: 2", "belongs beside"),
    ],
)
def test_load_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(MappingLoadError, match=r"m\.yaml:\d+: .*" + re.escape(message)):
        section(tmp_path, "ok: 1\n" + text)


def test_a_misspelt_construct_key_is_blamed_at_its_own_line_with_the_allowed_keys(tmp_path: Path) -> None:
    with pytest.raises(MappingLoadError) as caught:
        section(tmp_path, "x:\n  $switch: request.kind\n  $cases: {a: 1}\n  $defualt: 2")
    assert str(caught.value) == (
        f"{tmp_path / 'm.yaml'}:5: unknown key '$defualt' in a $switch construct; did you mean '$default'? "
        "(allowed: $switch, $cases, $default)"
    )


def test_an_unknown_name_is_told_the_names_in_scope(tmp_path: Path) -> None:
    with pytest.raises(
        MappingLoadError,
        match=re.escape(
            "unknown name 'requst'; did you mean 'request'? (this section has: request, item, index)"
        ),
    ):
        section(tmp_path, "x:\n  $for: request.xs\n  $do: '{{ requst.a }}'")


def test_too_deep_a_section_is_the_mappings_load_error(tmp_path: Path) -> None:
    deep: Any = 1
    for _ in range(300):
        deep = [deep]
    with pytest.raises(MappingLoadError, match="nested too deeply"):
        compile_section(deep, ("request",), "deep.yaml", 1)


def test_runtime_errors_name_the_yaml_line(tmp_path: Path) -> None:
    s = section(tmp_path, 'fine: "{{ request.n }}"\nbroken: "{{ request.n + \'text\' }}"')
    with pytest.raises(MappingRuntimeError, match=r"m\.yaml:3: TypeError"):
        s({"n": 1})


def test_sandbox_refuses_private_attributes_and_mutation(tmp_path: Path) -> None:
    s = section(tmp_path, 'x: "{{ request.__class__ }}"')
    assert s({}) == {}  # a dict lookup, never Python internals
    escape = section(tmp_path, "x: \"{{ ''.__class__ }}\"")
    assert escape({}) == {}  # the sandbox hides unsafe attributes: absent, not the class
    mutate = section(tmp_path, 'x: "{{ request.xs.append(1) }}"')
    with pytest.raises(MappingRuntimeError, match="modify"):
        mutate({"xs": []})


def test_missing_is_a_falsy_singleton() -> None:
    assert not MISSING
    assert list(MISSING) == []
