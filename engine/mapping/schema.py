"""Request schemas for dialects: a small JSON Schema subset, compiled once at load into a validator.

A dialect states the shape of its client's body (`schema:`) so that a body of the wrong shape is the
client's 400, naming the field, before the `request` mapping runs (a mapping over a number where it
expects a list can only fail). The subset and its rules are in mappings/README.md ("Request schemas").

Validation follows JSON Schema's meaning for every construct it accepts, with two documented
exceptions: `integer` is a number written without a fraction (1.0 is a `number`), and integers outside
64 bits match neither `integer` nor `number`. `anyOf` alternatives must be told apart by their JSON
type, or (objects) by a constant-valued property such as `type`, so validation never backtracks: each
node of the body is checked once, by a closure built at load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.mapping.schema_checks import (
    Check,
    SchemaViolation,
    anything,
    array,
    by_kind,
    exactly,
    kind_of,
    number,
    object_of,
    one_of,
    string,
    tagged,
)
from engine.mapping.tree import fail
from engine.mapping.yaml_lines import LineDict, plain

__all__ = ["BodySchema", "SchemaViolation", "compile_schemas"]

_ANNOTATIONS = {"description", "title", "$comment", "examples", "default"}
_BY_TYPE = {
    "string": {"minLength", "maxLength"},
    "integer": {"minimum", "maximum"},
    "number": {"minimum", "maximum"},
    "array": {"items", "minItems", "maxItems"},
    "object": {"properties", "required", "additionalProperties"},
    "boolean": set(),
    "null": set(),
}
_ALL_KINDS = frozenset(_BY_TYPE)


@dataclass(frozen=True)
class BodySchema:
    """A compiled schema: `check(body)` raises SchemaViolation; `document` is the plain JSON Schema."""

    check: Check
    document: dict[str, Any] = field(repr=False)


def compile_schemas(
    root: Any, parent: LineDict, others: dict[str, tuple[Any, LineDict]]
) -> dict[str, BodySchema]:
    """The dialect's `schema` (`root`, under key "schema" of `parent`) and the local routes' schemas
    (`others`: name -> (schema, its parent)), which share the root's `$defs`. MappingLoadError names
    file:line."""
    if not isinstance(root, LineDict):
        raise fail(parent, "schema", "`schema` must be a mapping (a JSON Schema)")
    defs = root.get("$defs", LineDict())
    if not isinstance(defs, LineDict):
        raise fail(root, "$defs", "`$defs` must be a mapping of names to schemas")
    compiler = _Compiler(defs)
    schemas = {"": BodySchema(compiler.node(root, parent, "schema", top=True), _document(root, defs))}
    for name, (tree, holder) in others.items():
        schemas[name] = BodySchema(compiler.node(tree, holder, "schema"), _document(tree, defs))
    compiler.finish()
    return schemas


def _document(tree: Any, defs: Any) -> dict[str, Any]:
    document: dict[str, Any] = plain(tree) if isinstance(tree, dict) else {}
    if defs:
        document["$defs"] = plain(defs)
    return document


class _Compiler:
    def __init__(self, defs: LineDict) -> None:
        self.defs = defs
        self.compiled: dict[str, Check] = {}
        self.compiling: set[str] = set()

    def finish(self) -> None:
        for name in self.defs:  # the unused ones too, so that a mistake in one is found at load
            self.definition(str(name))

    # ---- one schema node ----------------------------------------------------------------------
    def node(self, tree: Any, parent: Any, key: Any, *, top: bool = False) -> Check:
        if tree is True or (
            isinstance(tree, dict) and not set(tree) - _ANNOTATIONS - ({"$defs"} if top else set())
        ):
            return anything
        if not isinstance(tree, LineDict):
            raise fail(parent, key, "a schema must be a mapping of JSON Schema keywords")
        keywords = set(tree) - _ANNOTATIONS - ({"$defs"} if top else set())
        if "$ref" in keywords:
            return self.ref(tree, keywords)
        if "anyOf" in keywords:
            return self.any_of(tree, keywords)
        return self.typed(tree, keywords)

    def ref(self, tree: LineDict, keywords: set[str]) -> Check:
        if keywords != {"$ref"}:
            raise fail(tree, "$ref", "`$ref` stands alone (besides description and title)")
        name = self.ref_name(tree)
        if name not in self.compiling:
            return self.definition(name)
        compiled = self.compiled  # a definition that refers to itself: looked up when checking

        def check(value: Any) -> None:
            compiled[name](value)

        return check

    def definition(self, name: str) -> Check:
        """A `$defs` entry, compiled once (each `$ref` to it is the same check, not a call through)."""
        if name not in self.compiled:
            self.compiling.add(name)
            self.compiled[name] = self.node(self.defs[name], self.defs, name)
            self.compiling.discard(name)
        return self.compiled[name]

    def ref_name(self, tree: LineDict) -> str:
        target = tree["$ref"]
        name = target.removeprefix("#/$defs/") if isinstance(target, str) else ""
        if not isinstance(target, str) or not target.startswith("#/$defs/") or name not in self.defs:
            raise fail(tree, "$ref", f"`$ref` must be '#/$defs/<name>' naming one of `$defs`; got {target!r}")
        return str(name)

    def typed(self, tree: LineDict, keywords: set[str]) -> Check:
        kinds = self.declared_kinds(tree)
        allowed = {"type", "enum", "const"}.union(*(_BY_TYPE[k] for k in kinds))
        unknown = sorted(keywords - allowed)
        if unknown:
            known = sorted(set().union(*_BY_TYPE.values()) | {"type", "enum", "const", "anyOf", "$ref"})
            raise fail(
                tree,
                unknown[0],
                f"schema keyword {unknown[0]!r} is not supported here (types {', '.join(sorted(kinds))}; "
                f"the subset: {', '.join(known)})",
            )
        checks = {kind: self.of_kind(kind, tree) for kind in kinds}
        if "number" in checks and "integer" not in checks:
            checks["integer"] = checks["number"]
        base = by_kind(checks)
        choices = self.choices(tree)
        if choices is None:
            return base
        return one_of(choices, base if "type" in tree else None)  # the choices' own kinds say enough

    def declared_kinds(self, tree: LineDict) -> set[str]:
        """The JSON types a typed node accepts: its `type`, else the kinds of its `enum` / `const`."""
        if "type" not in tree:
            choices = self.choices(tree)
            if choices is None:
                raise fail(tree, None, "a schema needs `type` (or `enum`, `const`, `anyOf`, `$ref`)")
            return {"number" if kind_of(v) == "integer" else kind_of(v) for v in choices}
        declared = tree["type"]
        names = declared if isinstance(declared, list) else [declared]
        kinds = {"null" if name is None else str(name) for name in names}  # YAML's null is JSON's
        if not kinds or not kinds <= _ALL_KINDS:
            allowed = ", ".join(sorted(_ALL_KINDS))
            raise fail(tree, "type", f"`type` must be one or a list of {allowed}")
        return kinds

    def choices(self, tree: LineDict) -> list[Any] | None:
        if "const" in tree:
            return [plain(tree["const"])]
        if "enum" not in tree:
            return None
        values = tree["enum"]
        if not isinstance(values, list) or not values or any(isinstance(v, (dict, list)) for v in values):
            raise fail(tree, "enum", "`enum` must be a non-empty list of strings, numbers, booleans or null")
        return [plain(v) for v in values]

    def of_kind(self, kind: str, tree: LineDict) -> Check:
        if kind == "object":
            return self.object(tree)
        if kind == "array":
            return self.array(tree)
        if kind == "string":
            return string(_size(tree, "minLength"), _size(tree, "maxLength"))
        if kind in ("integer", "number"):
            return number(kind, _bound(tree, "minimum"), _bound(tree, "maximum"))
        return exactly(kind)  # boolean, null: the kind is all there is to check

    def array(self, tree: LineDict) -> Check:
        items = self.node(tree["items"], tree, "items") if "items" in tree else anything
        return array(items, _size(tree, "minItems"), _size(tree, "maxItems"))

    def object(self, tree: LineDict) -> Check:
        properties = tree.get("properties", LineDict())
        if not isinstance(properties, LineDict):
            raise fail(tree, "properties", "`properties` must be a mapping of names to schemas")
        checks = {str(name): self.node(sub, properties, name) for name, sub in properties.items()}
        required = tree.get("required", [])
        if not isinstance(required, list) or not all(isinstance(name, str) for name in required):
            raise fail(tree, "required", "`required` must be a list of property names")
        extra = tree.get("additionalProperties", True)
        other = None if extra is True else self.node(extra, tree, "additionalProperties") if extra else False
        return object_of(checks, tuple(str(name) for name in required), other)

    # ---- anyOf ----------------------------------------------------------------------------------
    def any_of(self, tree: LineDict, keywords: set[str]) -> Check:
        if keywords != {"anyOf"}:
            raise fail(tree, "anyOf", "`anyOf` stands alone (besides description and title)")
        alternatives = tree["anyOf"]
        if not isinstance(alternatives, list) or not alternatives:
            raise fail(tree, "anyOf", "`anyOf` must be a non-empty list of schemas")
        grouped: dict[str, list[Any]] = {}
        for alternative in alternatives:
            for kind in self.kinds_of(alternative, tree):
                grouped.setdefault(kind, []).append(alternative)
        if {"integer", "number"} <= grouped.keys():
            raise fail(tree, "anyOf", "`anyOf` alternatives overlap: integer and number (number takes both)")
        checks = {}
        for kind, alike in grouped.items():
            if len(alike) == 1:
                checks[kind] = self.node(alike[0], tree, "anyOf")
            elif kind == "object":
                checks[kind] = self.tagged(alike, tree)
            else:
                raise fail(
                    tree,
                    "anyOf",
                    f"`anyOf` has {len(alike)} alternatives of type {kind}: give them "
                    "different types, or (objects) a property with a different `const` each",
                )
        if "number" in checks:
            checks["integer"] = checks["number"]
        return by_kind(checks)

    def kinds_of(self, tree: Any, parent: Any) -> set[str]:
        """The JSON types a schema can accept, without compiling it (for telling anyOf's apart)."""
        if tree is True or (isinstance(tree, dict) and not set(tree) - _ANNOTATIONS):
            return set(_ALL_KINDS)
        if not isinstance(tree, LineDict):
            raise fail(parent, "anyOf", "a schema must be a mapping of JSON Schema keywords")
        if "$ref" in tree:
            return self.kinds_of(self.defs[self.ref_name(tree)], self.defs)
        if "anyOf" in tree and isinstance(tree["anyOf"], list):
            return set().union(*(self.kinds_of(alt, tree) for alt in tree["anyOf"]))
        return self.declared_kinds(tree)

    def resolved(self, tree: LineDict) -> LineDict:
        while "$ref" in tree:
            tree = self.defs[self.ref_name(tree)]
        return tree

    def tagged(self, alternatives: list[Any], parent: LineDict) -> Check:
        """Object alternatives told apart by one property that each fixes to its own constant."""
        objects = [self.resolved(alt) for alt in alternatives]
        tag = _common_tag(objects)
        if tag is None:
            raise fail(
                parent,
                "anyOf",
                "object alternatives of `anyOf` need a property that each fixes to "
                "a different value with `const` (e.g. type: {const: text})",
            )
        by_tag: dict[Any, Check] = {}
        default = None
        for alternative, resolved in zip(alternatives, objects, strict=True):
            value = _tag_value(resolved, tag)
            if value in by_tag:
                raise fail(parent, "anyOf", f"two `anyOf` alternatives fix {tag!r} to {value!r}")
            by_tag[value] = self.node(alternative, parent, "anyOf")
            if tag not in resolved.get("required", []):
                if default is not None:
                    raise fail(parent, "anyOf", f"only one `anyOf` alternative may leave {tag!r} out")
                default = by_tag[value]
        return tagged(tag, by_tag, default)


def _common_tag(objects: list[LineDict]) -> str | None:
    """The property every alternative fixes to a string (the first by name when several do)."""
    names: set[str] | None = None
    for tree in objects:
        properties = tree.get("properties")
        listed = list(properties) if isinstance(properties, dict) else []
        fixed = {str(name) for name in listed if _tag_value(tree, str(name)) is not _NO_TAG}
        names = fixed if names is None else names & fixed
    return min(names) if names else None


_NO_TAG = object()


def _tag_value(tree: LineDict, name: str) -> Any:
    """The string a property is fixed to (`const`, or an `enum` of one), else _NO_TAG."""
    sub = (tree.get("properties") or {}).get(name)
    if not isinstance(sub, dict):
        return _NO_TAG
    enum = sub.get("enum")
    value = sub["const"] if "const" in sub else enum[0] if isinstance(enum, list) and len(enum) == 1 else None
    return str(value) if isinstance(value, str) else _NO_TAG


def _size(tree: LineDict, name: str) -> int | None:
    value = tree.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise fail(tree, name, f"`{name}` must be a whole number of at least 0")
    return value


def _bound(tree: LineDict, name: str) -> float | None:
    value = tree.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(tree, name, f"`{name}` must be a number")
    return value
