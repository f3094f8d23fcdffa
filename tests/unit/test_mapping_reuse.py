"""Naming and reuse in the mapping language: sequential `$let`, fragments (`$use`), overlays that extend
a construct (`$replace` to opt out), and the errors each gives when misused, at the right line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.mapping.compiler import MappingLoadError, authoring
from engine.mapping.dialects import load_dialects
from engine.mapping.loader import check_folder, load_registry
from engine.mapping.runtime import MappingRuntimeError
from engine.mapping.tree import compile_key, load_mapping_file, using_fragments

DEPLOYMENT = {"model": "m-1", "api_base": "http://up"}


def compiled(tmp_path: Path, text: str, key: str = "section") -> Any:
    """Section `key` of a mapping file written from `text`, with that file's `fragments` in reach."""
    path = tmp_path / "m.yaml"
    path.write_text(text)
    tree = load_mapping_file(path)
    # as `turnout mappings check` does; keeping the generated Python, which some tests read
    with using_fragments(tree, refuse_unused=True), authoring():
        return compile_key(tree, key, ("request",))


def load_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(MappingLoadError) as caught:
        compiled(tmp_path, text)
    return str(caught.value)


# --- sequential $let


def test_a_let_binding_sees_the_bindings_before_it(tmp_path: Path) -> None:
    s = compiled(
        tmp_path,
        """
section:
  $let:
    n: "{{ request.n }}"
    double: "{{ n * 2 }}"
    label: "n={{ n }}, twice={{ double }}"
  $in: {label: "{{ label }}", sum: "{{ n + double }}"}
""",
    )
    assert s({"n": 2}) == {"label": "n=2, twice=4", "sum": 6}


def test_a_binding_does_not_see_itself_or_later_ones(tmp_path: Path) -> None:
    s = compiled(
        tmp_path,
        """
section:
  $let: {n: "{{ request.n }}"}
  $in:
    $let: {n: "{{ n + 1 }}", m: "{{ n * 10 }}"}   # the inner n from the outer; m from the inner n
    $in: [ "{{ n }}", "{{ m }}" ]
""",
    )
    assert s({"n": 1}) == [2, 20]
    error = load_error(tmp_path, 'section:\n  $let:\n    a: "{{ b }}"\n    b: 1\n  $in: "{{ a }}"\n')
    assert "m.yaml:3: unknown name 'b' " in error  # then the names the section has


def test_independent_bindings_share_one_lambda_and_a_chain_nests(tmp_path: Path) -> None:
    independent = compiled(tmp_path, 'section:\n  $let: {a: 1, b: 2, c: 3}\n  $in: "{{ a + b + c }}"\n')
    assert independent({}) == 6 and independent.source.count("lambda") == 1
    chain = compiled(
        tmp_path, 'section:\n  $let: {a: 1, b: "{{ a }}", c: 3, d: "{{ b + c }}"}\n  $in: "{{ d }}"\n'
    )
    assert chain({}) == 4 and chain.source.count("lambda") == 3  # [a] [b, c] [d]


def test_let_names_must_be_plain_names(tmp_path: Path) -> None:
    error = load_error(tmp_path, "section:\n  $let:\n    not-a-name: 1\n  $in: 2\n")
    assert error.endswith("m.yaml:3: $let names must be plain names")


# --- fragments


FRAGMENTS = """
fragments:
  finish:                       # (reason) -> the canonical finish_reason
    $switch: reason
    $cases: {max_tokens: length, tool_use: tool_calls}
    $default: stop
  usage:                        # (u) -> canonical usage
    prompt_tokens: "{{ u.in }}"
    total_tokens: "{{ u.in + u.out }}"
    finish: {$use: finish, $with: {reason: "{{ u.why }}"}}
"""


def test_use_inserts_a_fragment_with_its_bindings(tmp_path: Path) -> None:
    s = compiled(
        tmp_path,
        FRAGMENTS
        + """
section:
  a: {$use: finish, $with: {reason: "{{ request.a }}"}}
  b:
    $let: {reason: "{{ request.b }}"}   # a fragment sees the names around its use, like code written there
    $in: {$use: finish}
  usage: {$use: usage, $with: {u: "{{ request.u }}"}}
""",
    )
    assert s({"a": "tool_use", "b": "max_tokens", "u": {"in": 1, "out": 2, "why": "x"}}) == {
        "a": "tool_calls",
        "b": "length",
        "usage": {"prompt_tokens": 1, "total_tokens": 3, "finish": "stop"},
    }


