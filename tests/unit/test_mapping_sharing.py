"""Loading the mappings compiles a section once however many providers inherit it, and parses an
expression once however often it appears; what each provider does is unchanged (the golden tests)."""

from __future__ import annotations

from pathlib import Path

from engine.mapping.compiler import authoring
from engine.mapping.expressions import parse, shared_parses
from engine.mapping.loader import load_registry
from engine.mapping.tree import compile_key, compiling_once
from engine.mapping.yaml_lines import load_yaml
from engine.settings import project_path


def test_a_provider_shares_the_sections_it_inherits_unchanged() -> None:
    registry = load_registry(project_path("mappings"))
    parent, child = (
        registry.providers["openai"].operations["chat"],
        registry.providers["deepseek"].operations["chat"],
    )
    # deepseek.yaml extends openai.yaml and keeps its chat URL
    assert child.url is parent.url
    assert child.url.where.startswith(str(project_path("mappings") / "providers" / "openai.yaml"))
    assert child.request is not parent.request  # it overrides the request body: its own section


def test_sections_are_shared_only_within_one_load() -> None:
    with authoring():  # the sections keep their generated Python, compared here
        first = load_registry(project_path("mappings")).providers["openai"].operations["chat"].request
        again = load_registry(project_path("mappings")).providers["openai"].operations["chat"].request
    assert first is not again
    assert first.source == again.source != ""


def test_the_same_value_compiles_once_other_values_apart(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text('a:\n  x: "{{ request.n + 1 }}"\nb:\n  x: "{{ request.n + 1 }}"\n')
    tree = load_yaml(path)
    with compiling_once():
        a, a_again, b = (
            compile_key(tree, "a", ("request",)),
            compile_key(tree, "a", ("request",)),
            compile_key(tree, "b", ("request",)),
        )
        a_other_variables = compile_key(tree, "a", ("request", "deployment"))
    assert a is a_again
    assert b is not a and b.where.endswith(":3")  # its own line in errors
    assert a_other_variables is not a
    assert a({"n": 1}) == b({"n": 1}) == {"x": 2}
    assert compile_key(tree, "a", ("request",)) is not a  # outside, nothing is kept


def test_an_expression_is_parsed_once_within_shared_parses() -> None:
    with shared_parses():
        assert parse("request.n + 1") is parse("request.n + 1")
    assert parse("request.n + 1") is not parse("request.n + 1")
