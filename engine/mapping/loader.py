"""Load, validate and compile every provider mapping in a folder; errors name file:line."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from engine.canonical import OPERATIONS
from engine.config.catalog import ProviderCatalog, ProviderDefaults
from engine.mapping.compiler import CompiledSection, MappingLoadError
from engine.mapping.constructs import HEADS as CONSTRUCT_HEADS  # the keys that name a construct
from engine.mapping.folders import as_folders, provider_trees
from engine.mapping.spec import Action, Discovery, Limit, Operation, ParamPolicy, ProviderMapping, StreamSpec
from engine.mapping.tree import (
    check_keys,
    compile_key,
    compile_optional,
    compile_value,
    compiling_once,
    fail,
    using_fragments,
)
from engine.mapping.yaml_lines import LineDict, plain

__all__ = ["MappingLoadError", "MappingRegistry", "load_registry"]

PRIVACY_TIERS = ("local", "self-hosted", "third-party")
_TOP_KEYS = {
    "name",
    "description",
    "extends",
    "privacy_tier",
    "api_base",
    "litellm_prefixes",
    "headers",
    "operations",
    "errors",
    "default_provider",
    "discovery",
    "abstract",
    "fragments",
    "gen_ai_provider",
}
_DISCOVERY_KEYS = {"method", "url", "models"}
_OPERATION_KEYS = {
    "method",
    "url",
    "headers",
    "request",
    "response",
    "stream",
    "params",
    "inline_images",
    "response_error",
    "request_format",
}
_STREAM_KEYS = {"framing", "passthrough", "start", "envelope", "event", "update", "done", "error"}
_PARAM_KEYS = {"supported", "dropped", "rejected", "native", "other", "limits", "defaults"}
_ACTIONS = ("pass", "drop", "reject")

REQUEST_VARS = ("request", "deployment")
RESPONSE_VARS = ("response", "request", "deployment")
STREAM_VARS = ("event", "event_type", "state", "request", "deployment")
ERROR_VARS = ("status", "body", "text", "headers", "deployment")


class MappingRegistry:
    """Every loaded provider mapping by name, and the catalog the config importer needs."""

    def __init__(self, providers: dict[str, ProviderMapping], default_provider: str) -> None:
        self.providers = providers
        self.default_provider = default_provider

    def get(self, name: str) -> ProviderMapping | None:
        return self.providers.get(name)

    def catalog(self) -> ProviderCatalog:
        defaults = {
            m.name: ProviderDefaults(m.name, m.privacy_tier, m.api_base, m.prefixes)
            for m in self.providers.values()
        }
        return ProviderCatalog(defaults, self.default_provider)


def load_registry(folders: Path | Sequence[Path]) -> MappingRegistry:
    """Load `<folder>/providers/*.yaml` of every folder, a later folder's file replacing an earlier one's
    of the same name (engine.mapping.folders). Raises MappingLoadError (the first problem found)."""
    raw = provider_trees(folders)
    providers: dict[str, ProviderMapping] = {}
    default_provider = ""
    with compiling_once():  # a section a provider inherits unchanged is compiled once
        for stem in raw:
            if raw[stem].get("abstract") is True:  # a shared base for `extends`, not a provider itself
                continue
            tree = _resolve_extends(stem, raw, ())
            mapping = _build_provider(stem, tree)
            providers[mapping.name] = mapping
            if tree.get("default_provider") is True:
                default_provider = mapping.name
    if not providers:
        where = ", ".join(str(folder / "providers") for folder in as_folders(folders))
        raise MappingLoadError(f"{where}: no provider mappings found")
    return MappingRegistry(providers, default_provider or next(iter(providers)))


def check_folder(
    folders: Path | Sequence[Path], built: Callable[[ProviderMapping, LineDict], None] | None = None
) -> list[str]:
    """Every load error, one per file (empty when all is well). `built` is handed each provider that
    loads, with its tree after `extends`, for the checker (engine.mapping.checks) to read further."""
    problems: list[str] = []
    raw = provider_trees(folders, problems)
    for stem in raw:
        if raw[stem].get("abstract") is True:
            continue
        try:
            tree = _resolve_extends(stem, raw, ())
            mapping = _build_provider(stem, tree, lint=stem not in _extended(raw))
        except MappingLoadError as exc:
            problems.append(str(exc))
        else:
            if built is not None:
                built(mapping, tree)
    return problems


def _resolve_extends(stem: str, raw: dict[str, LineDict], seen: tuple[str, ...]) -> LineDict:
    tree = raw[stem]
    parent_name = tree.get("extends")
    if parent_name is None:
        return tree
    where = f"{tree.file}:{tree.key_lines.get('extends', 1)}"  # type: ignore[attr-defined]
    if parent_name not in raw:
        raise MappingLoadError(f"{where}: extends unknown mapping {parent_name!r}")
    if parent_name in seen or parent_name == stem:
        raise MappingLoadError(f"{where}: extends forms a cycle through {parent_name!r}")
    parent = _resolve_extends(str(parent_name), raw, (*seen, stem))
    merged = _deep_merge(parent, tree)
    # said of one file, never inherited (a mapping that extends another is not that provider)
    for own in ("default_provider", "abstract", "gen_ai_provider"):
        if own not in tree:
            merged.pop(own, None)
    return merged


def _deep_merge(base: LineDict, overlay: LineDict) -> LineDict:
    out = LineDict(base)
    out.line, out.key_lines = overlay.line, {**base.key_lines, **overlay.key_lines}
    out.file = overlay.file  # type: ignore[attr-defined]
    for key, value in overlay.items():
        current = base.get(key)
        if value is None:  # an overlay removes what it does not want from its parent (e.g. a header)
            out.pop(key, None)
        elif isinstance(value, LineDict) and "$replace" in value:  # the opt-out: replace whole
            if len(value) != 1:
                raise fail(value, "$replace", "$replace stands alone: `key: {$replace: <the new value>}`")
            out[key] = value["$replace"]
        elif isinstance(current, LineDict) and isinstance(value, LineDict) and _extends(current, value):
            out[key] = _deep_merge(current, value)
        else:
            out[key] = value
    return out


def _head(tree: LineDict) -> str | None:
    """A construct's head (`$let`, `$switch`, ...), "" for one without (a patch), None for a plain mapping."""
    keys = [str(k) for k in tree if str(k).startswith("$")]
    if not keys:
        return None
    return next((k for k in keys if k in CONSTRUCT_HEADS), "")


