"""YAML tree + Jinja expressions -> one Python function per mapping section.

A section such as a request body is generated once at load as the source of a single function whose
return expression builds the whole output; evaluating it per request is one call, with no per-leaf
template rendering. Constructs (`$for`, `$if`, `$switch`, `$merge`, `$let`, `$use`, `$literal`) are
described in mappings/README.md. Each leaf carries its YAML file and line, so a failure at run time names
file:line, also inside a fragment or a value an overlay inherited from another file.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from engine.mapping.constructs import CONSTRUCTS, construct_key_problem, did_you_mean
from engine.mapping.expressions import EXPRESSION_GLOBALS, ExpressionError, compile_expression
from engine.mapping.expressions import parse_template_string as split_template
from engine.mapping.runtime import RUNTIME_GLOBALS, MappingRuntimeError
from engine.mapping.yaml_lines import LineDict, line_of, plain

__all__ = ["CompiledSection", "MappingLoadError", "Site", "authoring", "compile_section"]

_counter = itertools.count()
_AUTHORING: ContextVar[bool] = ContextVar("turnout_mapping_authoring", default=False)
_TEMPLATE_MARKS = ("{%", "{#")  # Jinja statements and comments: never evaluated, they would go out as text


@contextmanager
def authoring() -> Iterator[None]:
    """Within: compiled sections keep what the tools for mapping authors read, their Sites (the checker)
    and their generated Python (`mappings show --python`). Serving never asks: it keeps neither."""
    token = _AUTHORING.set(True)
    try:
        yield
    finally:
        _AUTHORING.reset(token)


class MappingLoadError(ValueError):
    """A mapping that cannot load; the message starts with file:line."""


@dataclass(frozen=True, slots=True)
class Site:
    """A leaf the compiler met, for the checker: an expression, or text that looks like a Jinja template
    (`{% %}`, `{# #}`) and would go out as written."""

    kind: str  # "expression" | "text"
    source: str  # the expression without `{{ }}`, or the whole text
    file: str
    line: int
    local_names: tuple[str, ...]  # names bound around it by `$for`, `$let`, ... (they hide variables)
    fragment: str | None = None  # the fragment it was written in (compiled where `$use` names it)


@dataclass(frozen=True, slots=True)
class CompiledSection:
    """A compiled section: call it with the section's variables, positionally, in `variables` order."""

    function: Callable[..., Any]
    variables: tuple[str, ...]
    where: str  # file:line of the section
    source: str  # the generated Python, within `authoring` (else ""): `turnout mappings show --python`
    line_map: dict[int, int]  # generated line -> YAML line
    file_map: dict[int, str] = field(default_factory=dict)  # generated line -> YAML file, when not `where`'s
    sites: tuple[Site, ...] = ()  # what the checker reads, within `authoring` (else none)

    def __call__(self, *args: Any) -> Any:
        try:
            return self.function(*args)
        except MappingRuntimeError:
            raise
        except Exception as exc:  # any failure inside mapping code is the mapping's, named by line
            raise MappingRuntimeError(self._failing_line(exc), f"{type(exc).__name__}: {exc}") from exc

    def _failing_line(self, exc: BaseException) -> str:
        tb = exc.__traceback__
        line = 0
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == self._filename:
                line = tb.tb_lineno
            tb = tb.tb_next
        marked = [g for g in sorted(self.line_map) if g <= line]
        if not marked:
            return self.where
        file = self.file_map.get(marked[-1], self.where.rsplit(":", 1)[0])
        return f"{file}:{self.line_map[marked[-1]]}"

    @property
    def _filename(self) -> str:
        return f"<mapping {self.where}>"


