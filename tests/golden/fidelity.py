"""The fidelity matrix (docs/fidelity.md): provider x feature, from what the golden suite holds.

Nothing here is written by hand: a cell comes from the suite's own data, which its tests verify.

- chat features: each provider's backend.yaml (`not_applicable`, `refused`) and, for every other
  scenario, the snapshots test_golden.py compares against;
- embeddings, completions and rerank: `fixtures/<provider>/operations/<operation>/backend.yaml` and the
  snapshots of test_golden_operations.py;
- audio and images: `operations/audio_images.backend.yaml` (its `refused` list) and the snapshots of
  test_golden_audio_images.py;
- inbound dialects: the snapshots of the dialect suites (a 400 with nothing sent upstream is a refusal);
- discovery: the mappings themselves (a `discovery` section), the one column no golden scenario covers.

Run `make fidelity` (or `python -m tests.golden.fidelity`) to write docs/fidelity.md again; a test
fails while the committed page differs from what this renders.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from engine.mapping.loader import load_registry
from engine.settings import project_path

__all__ = ["PAGE", "render", "write"]

GOLDEN = Path(__file__).parent
SNAPSHOTS = GOLDEN / "snapshots"
PAGE = GOLDEN.parents[1] / "docs" / "fidelity.md"

PASS, REFUSED, NA, UNCOVERED, PARTIAL = "✅", "400", "n/a", "·", "✅ / 400"
# each chat feature and the golden scenarios that show it
CHAT_FEATURES = {
    "chat": ("simple", "system", "multi_turn", "stop"),
    "stream": ("stream_text",),
    "tools": ("tools", "tool_choice", "tool_results"),
    "streamed tools": ("stream_tools",),
    "parallel tools": ("parallel_tools",),
    "vision": ("vision",),
    "reasoning": ("reasoning", "stream_reasoning", "think_param"),
    "JSON mode": ("json_mode",),
    "JSON schema": ("json_schema",),
    "upstream errors": (
        "error_400",
        "error_401",
        "error_404",
        "error_429",
        "error_500",
        "error_529",
        "error_context_length",
        "error_midstream",
    ),
}
OPERATIONS = ("embeddings", "completions", "rerank")
AUDIO = ("transcriptions", "translations", "speech")
DIALECTS = {"Anthropic Messages in": "anthropic", "Responses in": "responses"}


@dataclass(frozen=True)
class Case:
    """One golden case's outcome: PASS, REFUSED, NA or UNCOVERED, and why when it is not a pass."""

    scenario: str
    status: str
    reason: str = ""


def _yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) if path.exists() else None
    return data if isinstance(data, dict) else {}


def _snapshotted(folder: Path, stem: str) -> bool:
    return any((folder / f"{stem}.{kind}.json").exists() for kind in ("response", "stream"))


def _chat_cases(provider: str, scenarios: Iterable[str]) -> list[Case]:
    spec = _yaml(GOLDEN / "fixtures" / provider / "backend.yaml")
    if not spec:
        return []
    not_applicable, refused = spec.get("not_applicable") or {}, spec.get("refused") or {}
    cases = []
    for name in scenarios:
        if name in not_applicable:
            cases.append(Case(name, NA, " ".join(str(not_applicable[name]).split())))
        elif name in refused:
            cases.append(Case(name, REFUSED, " ".join(str(refused[name]).split())))
        elif _snapshotted(SNAPSHOTS / provider, name):
            cases.append(Case(name, PASS))
        else:
            cases.append(Case(name, UNCOVERED, "no snapshot"))
    return cases


def _operation_cases(provider: str, operation: str) -> list[Case]:
    if not (GOLDEN / "fixtures" / provider / "operations" / operation / "backend.yaml").exists():
        return []
    scenarios = sorted(p.stem for p in (GOLDEN / "operations" / operation / "scenarios").glob("*.yaml"))
    return [
        Case(name, PASS if _snapshotted(SNAPSHOTS / provider, f"{operation}.{name}") else UNCOVERED)
        for name in scenarios
    ]


def _audio_image_cases(provider: str, operations: Iterable[str]) -> list[Case]:
    spec = _yaml(GOLDEN / "fixtures" / provider / "operations" / "audio_images.backend.yaml")
    if not spec:
        return []
    refused = spec.get("refused") or {}
    cases = []
    for operation in operations:
        for path in sorted((GOLDEN / "operations" / operation).glob("*.yaml")):
            name = f"{operation}/{path.stem}"
            if not _snapshotted(SNAPSHOTS / provider / "operations" / operation, path.stem):
                cases.append(Case(name, UNCOVERED, "no snapshot"))
            elif name in refused:
                cases.append(Case(name, REFUSED, " ".join(str(refused[name]).split())))
            else:
                cases.append(Case(name, PASS))
    return cases


def _dialect_cases(dialect: str, backend: str) -> list[Case]:
    folder = SNAPSHOTS / f"dialect-{dialect}" / backend
    if not folder.is_dir():
        return []
    cases = []
    for path in sorted((GOLDEN / "dialects" / dialect).glob("*.yaml")):
        name = path.stem
        answer = folder / f"{name}.response.json"
        sent_nothing = not (folder / f"{name}.request.json").exists()
        if not _snapshotted(folder, name):
            cases.append(Case(name, UNCOVERED, "no snapshot"))
        elif sent_nothing and json.loads(answer.read_text()).get("status") == 400:
            cases.append(Case(name, REFUSED, str(_yaml(path).get("description", ""))))
        else:
            cases.append(Case(name, PASS))
    return cases


