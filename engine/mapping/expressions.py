"""Jinja expressions -> Python source, so a whole mapping section compiles into one Python function.

Jinja's own parser reads the expression; this module turns its syntax tree into Python code that calls
the sandboxed helpers in `runtime`. Only names in scope, registered filters/tests/functions and safe
attributes can be reached, and every check that can happen at load time does (unknown names, filters,
tests and functions are load errors with file:line).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.parser import Parser
from jinja2.sandbox import SandboxedEnvironment

from engine.mapping.filters import FILTERS, FUNCTIONS, TESTS

__all__ = ["ExpressionError", "compile_expression", "parse_template_string", "shared_parses"]

_ENV = SandboxedEnvironment()
# within `shared_parses`: each expression's syntax tree by its source (the translator only reads them)
_PARSED: ContextVar[dict[str, nodes.Expr] | None] = ContextVar("turnout_parsed_expressions", default=None)

_BINARY = {
    nodes.Add: "+",
    nodes.Sub: "-",
    nodes.Mul: "*",
    nodes.Div: "/",
    nodes.FloorDiv: "//",
    nodes.Mod: "%",
    nodes.Pow: "**",
}
_COMPARE = {
    "eq": "==",
    "ne": "!=",
    "gt": ">",
    "gteq": ">=",
    "lt": "<",
    "lteq": "<=",
    "in": "in",
    "notin": "not in",
}


class ExpressionError(ValueError):
    """An expression that cannot compile; the caller adds the file and line (and, for an unknown name,
    the names it could have meant)."""

    def __init__(self, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name  # the unknown name, when that is the problem


@contextmanager
def shared_parses() -> Iterator[None]:
    """Within: an expression's source is parsed once, however often it appears. Loading the mappings
    meets most sources several times (1,900 expressions, 700 distinct), and Jinja's parser is most of
    what compiling a mapping costs."""
    token = _PARSED.set({})
    try:
        yield
    finally:
        _PARSED.reset(token)


def parse(source: str) -> nodes.Expr:
    shared = _PARSED.get()
    if shared is None:
        return _parse(source)
    parsed = shared.get(source)
    if parsed is None:
        parsed = shared[source] = _parse(source)
    return parsed


def _parse(source: str) -> nodes.Expr:
    try:
        parser = Parser(_ENV, source, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            raise ExpressionError(f"unexpected text after the expression: {source!r}")
    except TemplateSyntaxError as exc:
        raise ExpressionError(f"invalid expression {source!r}: {exc.message}") from exc
    return expr


def compile_expression(source: str, scope: Callable[[str], str | None]) -> str:
    """Python source for a Jinja expression; `scope(name)` gives the Python name of a variable or None."""
    return _Translator(scope).visit(parse(source))


def parse_template_string(text: str) -> list[tuple[bool, str]] | None:
    """Split "a {{ x }} b" into [(False, "a "), (True, "x"), (False, " b")]; None when it has no `{{`."""
    if "{{" not in text:
        return None
    parts: list[tuple[bool, str]] = []
    rest = text
    while rest:
        start = rest.find("{{")
        if start < 0:
            parts.append((False, rest))
            break
        end = rest.find("}}", start)
        if end < 0:
            raise ExpressionError(f"unclosed '{{{{' in {text!r}")
        if start:
            parts.append((False, rest[:start]))
        parts.append((True, rest[start + 2 : end].strip()))
        rest = rest[end + 2 :]
    return parts


class _Translator:
    def __init__(self, scope: Callable[[str], str | None]) -> None:
        self.scope = scope

    def visit(self, node: nodes.Node) -> str:
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            raise ExpressionError(f"{type(node).__name__} is not allowed in a mapping expression")
        result: str = method(node)
        return result

    def _all(self, items: Iterable[nodes.Node]) -> list[str]:
        return [self.visit(i) for i in items]

    def visit_Const(self, node: nodes.Const) -> str:
        return repr(node.value)

    def visit_Name(self, node: nodes.Name) -> str:
        if node.name == "omit":
            return "MISSING"
        python_name = self.scope(node.name)
        if python_name is None:
            raise ExpressionError(f"unknown name {node.name!r}", name=node.name)
        return python_name

    def visit_Getattr(self, node: nodes.Getattr) -> str:
        return f"_ga({self.visit(node.node)}, {node.attr!r})"

    def visit_Getitem(self, node: nodes.Getitem) -> str:
        return f"_gi({self.visit(node.node)}, {self.visit(node.arg)})"

    def visit_Slice(self, node: nodes.Slice) -> str:
        parts = [self.visit(p) if p is not None else "None" for p in (node.start, node.stop, node.step)]
        return f"slice({', '.join(parts)})"

    def visit_List(self, node: nodes.List) -> str:
        return f"[{', '.join(self._all(node.items))}]"

    def visit_Tuple(self, node: nodes.Tuple) -> str:
        return f"[{', '.join(self._all(node.items))}]"

    def visit_Dict(self, node: nodes.Dict) -> str:
        pairs = ", ".join(f"{self.visit(p.key)}: {self.visit(p.value)}" for p in node.items)
        return f"{{{pairs}}}"

    def visit_CondExpr(self, node: nodes.CondExpr) -> str:
        other = self.visit(node.expr2) if node.expr2 is not None else "MISSING"
        return f"({self.visit(node.expr1)} if {self.visit(node.test)} else {other})"

    def visit_And(self, node: nodes.And) -> str:
        return f"({self.visit(node.left)} and {self.visit(node.right)})"

    def visit_Or(self, node: nodes.Or) -> str:
        return f"({self.visit(node.left)} or {self.visit(node.right)})"

    def visit_Not(self, node: nodes.Not) -> str:
        return f"(not {self.visit(node.node)})"

    def visit_Neg(self, node: nodes.Neg) -> str:
        return f"(-{self.visit(node.node)})"

    def visit_Pos(self, node: nodes.Pos) -> str:
        return f"(+{self.visit(node.node)})"

    def visit_Concat(self, node: nodes.Concat) -> str:
        return f"_cat({', '.join(self._all(node.nodes))})"

    def visit_Compare(self, node: nodes.Compare) -> str:
        out = self.visit(node.expr)
        for operand in node.ops:
            out += f" {_COMPARE[operand.op]} {self.visit(operand.expr)}"
        return f"({out})"

    def _binary(self, node: nodes.BinExpr) -> str:
        return f"({self.visit(node.left)} {_BINARY[type(node)]} {self.visit(node.right)})"

    visit_Add = visit_Sub = visit_Mul = visit_Div = visit_FloorDiv = visit_Mod = visit_Pow = _binary

    def _arguments(self, node: nodes.Filter | nodes.Test | nodes.Call) -> list[str]:
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            raise ExpressionError("*args and **kwargs are not allowed in a mapping expression")
        args = self._all(node.args)
        args += [f"{kw.key}={self.visit(kw.value)}" for kw in node.kwargs]
        return args

    def visit_Filter(self, node: nodes.Filter) -> str:
        if node.name not in FILTERS:
            raise ExpressionError(f"unknown filter {node.name!r}")
        if node.node is None:
            raise ExpressionError("a filter needs a value")
        args = [self.visit(node.node), *self._arguments(node)]
        return f"_F[{node.name!r}]({', '.join(args)})"

    def visit_Test(self, node: nodes.Test) -> str:
        if node.name not in TESTS:
            raise ExpressionError(f"unknown test {node.name!r}")
        args = [self.visit(node.node), *self._arguments(node)]
        return f"_T[{node.name!r}]({', '.join(args)})"

    def visit_Call(self, node: nodes.Call) -> str:
        args = self._arguments(node)
        if isinstance(node.node, nodes.Name):
            if node.node.name not in FUNCTIONS:
                raise ExpressionError(f"unknown function {node.node.name!r}")
            return f"_FN[{node.node.name!r}]({', '.join(args)})"
        if isinstance(node.node, nodes.Getattr):
            target = self.visit(node.node.node)
            return f"_cm({', '.join([target, repr(node.node.attr), *args])})"
        raise ExpressionError("only functions and methods can be called")


EXPRESSION_GLOBALS: dict[str, Any] = {"_F": FILTERS, "_T": TESTS, "_FN": FUNCTIONS}