def _extends(parent: LineDict, overlay: LineDict) -> bool:
    """Whether `overlay` merges into `parent` key by key: two plain mappings, two constructs of one kind,
    or a construct and a patch of its parts (`$cases`, `$in`, ...). Anything else replaces the parent's."""
    mine, theirs = _head(overlay), _head(parent)
    if mine is None or theirs is None:
        return mine is None and theirs is None
    return mine in ("", theirs)


def _extended(raw: dict[str, LineDict]) -> set[str]:
    """The mappings other files extend."""
    return {str(tree["extends"]) for tree in raw.values() if tree.get("extends") is not None}


def _build_provider(stem: str, tree: LineDict, *, lint: bool = False) -> ProviderMapping:
    """`lint`: also refuse what serving tolerates (a fragment never used), for `turnout mappings check`."""
    with using_fragments(tree, refuse_unused=lint):
        return _provider_of(stem, tree)


def _provider_of(stem: str, tree: LineDict) -> ProviderMapping:
    check_keys(tree, _TOP_KEYS, "a provider mapping")
    name = str(tree.get("name", stem))
    tier = str(tree.get("privacy_tier", "third-party"))
    if tier not in PRIVACY_TIERS:
        raise fail(tree, "privacy_tier", f"privacy_tier must be one of {', '.join(PRIVACY_TIERS)}")
    operations_tree = tree.get("operations")
    if not isinstance(operations_tree, LineDict) or not operations_tree:
        raise fail(tree, "operations", "a provider mapping needs an `operations` mapping")
    provider_headers = tree.get("headers")
    operations = {
        str(op): _build_operation(str(op), spec, operations_tree, provider_headers)
        for op, spec in operations_tree.items()
    }
    prefixes = tree.get("litellm_prefixes", [])
    gen_ai_provider = tree.get("gen_ai_provider")
    if gen_ai_provider is not None and not (isinstance(gen_ai_provider, str) and gen_ai_provider.strip()):
        raise fail(tree, "gen_ai_provider", "gen_ai_provider must be a name, as semconv spells it")
    return ProviderMapping(
        name=name,
        file=str(getattr(tree, "file", stem)),
        description=str(tree.get("description", "")),
        privacy_tier=tier,
        api_base=str(tree["api_base"]).rstrip("/") if tree.get("api_base") else None,
        prefixes=tuple(str(p) for p in prefixes),
        operations=operations,
        errors=compile_optional(tree, "errors", ERROR_VARS),
        headers=_merged_headers(provider_headers, None, tree),
        discovery=_build_discovery(tree["discovery"], tree) if tree.get("discovery") is not None else None,
        gen_ai_provider=gen_ai_provider.strip() if gen_ai_provider is not None else None,
    )