def compile_section(
    tree: Any,
    variables: Sequence[str],
    file: str,
    line: int = 0,
    fragments: Mapping[Any, Any] | None = None,
) -> CompiledSection:
    """Compile `tree` into a function of `variables`; `$use` takes its trees from `fragments`.

    Raises MappingLoadError naming file:line."""
    where = f"{file}:{line}"
    gen = _Generator(file, variables, fragments or {})
    # No raised recursion limit: Python's tokenizer refuses more than 200 nested brackets in the
    # generated source long before the default limit is reached (the bundled mappings nest a few dozen
    # levels), so a section nested that deep is the mapping's error, said at its line.
    try:
        body = gen.node(tree, line)
    except RecursionError:
        raise MappingLoadError(f"{where}: the section is nested too deeply to compile") from None
    params = ", ".join(gen.python_name(v) for v in variables)
    source = f"def _section({params}):\n    return (\n{body}\n    )\n"
    namespace: dict[str, Any] = {**RUNTIME_GLOBALS, **EXPRESSION_GLOBALS, **gen.constants}
    try:
        code = compile(source, f"<mapping {where}>", "exec")
    except RecursionError:
        raise MappingLoadError(f"{where}: the section is nested too deeply to compile") from None
    except SyntaxError as exc:  # a bug in the generator, not in the mapping; say so plainly
        if "too many nested" in str(exc):
            raise MappingLoadError(f"{where}: the section is nested too deeply to compile") from None
        raise MappingLoadError(f"{where}: internal error compiling mapping: {exc}") from exc
    exec(code, namespace)
    line_map, file_map = {}, {}
    for number, text in enumerate(source.splitlines(), start=1):
        marker = text.rfind("# L")
        if marker >= 0:
            yaml_line, _, other = text[marker + 3 :].partition(" F")
            line_map[number] = int(yaml_line)
            if other:
                file_map[number] = gen.files[int(other)]
    kept = source if _AUTHORING.get() else ""
    return CompiledSection(
        namespace["_section"], tuple(variables), where, kept, line_map, file_map, tuple(gen.sites or ())
    )


