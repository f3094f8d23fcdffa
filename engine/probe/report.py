"""The probe's report: the comparison table, and writing verified capabilities back to SQL."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from engine.probe.steps import STEPS, DeploymentReport, Verdict
from engine.redact import GENERIC, Redactor
from engine.routing.table import Deployment
from engine.store.base import utcnow
from engine.store.models import CapabilityRow, DeploymentRow

__all__ = ["render", "write_notice", "write_verdicts"]


# ---- the report -----------------------------------------------------------------------------------


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _cell(verdict: Verdict) -> str:
    if verdict.supported is True:
        return f"✓ {_duration(verdict.seconds)}".rstrip()
    if verdict.supported is False:
        return f"✗ {verdict.reason}"
    return f"- {verdict.reason}" if verdict.reason == "skipped" else f"? {verdict.reason}"


def _redact(text: str, deployment: Deployment, redactor: Redactor) -> str:
    """Error texts come from the backend: never let them echo a credential or the deployment's address."""
    if deployment.api_base:
        text = text.replace(deployment.api_base, "<api_base>")
    return redactor.text(text)


def _aligned(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def render(reports: Sequence[DeploymentReport], redactor: Redactor = GENERIC) -> str:
    """The comparison table, the errors behind each failure, and a legend."""
    header = ["alias", "deployment", "tier", *(step.name for step in STEPS)]
    rows = [
        [r.deployment.alias, r.label, r.deployment.privacy_tier, *(_cell(r.verdicts[s.name]) for s in STEPS)]
        for r in reports
    ]
    lines = _aligned([header, *rows])
    details = [
        f"  {r.deployment.alias} {r.label} {name}: {_redact(verdict.detail, r.deployment, redactor)[:300]}"
        for r in reports
        for name, verdict in r.verdicts.items()
        if verdict.detail
    ]
    if details:
        lines += ["", "Why:", *details]
    lines += [
        "",
        "✓ supported, in the time to the whole answer (streaming: to the first chunk)  ✗ not supported",
        "? inconclusive, try again later  - skipped, since the chat step failed",
    ]
    return "\n".join(lines)


# ---- writing back ---------------------------------------------------------------------------------


def _flag(value: bool | None) -> str:
    return "unset" if value is None else str(value).lower()


def _apply(row: DeploymentRow, report: DeploymentReport) -> list[str]:
    """Set the row's capability columns to the conclusive verdicts; the changes, as text."""
    if row.capability is None:
        row.capability = CapabilityRow(extra={})
    changes = []
    for step in STEPS:
        verdict = report.verdicts[step.name]
        if step.column is None or verdict.supported is None:
            continue
        old = getattr(row.capability, step.column)
        if old != verdict.supported:
            setattr(row.capability, step.column, verdict.supported)
            changes.append(f"{step.column} {_flag(old)} -> {_flag(verdict.supported)}")
    if changes:
        row.updated_at = utcnow()
    return changes


async def write_verdicts(
    sessions: async_sessionmaker[AsyncSession], reports: Iterable[DeploymentReport]
) -> list[str]:
    """Store the conclusive verdicts in the capability rows, in one transaction; one line per deployment."""
    by_id = {report.deployment.id: report for report in reports if report.conclusive}
    lines = []
    async with sessions() as session, session.begin():
        rows = await session.scalars(
            select(DeploymentRow)
            .where(DeploymentRow.id.in_(by_id))
            .options(selectinload(DeploymentRow.capability))
            .order_by(DeploymentRow.id)
        )
        for row in rows:
            report = by_id[row.id]
            changes = _apply(row, report)
            lines.append(f"  {report.deployment.alias} {report.label}: {', '.join(changes) or 'unchanged'}")
    return lines


def _model_info(report: DeploymentReport) -> str:
    flags = [
        f"{step.model_info}: {_flag(report.verdicts[step.name].supported)}"
        for step in STEPS
        if step.model_info is not None and report.verdicts[step.name].supported is not None
    ]
    return f"  {report.deployment.alias} ({report.label}): model_info: {{{', '.join(flags)}}}"


def write_notice(reports: Sequence[DeploymentReport], lines: list[str]) -> str:
    if not lines:
        return "Nothing written: no probed deployment answered the chat step."
    return "\n".join(
        [
            "Written to SQL (capability rows):",
            *lines,
            "A gateway builds its routing table from SQL at its next start or reload. Re-importing a config "
            "keeps these flags unless the file states them; the same flags for the config file:",
            *(_model_info(report) for report in reports if report.conclusive),
        ]
    )