def _build_discovery(spec: Any, parent: LineDict) -> Discovery:
    if not isinstance(spec, LineDict):
        raise fail(parent, "discovery", "`discovery` must be a mapping with url and models")
    check_keys(spec, _DISCOVERY_KEYS, "discovery")
    for required in ("url", "models"):
        if required not in spec:
            raise fail(spec, None, f"discovery needs `{required}`")
    return Discovery(
        method=str(spec.get("method", "GET")).upper(),
        url=compile_key(spec, "url", REQUEST_VARS),
        models=compile_key(spec, "models", RESPONSE_VARS),
    )


def _build_operation(name: str, spec: Any, parent: LineDict, provider_headers: Any) -> Operation:
    if name not in OPERATIONS:
        raise fail(parent, name, f"unknown operation {name!r} (known: {', '.join(OPERATIONS)})")
    if not isinstance(spec, LineDict):
        raise fail(parent, name, f"operation {name!r} must be a mapping")
    check_keys(spec, _OPERATION_KEYS, f"operation {name!r}")
    for required in ("url", "request", "response"):
        if required not in spec:
            raise fail(spec, None, f"operation {name!r} needs `{required}`")
    headers = _merged_headers(provider_headers, spec.get("headers"), spec)
    kind = spec["response"] if spec["response"] in ("passthrough", "raw") else "translated"
    response = compile_key(spec, "response", RESPONSE_VARS) if kind == "translated" else None
    request_format = spec.get("request_format", "json")
    if request_format not in ("json", "multipart"):
        raise fail(spec, "request_format", "request_format must be json or multipart")
    return Operation(
        name=name,
        method=str(spec.get("method", "POST")).upper(),
        url=compile_key(spec, "url", REQUEST_VARS),
        headers=headers,
        request=compile_key(spec, "request", REQUEST_VARS),
        response=response,
        stream=_build_stream(spec["stream"], spec) if "stream" in spec else None,
        params=_build_params(name, spec.get("params"), spec),
        inline_images=bool(spec.get("inline_images", False)),
        response_error=compile_key(spec, "response_error", RESPONSE_VARS)
        if "response_error" in spec
        else None,
        request_format=request_format,
        raw_response=kind == "raw",
    )


def _merged_headers(provider: Any, operation: Any, where: LineDict) -> CompiledSection | None:
    if provider is None and operation is None:
        return None
    merged = LineDict({**(provider or {}), **(operation or {})})
    merged.line = getattr(operation or provider, "line", where.line)
    merged.key_lines = {**getattr(provider, "key_lines", {}), **getattr(operation, "key_lines", {})}
    merged.file = getattr(operation or provider, "file", getattr(where, "file", "?"))  # type: ignore[attr-defined]
    return compile_value(merged, REQUEST_VARS, merged.file, merged.line)  # type: ignore[attr-defined]