def _cell(cases: list[Case]) -> str:
    """A feature's cell from its cases: not applicable ones count only when all are."""
    if not cases:
        return UNCOVERED
    counted = {case.status for case in cases if case.status != NA}
    if not counted:
        return NA
    if UNCOVERED in counted:
        return UNCOVERED
    if counted == {PASS}:
        return PASS
    return REFUSED if counted == {REFUSED} else PARTIAL


def _providers() -> list[str]:
    folders = sorted(p.name for p in (GOLDEN / "fixtures").iterdir() if p.is_dir())
    return [name for name in folders if (GOLDEN / "fixtures" / name / "backend.yaml").exists()] + [
        name for name in folders if not (GOLDEN / "fixtures" / name / "backend.yaml").exists()
    ]


def _rows() -> tuple[list[str], list[list[str]], list[str]]:
    """The header, one row of cells per provider, and the notes on cells that are not plain passes."""
    discovery = {name: mapping.discovery is not None for name, mapping in _registry().providers.items()}
    header = ["provider", *CHAT_FEATURES, *OPERATIONS, "audio", "images", "discovery", *DIALECTS]
    rows, notes = [], []
    for provider in _providers():
        columns: dict[str, list[Case]] = {
            feature: _chat_cases(provider, scenarios) for feature, scenarios in CHAT_FEATURES.items()
        }
        columns.update({operation: _operation_cases(provider, operation) for operation in OPERATIONS})
        columns["audio"] = _audio_image_cases(provider, AUDIO)
        columns["images"] = _audio_image_cases(provider, ("images",))
        cells = [f"**{provider}**"]
        for feature, cases in columns.items():
            cell = _cell(cases)
            cells.append(cell)
            if cell in (NA, REFUSED, PARTIAL):
                notes += [
                    f"- **{provider}**, {feature}: `{case.scenario}` {_word(case.status)}: {case.reason}"
                    for case in cases
                    if case.status in (NA, REFUSED)
                ]
        cells.append(PASS if discovery.get(provider) else NA)
        for title, dialect in DIALECTS.items():
            cases = _dialect_cases(dialect, provider)
            cells.append(_cell(cases))
            notes += [
                f"- **{provider}**, {title}: `{case.scenario}` {_word(case.status)}: {case.reason}"
                for case in cases
                if case.status == REFUSED
            ]
        rows.append(cells)
    return header, rows, notes


def _registry() -> Any:
    return load_registry(project_path("mappings"))


def _word(status: str) -> str:
    return {NA: "not applicable", REFUSED: "refused with a 400"}[status]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _dialect_tables() -> list[str]:
    lines: list[str] = []
    for title, dialect in DIALECTS.items():
        backends = sorted(p.name for p in (SNAPSHOTS / f"dialect-{dialect}").iterdir() if p.is_dir())
        by_backend = {
            backend: {c.scenario: c for c in _dialect_cases(dialect, backend)} for backend in backends
        }
        rows = []
        for path in sorted((GOLDEN / "dialects" / dialect).glob("*.yaml")):
            description = " ".join(str(_yaml(path).get("description", "")).split()).replace("|", "\\|")
            rows.append([f"`{path.stem}`", *(by_backend[b][path.stem].status for b in backends), description])
        lines += ["", f"### {title} (`tests/golden/dialects/{dialect}/`)", ""]
        lines += _table(["scenario", *backends, "what it shows"], rows)
    return lines


LEGEND = """\
| cell | meaning |
|---|---|
| ✅ | every golden scenario of the feature passes: snapshots pin the exact upstream request and answer |
| 400 | Turnout refuses the feature with a 400, sending nothing upstream; a golden test checks it |
| ✅ / 400 | some scenarios of the feature pass, others are refused with a 400 (see the notes) |
| n/a | the backend cannot serve the feature; its backend.yaml says why (see the notes) |
| · | no golden scenario covers this provider and feature (the mapping may still serve it) |

A feature's scenarios are: chat `simple`, `system`, `multi_turn`, `stop`; stream `stream_text`; tools
`tools`, `tool_choice`, `tool_results`; streamed tools `stream_tools`; parallel tools `parallel_tools`;
vision `vision`; reasoning `reasoning`, `stream_reasoning`, `think_param`; JSON mode `json_mode`;
JSON schema `json_schema`; upstream errors the `error_*` scenarios (those a backend can never send are
not applicable and do not count against it); embeddings, completions and rerank every scenario under
`tests/golden/operations/<operation>/scenarios/`; audio the transcription, translation and speech
scenarios; images the image generation scenarios. The inbound dialect columns show whether the dialect's
scenarios pass in front of that backend (tables below). Discovery is the one column no golden scenario
covers: ✅ means the provider's mapping has a `discovery` section (Turnout lists the backend's models,
`GET /v1/models?include_discovered=true`, tested end to end in tests/e2e/test_discovery.py), n/a that
it has none."""


def render() -> str:
    header, rows, notes = _rows()
    lines = [
        "# Fidelity matrix",
        "",
        "<!-- generated by `make fidelity` (python -m tests.golden.fidelity) from the golden suite; "
        "do not edit by hand -->",
        "",
        "What each provider mapping is proven to do, provider by feature, from the golden suite"
        " (`tests/golden/`): each cell sums up the golden scenarios of that feature for that provider.",
        "",
        *_table(header, rows),
        "",
        "## Legend",
        "",
        LEGEND,
        "",
        "## Inbound dialects",
        *_dialect_tables(),
        "",
        "## Notes",
        "",
        *notes,
    ]
    return "\n".join(lines) + "\n"


def write() -> Path:
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(render())
    return PAGE


if __name__ == "__main__":
    print(f"wrote {write()}")