def test_a_fragment_compiles_as_if_written_in_place(tmp_path: Path) -> None:
    inline = compiled(tmp_path, 'section:\n  $let: {x: "{{ request.x }}"}\n  $in: {y: "{{ x }}"}\n')
    used = compiled(
        tmp_path, 'fragments:\n  y: {y: "{{ x }}"}\nsection:\n  $use: y\n  $with: {x: "{{ request.x }}"}\n'
    )
    assert used.source.replace("_1", "_0").count("lambda") == inline.source.count("lambda") == 1
    assert used({"x": 5}) == inline({"x": 5}) == {"y": 5}


def test_unknown_fragment_names_the_use_and_the_known_ones(tmp_path: Path) -> None:
    error = load_error(tmp_path, FRAGMENTS + "section:\n  a: {$use: finnish}\n")
    assert "m.yaml:12: $use: unknown fragment 'finnish' (this mapping's fragments: finish, usage)" in error


def test_a_fragment_that_uses_itself_is_refused(tmp_path: Path) -> None:
    error = load_error(
        tmp_path,
        "fragments:\n  a: {x: {$use: b}}\n  b: [{$use: a}]\nsection: {$use: a}\n",
    )
    assert "$use: fragment 'a' uses itself (a -> b -> a)" in error


def test_an_error_inside_a_fragment_names_its_line_and_the_use(tmp_path: Path) -> None:
    error = load_error(tmp_path, 'fragments:\n  bad:\n    x: "{{ nope }}"\nsection:\n  a: {$use: bad}\n')
    assert "m.yaml:3: unknown name 'nope' " in error  # then the names the section has
    assert error.endswith(f"(in fragment 'bad' used at {tmp_path}/m.yaml:5)")


def test_a_runtime_failure_inside_a_fragment_names_the_fragment_line(tmp_path: Path) -> None:
    s = compiled(tmp_path, 'fragments:\n  div:\n    x: "{{ 1 // request.n }}"\nsection: {$use: div}\n')
    with pytest.raises(MappingRuntimeError) as caught:
        s({"n": 0})
    assert caught.value.where.endswith("m.yaml:3")


def test_with_needs_a_mapping_and_fragments_need_plain_names(tmp_path: Path) -> None:
    assert "$with needs a mapping of names" in load_error(
        tmp_path, FRAGMENTS + "section: {$use: finish, $with: [1]}\n"
    )
    assert "`fragments` must be a mapping of plain names to trees" in load_error(
        tmp_path, "fragments: [1]\nsection: 1\n"
    )


def test_replace_outside_an_overlay_is_a_clear_error(tmp_path: Path) -> None:
    error = load_error(tmp_path, "section:\n  a:\n    $replace: 1\n")
    assert error.endswith(
        "m.yaml:3: $replace belongs in an overlay (a file that `extends` another), "
        "where it meets a parent's value"
    )


# --- overlays


BASE = """\
name: base
api_base: http://up
fragments:
  finish:
    $switch: reason
    $cases: {max_tokens: length, tool_use: tool_calls}
    $default: stop
operations:
  chat:
    url: "{{ deployment.api_base }}/chat"
    params: {supported: "*", other: drop}
    request:
      $let:
        model: "{{ deployment.model }}"
        tag: "base-{{ model }}"
      $in:
        model: "{{ model }}"
        tag: "{{ tag }}"
        kind:
          $switch: request.kind
          $cases: {a: 1, b: 2}
          $default: 0
        finish: {$use: finish, $with: {reason: "{{ request.reason }}"}}
        messages: "{{ request.messages }}"
        ratio: "{{ 1 // request.zero if request.zero is defined else omit }}"
    response: passthrough
"""


def registry(tmp_path: Path, **files: str) -> Any:
    (tmp_path / "providers").mkdir(exist_ok=True)
    for name, text in {"base": BASE, **files}.items():
        (tmp_path / "providers" / f"{name}.yaml").write_text(text)
    return load_registry(tmp_path)


def test_an_overlay_extends_a_construct_of_the_same_kind(tmp_path: Path) -> None:
    child = """\
extends: base
name: child
fragments:
  finish:
    $cases: {refusal: content_filter}   # one case more, in every use of the parent's fragment
operations:
  chat:
    request:
      $let:
        tag: "child-{{ model }}"        # one binding changed; `model` is the parent's
      $in:
        kind:
          $cases: {b: 20, c: 3}         # a case changed, a case added
        messages: null                  # a key removed
"""
    providers = registry(tmp_path, child=child).providers
    request = {"kind": "c", "reason": "refusal", "messages": []}
    assert providers["child"].operations["chat"].request(request, DEPLOYMENT) == {
        "model": "m-1",
        "tag": "child-m-1",
        "kind": 3,
        "finish": "content_filter",
    }
    assert providers["base"].operations["chat"].request(request, DEPLOYMENT) == {
        "model": "m-1",
        "tag": "base-m-1",
        "kind": 0,
        "finish": "stop",
        "messages": [],
    }


