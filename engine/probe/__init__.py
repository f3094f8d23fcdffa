"""`turnout probe`: the same sequence of requests sent to every deployment, so backends can be compared."""

from __future__ import annotations

from engine.probe.command import run_probe
from engine.probe.report import render, write_verdicts
from engine.probe.steps import STEPS, DeploymentReport, Step, Verdict, probe_deployment

__all__ = [
    "STEPS",
    "DeploymentReport",
    "Step",
    "Verdict",
    "probe_deployment",
    "render",
    "run_probe",
    "write_verdicts",
]
