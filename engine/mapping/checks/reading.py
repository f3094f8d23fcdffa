"""What one expression reads and calls, from Jinja's syntax tree: the paths it looks up under each
variable (`request.messages[0].content` -> request: messages, [], content) and its filter, test and
function calls with their arguments."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from jinja2 import nodes

__all__ = ["COMPUTED", "INDEX", "Call", "Lookup", "calls", "lookups"]

INDEX = "[]"  # a path step that is a list index or a computed key
COMPUTED = object()  # an argument known only at run time


@dataclass(frozen=True, slots=True)
class Lookup:
    """`root.a.b[0]...`: the variable and the steps looked up under it (constant keys, else INDEX)."""

    root: str
    path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Call:
    """`x | name(args)`, `x is name(args)` or `name(args)`: what is called, with how many arguments."""

    kind: str  # "filter" | "test" | "function"
    name: str
    arguments: tuple[object, ...]  # positional, not counting the value a filter or test is applied to;
    # each a constant's value, or COMPUTED
    keywords: tuple[str, ...]


def lookups(expr: nodes.Node) -> Iterator[Lookup]:
    """Every lookup chain rooted at a name, longest first (`a.b.c` once, not also `a.b`)."""
    chain = _chain(expr)
    if chain is not None:
        yield chain
        for inner in _computed_keys(expr):
            yield from lookups(inner)
        return
    if isinstance(expr, nodes.Call) and isinstance(expr.node, nodes.Getattr):
        yield from lookups(expr.node.node)  # `x.method(...)`: the method is not a key of x
        for child in (*expr.args, *(kw.value for kw in expr.kwargs)):
            yield from lookups(child)
        return
    for inner in expr.iter_child_nodes():
        yield from lookups(inner)


def _chain(expr: nodes.Node) -> Lookup | None:
    steps: list[str] = []
    node = expr
    while isinstance(node, (nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            steps.append(node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            steps.append(node.arg.value)
        else:
            steps.append(INDEX)
        node = node.node
    if not steps or not isinstance(node, nodes.Name):
        return None
    return Lookup(node.name, tuple(reversed(steps)))


def _computed_keys(expr: nodes.Node) -> Iterator[nodes.Node]:
    node = expr
    while isinstance(node, (nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getitem) and not isinstance(node.arg, nodes.Const):
            yield node.arg
        node = node.node


def calls(expr: nodes.Node) -> Iterator[Call]:
    for node in (expr, *expr.find_all((nodes.Filter, nodes.Test, nodes.Call))):
        if not isinstance(node, (nodes.Filter, nodes.Test, nodes.Call)):
            continue
        if isinstance(node, nodes.Call):
            if not isinstance(node.node, nodes.Name):
                continue  # a method: the sandbox decides at run time
            kind, name = "function", node.node.name
        else:
            kind, name = ("filter" if isinstance(node, nodes.Filter) else "test"), node.name
        arguments = tuple(a.value if isinstance(a, nodes.Const) else COMPUTED for a in node.args)
        yield Call(kind, name, arguments, tuple(str(kw.key) for kw in node.kwargs))
