"""What a request may cost, estimated before it is sent: the amount a key with a budget sets aside.

    prompt tokens   ceil(characters / 4) of the request (engine.pipeline.tokens), as for other estimates
    output tokens   the request's `max_completion_tokens` or `max_tokens`, else the deployment's
                    `max_output_tokens`, else DEFAULT_OUTPUT_CAP; times `n` (choices asked for)
    other units     as the answer would be priced (engine.pipeline.costs): images by the request's `n`,
                    speech by its characters, a rerank's search units by its documents; audio seconds are
                    not known before: nothing

priced at each deployment of the alias, and the most of them is the reservation. An alias with no
prices reserves nothing (its requests are free, or their cost is not known). The estimate is a bound
only as good as its counts: a prompt with more tokens than characters / 4, an answer longer than the
cap, or a fallback to a dearer alias can cost more than was set aside.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from engine.canonical import OPERATIONS
from engine.pipeline.costs import cost_of
from engine.pipeline.tokens import estimate_prompt_tokens
from engine.routing.table import Alias, Deployment

__all__ = ["DEFAULT_OUTPUT_CAP", "reservation"]

DEFAULT_OUTPUT_CAP = 4096  # output tokens assumed when neither the request nor the deployment says
_NOTHING = Decimal(0)


def reservation(operation: str, request: Mapping[str, Any], alias: Alias) -> Decimal:
    """The most `request` may cost at any deployment of `alias` (0 when none has prices)."""
    priced = [deployment for deployment in alias.deployments if deployment.costs]
    if not priced:
        return _NOTHING
    kind = OPERATIONS[operation]
    prompt = estimate_prompt_tokens(dict(request)) if kind.counts_tokens else 0
    most = _NOTHING
    for deployment in priced:
        answer = None
        if kind.counts_tokens:
            output = _output_tokens(request, deployment) if kind.generates else 0
            answer = {"usage": {"prompt_tokens": prompt, "completion_tokens": output}}
        cost = cost_of(deployment.costs, operation, request, answer)
        if cost is not None and cost > most:
            most = cost
    return most


def _output_tokens(request: Mapping[str, Any], deployment: Deployment) -> int:
    cap = _count(request.get("max_completion_tokens")) or _count(request.get("max_tokens"))
    if cap is None:
        cap = deployment.capabilities.max_output_tokens or DEFAULT_OUTPUT_CAP
    return cap * (_count(request.get("n")) or 1)


def _count(value: Any) -> int | None:
    """A positive integer count, else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
