"""Shared helpers for reading mapping files: load with file and line tags, check keys, compile a key."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from types import MappingProxyType
from typing import Any

from engine.mapping.compiler import CompiledSection, MappingLoadError, compile_section
from engine.mapping.expressions import shared_parses
from engine.mapping.yaml_lines import LineDict, load_yaml

__all__ = [
    "check_keys",
    "compile_key",
    "compile_optional",
    "compile_value",
    "compiling_once",
    "fail",
    "load_mapping_file",
    "using_fragments",
]

# within `compiling_once`: (id of the YAML value, variables, file, line, the fragments it may use) -> (the
# value, kept alive so that its id stays its own, and its compiled section)
_Key = tuple[int, tuple[str, ...], str, int, tuple[tuple[Any, int], ...]]
_Compiled = dict[_Key, tuple[Any, CompiledSection]]
_COMPILED: ContextVar[_Compiled | None] = ContextVar("turnout_compiled_sections", default=None)
# within `using_fragments`: the `fragments` of the mapping being built, which `$use` draws on
_FRAGMENTS: ContextVar[Mapping[Any, Any]] = ContextVar("turnout_fragments", default=MappingProxyType({}))


@contextmanager
def compiling_once() -> Iterator[None]:
    """Within: a section met again is compiled once and shared, and so is each expression's parse.

    A provider that `extends` another holds the very YAML values of the sections it does not override
    (twelve providers extend openai.yaml): 330 sections at start, 183 of them distinct. Sharing one
    compiled function is sound because a section is a pure function of its variables.
    """
    token = _COMPILED.set({})
    try:
        with shared_parses():
            yield
    finally:
        _COMPILED.reset(token)


@contextmanager
def using_fragments(tree: LineDict, *, refuse_unused: bool = False) -> Iterator[None]:
    """Within: sections compiled from `tree` (a whole mapping) may `$use` its `fragments`.

    `refuse_unused` (`turnout mappings check`, for a file no other extends): a fragment the file writes
    must be used. Serving tolerates one, as it does any text that is never evaluated.
    """
    fragments = tree.get("fragments")
    if fragments is None:
        fragments = {}
    elif not isinstance(fragments, LineDict) or not all(
        isinstance(k, str) and k.isidentifier() for k in fragments
    ):
        raise fail(tree, "fragments", "`fragments` must be a mapping of plain names to trees")
    token = _FRAGMENTS.set(fragments)
    try:
        yield
    finally:
        _FRAGMENTS.reset(token)
    if refuse_unused:
        _refuse_unused(tree, fragments)  # once the sections compiled: their own errors come first


def _refuse_unused(tree: LineDict, fragments: Mapping[Any, Any]) -> None:
    """A fragment is checked where it is used, so one this file writes but never uses is an error (it is
    most often a section indented under `fragments:` by mistake)."""
    used: set[str] = set()
    pending = [value for key, value in tree.items() if key != "fragments"]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            name = value.get("$use")
            if isinstance(name, str) and name in fragments and name not in used:
                used.add(name)
                pending.append(fragments[name])
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    for name, value in fragments.items():
        if name not in used and getattr(value, "file", getattr(tree, "file", None)) == getattr(
            tree, "file", None
        ):
            raise fail(
                fragments, name, f"fragment {name!r} is never used (a fragment is checked where it is used)"
            )


def load_mapping_file(path: Path) -> LineDict:
    try:
        tree = load_yaml(path)
    except Exception as exc:
        raise MappingLoadError(_yaml_problem(path, exc)) from exc
    if not isinstance(tree, LineDict):
        raise MappingLoadError(f"{path}:1: a mapping file must be a YAML mapping")
    _tag_file(tree, str(path))
    return tree


def _yaml_problem(path: Path, exc: Exception) -> str:
    """YAML's error as one `file:line: not valid YAML: …` line, the form every other finding takes
    (its own text spans lines and names the file again)."""
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return f"{path}: not valid YAML: {exc}"
    problem = getattr(exc, "problem", None) or "syntax error"
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    where = f" ({context} at line {context_mark.line + 1})" if context and context_mark else ""
    return f"{path}:{mark.line + 1}: not valid YAML: {problem}{where}"


def _tag_file(value: Any, file: str) -> None:
    if isinstance(value, dict):
        value.file = file  # type: ignore[attr-defined]
        for item in value.values():
            _tag_file(item, file)
    elif isinstance(value, list):
        for item in value:
            _tag_file(item, file)
    elif isinstance(value, str) and hasattr(value, "line"):
        value.file = file  # type: ignore[attr-defined]


def fail(tree: Any, key: Any, message: str) -> MappingLoadError:
    line = tree.key_lines.get(key, tree.line) if isinstance(tree, LineDict) else 0
    return MappingLoadError(f"{getattr(tree, 'file', '?')}:{line}: {message}")


def check_keys(tree: LineDict, allowed: set[str], what: str) -> None:
    for key in tree:
        if key not in allowed:
            raise fail(tree, key, f"unknown key {key!r} in {what} (allowed: {', '.join(sorted(allowed))})")


def compile_key(tree: LineDict, key: str, variables: tuple[str, ...]) -> CompiledSection:
    value = tree[key]
    file = str(getattr(value, "file", None) or getattr(tree, "file", "?"))
    return compile_value(value, variables, file, tree.key_lines.get(key, tree.line))


def compile_value(value: Any, variables: tuple[str, ...], file: str, line: int) -> CompiledSection:
    """Compile one section, once per `compiling_once` (with the same fragments within reach)."""
    fragments = _FRAGMENTS.get()
    compiled = _COMPILED.get()
    if compiled is None:
        return compile_section(value, variables, file, line, fragments)
    # an overlay that leaves the fragments alone holds its parent's very trees: the same key
    ident = (id(value), variables, file, line, tuple((name, id(tree)) for name, tree in fragments.items()))
    if ident not in compiled:
        compiled[ident] = (value, compile_section(value, variables, file, line, fragments))
    return compiled[ident][1]


def compile_optional(tree: LineDict, key: str, variables: tuple[str, ...]) -> CompiledSection | None:
    """`compile_key` for a section a mapping may leave out (None then)."""
    return compile_key(tree, key, variables) if key in tree else None