def _build_stream(spec: Any, parent: LineDict) -> StreamSpec:
    if not isinstance(spec, LineDict):
        raise fail(parent, "stream", "`stream` must be a mapping")
    check_keys(spec, _STREAM_KEYS, "stream")
    framing = spec.get("framing")
    if framing not in ("sse", "ndjson"):
        raise fail(spec, "framing", "stream framing must be sse or ndjson")
    passthrough = bool(spec.get("passthrough", False))
    if passthrough:
        return StreamSpec(cast(Any, framing), True)
    if "event" not in spec:
        raise fail(spec, None, "a translated stream needs `event` (or `passthrough: true`)")
    step = LineDict(
        {"chunks": spec["event"], "state": spec.get("update", {}), "done": spec.get("done", False)}
    )
    step.line, step.file = spec.line, spec.file  # type: ignore[attr-defined]
    step.key_lines = {
        "chunks": spec.key_lines["event"],
        "state": spec.key_lines.get("update", spec.line),
        "done": spec.key_lines.get("done", spec.line),
    }
    if "envelope" in spec:  # the fields every chunk shares, laid under each (see StreamSpec)
        step["envelope"], step.key_lines["envelope"] = spec["envelope"], spec.key_lines["envelope"]
    return StreamSpec(
        framing=cast(Any, framing),
        passthrough=False,
        start=compile_optional(spec, "start", REQUEST_VARS),
        event=compile_value(step, STREAM_VARS, step.file, spec.key_lines["event"]),  # type: ignore[attr-defined]
        error=compile_optional(spec, "error", STREAM_VARS),
    )


def _names(tree: LineDict, key: str) -> Iterator[str]:
    value = tree.get(key, [])
    if value == "*":
        return iter(())
    if not isinstance(value, list):
        raise fail(tree, key, f"`{key}` must be a list of parameter names")
    return (str(v) for v in value)


def _build_params(operation: str, spec: Any, parent: LineDict) -> ParamPolicy:
    canonical = OPERATIONS[operation].parameters
    if spec is None:
        raise fail(parent, None, f"operation {operation!r} needs `params` accounting for every parameter")
    check_keys(spec, _PARAM_KEYS, "params")
    actions: dict[str, Action] = {}
    everything = spec.get("supported") == "*"
    for name in canonical if everything else _names(spec, "supported"):
        actions[name] = "pass"
    for name in _names(spec, "native"):
        actions[name] = "pass"
    for key, action in (("dropped", "drop"), ("rejected", "reject")):
        for name in _names(spec, key):
            actions[name] = cast(Action, action)
    missing = sorted(canonical - actions.keys())
    if missing:
        raise fail(
            spec, None, f"params leave these {operation} parameters unaccounted for: {', '.join(missing)}"
        )
    other = spec.get("other", "reject")
    if other not in _ACTIONS:
        raise fail(spec, "other", f"`other` must be one of {', '.join(_ACTIONS)}")
    return ParamPolicy(actions, cast(Action, other), _build_limits(spec), plain(spec.get("defaults", {})))


def _build_limits(spec: LineDict) -> dict[str, Limit]:
    limits = {}
    for name, rule in (spec.get("limits") or {}).items():
        if not isinstance(rule, dict) or not set(rule) <= {"min", "max", "clamp", "one_of"}:
            raise fail(spec, "limits", f"limit for {name!r} takes min, max and clamp, or one_of")
        one_of = rule.get("one_of")
        if one_of is not None and not isinstance(one_of, list):
            raise fail(spec, "limits", f"one_of for {name!r} must be a list of values")
        limits[str(name)] = Limit(
            rule.get("min"),
            rule.get("max"),
            bool(rule.get("clamp", False)),
            tuple(plain(one_of)) if one_of is not None else None,
        )
    return limits
