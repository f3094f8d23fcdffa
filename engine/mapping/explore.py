"""One section of one provider mapping, for its author: found by name, shown, and run on a fixture.

`turnout mappings show PROVIDER OPERATION SECTION` and `turnout mappings eval ... --input FILE.json`
use it. A section is named as in the mapping file: `url`, `headers`, `request`, `response`,
`response_error`, `stream` (the whole stream: `start`, then `event` with `update` and `done` for each
event), `stream.start`, `stream.event`, `stream.error`; and, with `errors` or `discovery` in place of
the operation, `errors` and `discovery.url` / `discovery.models`. What is shown is the section as the
provider has it after `extends`, which is what was compiled.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from engine.mapping.compiler import CompiledSection, authoring
from engine.mapping.framing import DONE, decoder_for
from engine.mapping.loader import check_folder
from engine.mapping.runtime import MISSING, MappingRejected, MappingRuntimeError
from engine.mapping.spec import ProviderMapping
from engine.mapping.yaml_lines import LineDict, plain

__all__ = [
    "ExploreError",
    "Found",
    "evaluate_section",
    "find_section",
    "read_input",
    "show_section",
    "to_json",
]


class ExploreError(Exception):
    """What went wrong, said in one line for the command to print."""


@dataclass(frozen=True, slots=True)
class Found:
    """A section found by name: its compiled function(s), its YAML after `extends`, where it is."""

    provider: ProviderMapping
    operation: str  # "chat", ...; or "errors", "discovery"
    name: str  # "request", "stream", "discovery.models", ...
    tree: Any  # the YAML of the section (for `stream`, the stream mapping)
    where: str  # file:line
    sections: dict[str, CompiledSection]  # one, or for `stream` its start, event and error


def find_section(folder: Path | Sequence[Path], provider: str, operation: str, section: str | None) -> Found:
    mapping, tree = _load(folder, provider)
    if operation in ("errors", "discovery"):
        return _provider_level(mapping, tree, operation, section)
    spec = mapping.operations.get(operation)
    if spec is None:
        raise ExploreError(
            f"{provider} has no operation {operation!r} (it has: {', '.join(mapping.operations)})"
        )
    op_tree = tree["operations"][operation]
    stream = spec.stream if spec.stream is not None and not spec.stream.passthrough else None
    candidates: dict[str, CompiledSection | None] = {
        "url": spec.url,
        "headers": spec.headers,
        "request": spec.request,
        "response": spec.response,
        "response_error": spec.response_error,
        "stream.start": stream.start if stream else None,
        "stream.event": stream.event if stream else None,
        "stream.error": stream.error if stream else None,
    }
    available = [name for name, value in candidates.items() if value is not None]
    if stream is not None:  # the whole stream, before its parts
        available.insert(next(i for i, name in enumerate(available) if name.startswith("stream.")), "stream")
    if section not in available:
        said = f"has no section {section!r}; it has" if section else "has the sections"
        raise ExploreError(f"{provider} {operation} {said}: {', '.join(available)}")
    if section == "stream" and stream is not None:
        parts = {
            k: v for k, v in (("start", stream.start), ("event", stream.event), ("error", stream.error)) if v
        }
        return Found(mapping, operation, section, op_tree["stream"], _where(op_tree, "stream"), parts)
    compiled = candidates[section]
    assert compiled is not None
    if section == "stream.event":
        shown = {
            key: op_tree["stream"][key] for key in ("event", "update", "done") if key in op_tree["stream"]
        }
    elif section.startswith("stream."):
        shown = op_tree["stream"][section.removeprefix("stream.")]
    elif section == "headers":
        shown = {**(tree.get("headers") or {}), **(op_tree.get("headers") or {})}
    else:
        shown = op_tree[section]
    return Found(mapping, operation, section, shown, compiled.where, {section: compiled})


def _provider_level(mapping: ProviderMapping, tree: LineDict, operation: str, section: str | None) -> Found:
    if operation == "errors":
        if mapping.errors is None:
            raise ExploreError(f"{mapping.name} has no `errors` section")
        if section not in (None, "errors"):
            raise ExploreError("`errors` is one section: leave SECTION out (or write errors)")
        return Found(
            mapping, operation, "errors", tree["errors"], mapping.errors.where, {"errors": mapping.errors}
        )
    if mapping.discovery is None:
        raise ExploreError(f"{mapping.name} has no `discovery` section")
    sections = {"discovery.url": mapping.discovery.url, "discovery.models": mapping.discovery.models}
    name = section if section in sections else f"discovery.{section}"
    if name not in sections:
        raise ExploreError("discovery's sections: url, models")
    compiled = sections[name]
    shown = tree["discovery"][name.removeprefix("discovery.")]
    return Found(mapping, operation, name, shown, compiled.where, {name: compiled})


def _load(folder: Path | Sequence[Path], provider: str) -> tuple[ProviderMapping, LineDict]:
    loaded: dict[str, tuple[ProviderMapping, LineDict]] = {}

    def keep(mapping: ProviderMapping, tree: LineDict) -> None:
        loaded[mapping.name] = (mapping, tree)

    with authoring():  # the sections keep their generated Python, for `show --python`
        problems = check_folder(folder, keep)
    if provider not in loaded:
        own = [p for p in problems if f"/{provider}.yaml" in p.replace("\\", "/")]
        if own:
            raise ExploreError(own[0])
        raise ExploreError(
            f"no provider mapping named {provider!r} in {folder} (there are: {', '.join(sorted(loaded))})"
        )
    return loaded[provider]


def _where(tree: LineDict, key: str) -> str:
    return f"{getattr(tree, 'file', '?')}:{tree.key_lines.get(key, tree.line)}"


def show_section(found: Found, python: bool = False) -> str:
    """The section as text: a heading naming it, its variables and where it is, then its YAML after
    `extends` (or, with `python`, the function it compiled into)."""
    name = found.name.removeprefix(f"{found.operation}.")
    lines = [f"# {found.provider.name} {found.operation} {name}, from {found.where}"]
    for name, compiled in found.sections.items():
        label = "" if len(found.sections) == 1 else f"{name}: "
        lines.append(
            f"# {label}({', '.join(compiled.variables)}) -> {_RESULT.get(name.split('.')[-1], 'a value')}"
        )
    if python:
        for name, compiled in found.sections.items():
            lines.append(f"# --- {name}, the generated Python (`# L<n>`: YAML line n)")
            lines.append(compiled.source.rstrip())
        return "\n".join(lines) + "\n"
    body = yaml.dump(plain(found.tree), Dumper=_Dumper, sort_keys=False, width=110, allow_unicode=True)
    return "\n".join(lines) + "\n" + body


class _Dumper(yaml.SafeDumper):
    """YAML as a person writes it: expressions in double quotes when they hold single ones, several
    lines as a block."""


def _text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else '"' if "'" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _text)

_RESULT = {
    "url": "the upstream URL",
    "headers": "the upstream request's headers",
    "request": "the upstream request body",
    "response": "the canonical answer",
    "response_error": "an error, when a 200 answer is really one",
    "start": "the stream's first state",
    "event": "{chunks, state, done} for one upstream event",
    "error": "an in-band error, when truthy",
    "errors": "{message, code, param, retry_after}",
    "models": "the upstream model names",
}


def evaluate_section(found: Found, given: Any, stream: bytes | None = None) -> Any:
    """Run the section on `given` (a JSON object holding its variables by name; absent ones are
    absent, `deployment` gets placeholders). A `stream` runs `start`, then each of `events` in turn
    (with `event_types` beside them, for SSE event names), and gives each step's result; `stream`, the
    upstream's stream as it comes over the wire, gives the events instead."""
    if not isinstance(given, dict):
        raise ExploreError("the input must be a JSON object with the section's variables by name")
    if stream is not None:
        if found.name != "stream":
            raise ExploreError("--stream feeds the `stream` section; name it as SECTION")
        given = {**given, **_events(found, stream)}
    deployment = {
        "model": "upstream-model",
        "alias": "alias",
        "provider": found.provider.name,
        "api_base": found.provider.api_base or MISSING,
        "params": {},
        "capabilities": {},
        **(given.get("deployment") or {}),
    }
    values = {**given, "deployment": deployment}
    if found.name != "stream":
        ((_, compiled),) = found.sections.items()
        return _run(compiled, values)
    return _run_stream(found.sections, values)


