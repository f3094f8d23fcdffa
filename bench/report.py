"""The bench's figures: medians over rounds, the markdown table, and the targets they are checked against."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Row", "build_rows", "markdown"]

Result = dict[str, Any]
Extract = Callable[[Result], float | None]

# Scenario prefix -> row label, in table order. The translated backends after Ollama appear only when
# measured (run.py skips one whose mapping file is absent).
DEPLOYMENT_NAMES = (
    ("openai", "OpenAI pass-through"),
    ("ollama", "Ollama translated"),
    ("anthropic", "Anthropic translated"),
    ("gemini", "Gemini translated"),
)
ALWAYS_SHOWN = ("openai", "ollama")


@dataclass(frozen=True)
class Row:
    scenario: str
    unit: str
    direct: float | None
    through: float | None
    added: float | None
    target: str
    met: bool | None

    @property
    def ratio(self) -> float | None:
        if self.direct and self.through is not None:
            return self.through / self.direct
        return None


def _stat(section: str, key: str) -> Extract:
    def extract(result: Result) -> float | None:
        values = result.get(section) or {}
        value = values.get(key)
        return float(value) if value is not None else None

    return extract


def _field(key: str) -> Extract:
    def extract(result: Result) -> float | None:
        value = result.get(key)
        return float(value) if value is not None else None

    return extract


def _median(records: list[Result], scenario: str, target: str, extract: Extract) -> float | None:
    values = [
        value
        for record in records
        if record["scenario"] == scenario and record["target"] == target
        if (value := extract(record["result"])) is not None
    ]
    return statistics.median(values) if values else None


def _latency_row(
    records: list[Result], label: str, scenario: str, extract: Extract, limit: float | None
) -> Row:
    direct = _median(records, scenario, "direct", extract)
    through = _median(records, scenario, "turnout", extract)
    added = through - direct if direct is not None and through is not None else None
    met = added < limit if limit is not None and added is not None else None
    target = f"added < {limit:g} ms" if limit is not None else ""
    return Row(label, "ms", direct, through, added, target, met)


def _deployment_rows(records: list[Result], prefix: str, name: str) -> list[Row]:
    c1, c32, stream = f"{prefix}_chat_c1", f"{prefix}_chat_c32", f"{prefix}_stream_c1"
    rps_direct = _median(records, c32, "direct", _field("rps"))
    rps_through = _median(records, c32, "turnout", _field("rps"))
    cpu = _median(records, c32, "turnout", _field("cpu_ms_per_request"))
    return [
        _latency_row(records, f"{name}: chat c=1 p50", c1, _stat("latency_ms", "p50"), 1.0),
        _latency_row(records, f"{name}: chat c=1 p99", c1, _stat("latency_ms", "p99"), None),
        Row(
            f"{name}: chat c=32 throughput",
            "req/s",
            rps_direct,
            rps_through,
            None,
            ">= 1,000 req/s",
            rps_through >= 1000 if rps_through is not None else None,
        ),
        _latency_row(records, f"{name}: chat c=32 p50", c32, _stat("latency_ms", "p50"), None),
        _latency_row(
            records, f"{name}: stream c=1 first chunk p50", stream, _stat("first_chunk_ms", "p50"), 2.0
        ),
        _latency_row(
            records, f"{name}: stream c=1 first chunk p99", stream, _stat("first_chunk_ms", "p99"), None
        ),
        _latency_row(
            records, f"{name}: stream c=1 whole stream p50", stream, _stat("latency_ms", "p50"), None
        ),
        Row(f"{name}: Turnout CPU per request, c=32", "ms", None, cpu, None, "", None),
    ]


# events in the mock's stream, as Turnout passes them on: 20 content chunks, the finish chunk, [DONE]
PACED_EVENTS = 22


def _paced_rows(records: list[Result]) -> list[Row]:
    """The pass-through stream paced one event per 5 ms: its time, and Turnout's CPU per chunk."""
    scenario = "paced_stream_c1"
    cpu = _median(records, scenario, "turnout", _field("cpu_ms_per_request"))
    per_chunk = cpu / PACED_EVENTS if cpu is not None else None
    return [
        _latency_row(
            records, "paced stream c=1 whole stream p50", scenario, _stat("latency_ms", "p50"), None
        ),
        Row("paced stream c=1: Turnout CPU per request", "ms", None, cpu, None, "", None),
        Row("paced stream c=1: Turnout CPU per chunk", "ms", None, per_chunk, None, "", None),
    ]


def build_rows(records: list[Result], process: dict[str, Any]) -> list[Row]:
    """Table rows from load results ({scenario, target, round, result}) and process figures."""
    rows: list[Row] = []
    for prefix, name in DEPLOYMENT_NAMES:
        measured = any(record["scenario"].startswith(f"{prefix}_") for record in records)
        if measured or prefix in ALWAYS_SHOWN:
            rows += _deployment_rows(records, prefix, name)
    if any(record["scenario"].startswith("paced_") for record in records):
        rows += _paced_rows(records)
    rss = process.get("rss_mb")
    rows.append(Row("Turnout RSS after load", "MB", None, rss, None, "< 100 MB", rss < 100 if rss else None))
    rows.append(Row("Turnout start to /health", "s", None, process.get("start_s"), None, "", None))
    return rows


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "req/s" or abs(value) >= 100:
        return f"{value:,.0f}"
    if unit == "ms" and abs(value) < 10:
        return f"{value:.3f}"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def markdown(rows: list[Row]) -> str:
    lines = [
        "| scenario | unit | direct to mock | through Turnout | added | ratio | target |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        added = "—" if row.added is None else ("+" if row.added >= 0 else "") + _number(row.added, row.unit)
        ratio = "—" if row.ratio is None else f"{row.ratio:.2f}x"
        verdict = "" if row.met is None else (" ✓" if row.met else " ✗")
        lines.append(
            f"| {row.scenario} | {row.unit} | {_number(row.direct, row.unit)} | "
            f"{_number(row.through, row.unit)} | {added} | {ratio} | {row.target}{verdict} |"
        )
    return "\n".join(lines)