def test_replace_and_a_construct_of_another_kind_replace_whole(tmp_path: Path) -> None:
    child = """\
extends: base
name: child
operations:
  chat:
    request:
      $replace:
        $let: {only: 1}
        $in: {only: "{{ only }}"}
"""
    other_kind = """\
extends: base
name: other
operations:
  chat:
    request:
      $merge: ["{{ request }}", {model: "{{ deployment.model }}"}]
"""
    providers = registry(tmp_path, child=child, other=other_kind).providers
    assert providers["child"].operations["chat"].request({"kind": "a"}, DEPLOYMENT) == {"only": 1}
    assert providers["other"].operations["chat"].request({"kind": "a"}, DEPLOYMENT) == {
        "kind": "a",
        "model": "m-1",
    }


def test_replace_stands_alone(tmp_path: Path) -> None:
    child = "extends: base\nname: child\noperations:\n  chat:\n    request:\n      $replace: {}\n      x: 1\n"
    with pytest.raises(MappingLoadError) as caught:
        registry(tmp_path, child=child)
    assert str(caught.value).endswith(
        "child.yaml:6: $replace stands alone: `key: {$replace: <the new value>}`"
    )


def test_a_failure_names_the_file_each_part_of_a_merged_section_came_from(tmp_path: Path) -> None:
    child = """\
extends: base
name: child
operations:
  chat:
    request:
      $let:
        tag: "{{ 1 // request.none_here }}"
"""
    request = registry(tmp_path, child=child).providers["child"].operations["chat"].request
    with pytest.raises(MappingRuntimeError) as caught:
        request({"none_here": 0}, DEPLOYMENT)
    assert caught.value.where.endswith("child.yaml:7")  # the child's own binding
    with pytest.raises(MappingRuntimeError) as caught:
        request({"none_here": 1, "zero": 0}, DEPLOYMENT)
    assert caught.value.where.endswith("base.yaml:25")  # the parent's part of the merged section


def test_dialects_have_fragments_too(tmp_path: Path) -> None:
    (tmp_path / "dialects").mkdir()
    (tmp_path / "dialects" / "toy.yaml").write_text(
        """\
paths: [/toy]
operation: chat
fragments:
  text: "{{ m.content | text }}"
request:
  model: "{{ request.bot }}"
  messages:
    $for: request.turns
    $as: m
    $do: {role: user, content: {$use: text}}
response:
  said: {$let: {m: "{{ response.choices[0].message }}"}, $in: {$use: text}}
error: {problem: "{{ error.message }}"}
"""
    )
    toy = load_dialects(tmp_path)["toy"]
    assert toy.request({"bot": "b", "turns": [{"content": "hi"}]}, {}) == {
        "model": "b",
        "messages": [{"role": "user", "content": "hi"}],
    }
    assert toy.response({"choices": [{"message": {"content": "yo"}}]}, {}) == {"said": "yo"}


def test_a_fragment_never_used_is_an_error_at_its_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, "fragments:\n  used: 1\n  stray:\n    x: 2\nsection: {$use: used}\n")
    assert error.endswith("m.yaml:3: fragment 'stray' is never used (a fragment is checked where it is used)")


def test_a_base_may_write_fragments_for_the_files_that_extend_it(tmp_path: Path) -> None:
    base = BASE.replace("fragments:\n", "fragments:\n  tag_of: \"{{ 'tagged-' ~ deployment.model }}\"\n", 1)
    child = "extends: base\nname: child\noperations:\n  chat:\n    request: {$use: tag_of}\n"
    providers = registry(tmp_path, base=base, child=child).providers
    assert providers["child"].operations["chat"].request({}, DEPLOYMENT) == "tagged-m-1"
    assert check_folder(tmp_path) == []
    (tmp_path / "providers" / "child.yaml").unlink()  # no file extends base now: its stray fragment shows
    assert load_registry(tmp_path).providers["base"]  # serving tolerates it, as text never evaluated
    [problem] = check_folder(tmp_path)
    assert problem.endswith(
        "base.yaml:4: fragment 'tag_of' is never used (a fragment is checked where it is used)"
    )