def _events(found: Found, stream: bytes) -> dict[str, list[Any]]:
    """The events of an upstream stream, framed as the operation's stream says, up to `[DONE]`."""
    spec = found.provider.operations[found.operation].stream
    assert spec is not None
    decoder = decoder_for(spec.framing)
    events: list[Any] = []
    types: list[str | None] = []
    for raw in (*decoder.feed(stream), *decoder.close()):
        if raw.data == DONE.encode():
            break
        try:
            events.append(json.loads(raw.data))
        except ValueError:
            raise ExploreError(f"event {len(events)} of the stream is not JSON: {raw.data[:80]!r}") from None
        types.append(raw.event_type)
    return {"events": events, "event_types": types}


def _run_stream(sections: dict[str, CompiledSection], values: dict[str, Any]) -> list[dict[str, Any]]:
    events = values.get("events")
    types = values.get("event_types") or []
    if not isinstance(events, list) or not isinstance(types, list):
        raise ExploreError(
            "a stream's input needs `events`: a list of upstream events (and `event_types` beside)"
        )
    state = dict(_run(sections["start"], values) or {}) if "start" in sections else {}
    state.update(values.get("state") or {})
    results = []
    for number, event in enumerate(events):
        step_values = {**values, "event": event, "event_type": types[number] if number < len(types) else None}
        step_values["state"] = state
        if "error" in sections:
            problem = _run(sections["error"], step_values)
            if problem not in (None, MISSING, False, "", {}, []):
                results.append({"event": number, "error": problem})
                break
        step = _run(sections["event"], step_values) or {}
        state = {**state, **(step.get("state") or {})}
        chunks = step.get("chunks") or []
        chunks = [chunks] if isinstance(chunks, dict) else chunks
        envelope = step.get("envelope")
        if envelope:  # the chunks as the gateway sends them: each laid over the stream's `envelope`
            chunks = [{**envelope, **chunk} for chunk in chunks]
        results.append(
            {
                "event": number,
                "chunks": chunks,
                "state": state,
                "done": bool(step.get("done")),
            }
        )
    return results


def _run(compiled: CompiledSection, values: dict[str, Any]) -> Any:
    args = [values.get(name, MISSING) for name in compiled.variables]
    try:
        return compiled(*args)
    except MappingRejected as exc:
        raise ExploreError(f"the mapping refused the request: {exc.detail}") from None
    except MappingRuntimeError as exc:
        raise ExploreError(str(exc)) from None


def read_stream(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ExploreError(f"{path}: {exc.strerror or exc}") from None


def read_input(path: Path | None) -> Any:
    if path is None:
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ExploreError(f"{path}: {exc.strerror or exc}") from None
    except (ValueError, RecursionError) as exc:
        raise ExploreError(f"{path}: not valid JSON: {exc}") from None


def to_json(value: Any) -> str:
    """The result as JSON; an absent value as null."""
    return json.dumps(None if value is MISSING else value, indent=2, ensure_ascii=False, default=_absent)


def _absent(value: Any) -> Any:
    if value is MISSING:
        return None
    raise TypeError(f"{type(value).__name__} is not JSON")
