"""Test connection and Fetch models for a deployment that may not be saved yet.

Test connection runs `turnout probe`'s sequence (engine/probe/steps.py: chat, tools, vision,
reasoning, streaming) on the deployment, straight through the pipeline. Whatever an upstream answers
is redacted before it is shown, with the deployment's own key too: an unsaved key is not yet among the
gateway's known credentials.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.gateway import Gateway
from engine.probe.steps import probe_deployment
from engine.redact import Redactor, credentials_of
from engine.routing.table import Alias, Deployment, RoutingTable

__all__ = ["PROBE_TIMEOUT", "StepResult", "fetch_models", "run_connection_test"]

PROBE_TIMEOUT = 20.0  # seconds per step: an operator waits for the whole table


@dataclass(frozen=True, slots=True)
class StepResult:
    step: str
    outcome: str  # pass | fail | skipped (after a failed chat step)
    milliseconds: int | None
    reason: str
    detail: str


def _redactor(gateway: Gateway, deployment: Deployment) -> Redactor:
    alone = RoutingTable(aliases={deployment.alias: Alias(deployment.alias, (deployment,))})
    return Redactor(credentials_of(alone, gateway.settings.master_key, gateway.settings.salt_key))


def _clean(text: str, gateway: Gateway, own: Redactor) -> str:
    return own.text(gateway.redactor.text(text))[:2000]


async def run_connection_test(gateway: Gateway, deployment: Deployment) -> list[StepResult]:
    report = await probe_deployment(gateway.attempts, deployment, PROBE_TIMEOUT)
    own = _redactor(gateway, deployment)
    results = []
    for step, verdict in report.verdicts.items():
        skipped = verdict.reason == "skipped"
        reason = verdict.reason
        if verdict.supported is None and not skipped:  # a timeout, 408/429/5xx: says nothing of the feature
            reason += " (may pass on another try)"
        results.append(
            StepResult(
                step=step,
                outcome="skipped" if skipped else ("pass" if verdict.supported else "fail"),
                milliseconds=None if verdict.seconds is None else round(verdict.seconds * 1000),
                reason=_clean(reason, gateway, own),
                detail=_clean(verdict.detail, gateway, own),
            )
        )
    return results


async def fetch_models(gateway: Gateway, deployment: Deployment) -> tuple[list[str], str | None]:
    """The names the backend lists (each once, in its order), or the reason it could not be asked."""
    report = await gateway.discovery.ask(deployment)
    if report.models is None:
        return [], _clean(report.error or "no answer", gateway, _redactor(gateway, deployment))
    return list(dict.fromkeys(report.models)), None