class _Generator:
    def __init__(self, file: str, variables: Sequence[str], fragments: Mapping[Any, Any]) -> None:
        self.file = self.section_file = file
        self.files: list[str] = []  # YAML files other than the section's, by their marker number
        self.scopes: list[dict[str, str]] = [{v: self.python_name(v) for v in variables}]
        self.constants: dict[str, Any] = {}
        self.fragments = fragments
        self.expanding: list[str] = []  # the fragments being expanded, innermost last
        self.used: set[str] = set()  # the Python names `lookup` resolved (for `$let`'s grouping)
        self.sites: list[Site] | None = [] if _AUTHORING.get() else None

    @staticmethod
    def python_name(name: str) -> str:
        return f"v_{name}"

    def lookup(self, name: str) -> str | None:
        for scope in reversed(self.scopes):
            if name in scope:
                self.used.add(scope[name])
                return scope[name]
        return None

    def fail(self, line: int, message: str) -> MappingLoadError:
        return MappingLoadError(f"{self.file}:{line}: {message}")

    def expression(self, source: str, line: int, file: str | None = None) -> str:
        try:
            code = compile_expression(source, self.lookup)
        except ExpressionError as exc:
            raise self.fail(line, f"{exc}{self.known_names(exc)}") from exc
        if self.sites is not None:
            fragment = self.expanding[-1] if self.expanding else None
            self.sites.append(
                Site("expression", source, file or self.file, line, self.local_names(), fragment)
            )
        if self.file == self.section_file:
            return f"\n{code}  # L{line}\n"
        if self.file not in self.files:
            self.files.append(self.file)
        return f"\n{code}  # L{line} F{self.files.index(self.file)}\n"

    def local_names(self) -> tuple[str, ...]:
        return tuple(name for scope in self.scopes[1:] for name in scope)

    def known_names(self, exc: ExpressionError) -> str:
        """For an unknown name: the closest name in scope, and every name the section can use here."""
        if exc.name is None:
            return ""
        names = [name for scope in self.scopes for name in scope]
        return f"{did_you_mean(exc.name, names)} (this section has: {', '.join(names)})"

    def node(self, value: Any, line: int) -> str:
        own = getattr(value, "file", None)
        if not own or own == self.file:
            return self._node(value, line)
        # a value an overlay inherited (or a fragment) names its own file in errors and line markers
        outer, self.file = self.file, str(own)
        try:
            return self._node(value, line)
        finally:
            self.file = outer

    def _node(self, value: Any, line: int) -> str:
        if isinstance(value, dict):
            own = line_of(value) or line
            if any(isinstance(k, str) and k.startswith("$") for k in value):
                return self.construct(value, own)
            pairs = []
            for key, item in value.items():
                pairs += [repr(plain(key)), self.node(item, line_of(item, value, key) or own)]
            return f"_obj({', '.join(pairs)})"
        if isinstance(value, list):
            return f"_list([{', '.join(self.node(item, line_of(item) or line) for item in value)}])"
        if isinstance(value, str):
            return self.string(value, line_of(value) or line)
        return repr(value)

    def string(self, text: str, line: int) -> str:
        file = getattr(text, "file", None)
        try:
            parts = split_template(text)
        except ExpressionError as exc:
            raise self.fail(line, str(exc)) from exc
        texts = [src for is_expr, src in parts or [(False, text)] if not is_expr]
        if self.sites is not None and any(mark in src for src in texts for mark in _TEMPLATE_MARKS):
            self.sites.append(Site("text", str(text), file or self.file, line, ()))
        if parts is None:
            return repr(str(text))
        if len(parts) == 1 and parts[0][0]:
            return self.expression(parts[0][1], line, file)
        pieces = [self.expression(src, line, file) if is_expr else repr(src) for is_expr, src in parts]
        return f"_interp({', '.join(pieces)})"

    def bare_expression(self, value: Any, line: int, construct: str) -> str:
        """The value of `$for`/`$if`/`$switch`: an expression with or without `{{ }}`."""
        if isinstance(value, bool) or value is None:
            return repr(value)
        if not isinstance(value, str):
            raise self.fail(line, f"{construct} needs an expression")
        text = value.strip()
        if text.startswith("{{") and text.endswith("}}") and text.count("{{") == 1:
            text = text[2:-2].strip()
        return self.expression(text, line)

    def construct(self, spec: dict[str, Any], line: int) -> str:
        problem = construct_key_problem(spec)
        if problem is not None:
            key, message = problem
            at = spec.key_lines.get(key, line) if isinstance(spec, LineDict) and key is not None else line
            raise self.fail(at, message)
        head = next(k for k in spec if k in CONSTRUCTS)
        builder: Callable[[dict[str, Any], int], str] = getattr(self, "construct_" + head[1:])
        return builder(spec, line)

    def local(self, spec: dict[str, Any], key: str, default: str, line: int) -> str:
        name = spec.get(key, default)
        if not isinstance(name, str) or not name.isidentifier():
            raise self.fail(line, f"{key} must be a plain name")
        return str(name)

    def construct_for(self, spec: dict[str, Any], line: int) -> str:
        source = self.bare_expression(spec["$for"], line, "$for")
        item = self.local(spec, "$as", "item", line)
        index = self.local(spec, "$index", "index", line)
        n = next(_counter)
        self.scopes.append({item: f"v_{item}_{n}", index: f"v_{index}_{n}"})
        try:
            body = self.node(spec["$do"], line) if "$do" in spec else f"v_{item}_{n}"
            where = f" if {self.bare_expression(spec['$where'], line, '$where')}" if "$where" in spec else ""
        finally:
            self.scopes.pop()
        gather = "_flat" if spec.get("$flat") else "_list"
        loop = f"for v_{index}_{n}, v_{item}_{n} in enumerate(_iter(v_src_{n}))"
        # absent in, absent out: a $for over a missing list leaves its key out rather than sending []
        return f"_each({source}, lambda v_src_{n}: {gather}([{body} {loop}{where}]))"

    def construct_if(self, spec: dict[str, Any], line: int) -> str:
        condition = self.bare_expression(spec["$if"], line, "$if")
        then = self.node(spec["$then"], line) if "$then" in spec else "True"
        other = self.node(spec["$else"], line) if "$else" in spec else "MISSING"
        return f"({then} if {condition} else {other})"

    def construct_switch(self, spec: dict[str, Any], line: int) -> str:
        subject = self.bare_expression(spec["$switch"], line, "$switch")
        cases = spec.get("$cases")
        if not isinstance(cases, dict) or not cases:
            raise self.fail(line, "$switch needs a $cases mapping")
        misplaced = [k for k in cases if isinstance(k, str) and k.startswith("$")]
        if misplaced:  # e.g. `$default` indented under `$cases` by mistake
            raise self.fail(line, f"{misplaced[0]} belongs beside $cases, not inside it")
        branches = ", ".join(
            f"{plain(k)!r}: (lambda: {self.node(v, line_of(v, cases, k) or line)})" for k, v in cases.items()
        )
        default = self.node(spec["$default"], line) if "$default" in spec else "MISSING"
        return f"_switch({subject}, {{{branches}}}, (lambda: {default}))"

    def construct_merge(self, spec: dict[str, Any], line: int) -> str:
        parts = spec["$merge"]
        if not isinstance(parts, list):
            raise self.fail(line, "$merge needs a list")
        return f"_merge({', '.join(self.node(p, line_of(p) or line) for p in parts)})"

    def construct_let(self, spec: dict[str, Any], line: int) -> str:
        bindings = spec["$let"]
        if not isinstance(bindings, dict) or "$in" not in spec:
            raise self.fail(line, "$let needs a mapping of names and an $in")
        return self.bound(bindings, lambda: self.node(spec["$in"], line), line, "$let")

    def bound(self, bindings: dict[Any, Any], body: Callable[[], str], line: int, construct: str) -> str:
        """`body` with `bindings` in scope. Bindings are sequential: each sees the ones before it.

        Consecutive bindings that do not use each other share one lambda, so a `$let` whose names are
        independent compiles as it always did, and a chain costs what the nested `$let`s it replaces did.
        """
        n = next(_counter)
        groups: list[list[tuple[str, str]]] = [[]]  # (Python name, value code), one lambda per group
        self.scopes.append({})
        try:
            for key, value in bindings.items():
                if not isinstance(key, str) or not key.isidentifier():
                    raise self.fail(
                        line_of(value, bindings, key) or line, f"{construct} names must be plain names"
                    )
                outer_used, self.used = self.used, set()
                code = self.node(value, line_of(value, bindings, key) or line)
                if self.used & {name for name, _ in groups[-1]}:  # uses a name of the open group
                    groups.append([])
                self.used |= outer_used
                python = f"v_{key}_{n}"
                groups[-1].append((python, code))
                self.scopes[-1][key] = python
            code = body()
        finally:
            self.scopes.pop()
        for group in reversed(groups):
            if group:
                names, values = zip(*group, strict=True)
                code = f"(lambda {', '.join(names)}: {code})({', '.join(values)})"
        return code

    def construct_use(self, spec: dict[str, Any], line: int) -> str:
        name = spec["$use"]
        if not isinstance(name, str) or name not in self.fragments:
            known = ", ".join(map(str, self.fragments)) or "none"
            raise self.fail(line, f"$use: unknown fragment {name!r} (this mapping's fragments: {known})")
        if name in self.expanding:
            chain = " -> ".join([*self.expanding[self.expanding.index(name) :], name])
            raise self.fail(line, f"$use: fragment {name!r} uses itself ({chain})")
        bindings = spec.get("$with", {})
        if not isinstance(bindings, dict):
            raise self.fail(line, "$with needs a mapping of names")
        tree = self.fragments[name]
        use_site = f"{self.file}:{line}"
        self.expanding.append(name)
        try:
            return self.bound(
                bindings, lambda: self.node(tree, line_of(tree, self.fragments, name) or line), line, "$with"
            )
        except MappingLoadError as exc:
            if self.expanding == [name]:  # say once, at the outermost use, where the fragment was used
                raise MappingLoadError(f"{exc} (in fragment {name!r} used at {use_site})") from exc
            raise
        finally:
            self.expanding.pop()

    def construct_replace(self, spec: dict[str, Any], line: int) -> str:
        raise self.fail(
            line,
            "$replace belongs in an overlay (a file that `extends` another), where it meets a parent's value",
        )

    def construct_literal(self, spec: dict[str, Any], line: int) -> str:
        name = f"_const{len(self.constants)}"
        self.constants[name] = plain(spec["$literal"])
        return name
