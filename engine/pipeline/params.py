"""Parameter precedence and policy, applied before a mapping sees the request.

Precedence (seed 003): what the client sent, then the deployment's per-model overrides, then the
mapping's defaults. Then the mapping's policy decides, per parameter: pass, drop (with a warning the
client sees in `x-turnout-warning`), or reject (400 — or drop with a warning when drop_params is on).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.errors import InvalidRequest
from engine.mapping.spec import Limit, ParamPolicy

__all__ = ["apply_policy", "layer_parameters"]


def layer_parameters(
    request: dict[str, Any],
    overrides: Mapping[str, Any],
    defaults: Mapping[str, Any],
    forced: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """forced over request over overrides over defaults; nested mappings (`options`) merge one level deep.

    Forced values are the operator's: they win even over what the client sent (seed 003's overrides
    marked so), for example a fixed temperature or context size on a shared model.
    """
    if not overrides and not defaults and not forced:
        return request
    merged: dict[str, Any] = {}
    for layer in (defaults, overrides, request, forced or {}):
        for key, value in layer.items():
            current = merged.get(key)
            if isinstance(current, dict) and isinstance(value, dict):
                merged[key] = {**current, **value}
            else:
                merged[key] = value
    return merged


def apply_policy(
    request: dict[str, Any], policy: ParamPolicy, *, drop_params: bool, provider: str
) -> tuple[dict[str, Any], list[str]]:
    """The request the mapping will see, and the names of parameters dropped on the way."""
    actions, other = policy.actions, policy.other
    dropped: list[str] = []
    rejected: list[str] = []
    for key in request:
        action = actions.get(key, other)
        if action == "pass":
            continue
        if action == "reject" and not drop_params:
            rejected.append(key)
        else:
            dropped.append(key)
    if rejected:
        raise InvalidRequest(
            f"{provider} does not support the parameter(s) {', '.join(rejected)}; remove them or enable "
            "drop_params to have them dropped with a warning",
            param=rejected[0],
            code="unsupported_parameter",
        )
    if dropped:
        request = {k: v for k, v in request.items() if k not in dropped}
    if policy.limits:
        request = _apply_limits(request, policy.limits, provider)
    return request, dropped


def _apply_limits(request: dict[str, Any], limits: Mapping[str, Limit], provider: str) -> dict[str, Any]:
    for name, limit in limits.items():
        value = request.get(name)
        if limit.one_of is not None and name in request and value not in limit.one_of:
            raise InvalidRequest(
                f"{name}={value!r} is not offered by {provider}: it must be one of "
                f"{', '.join(map(str, limit.one_of))}",
                param=name,
                code="unsupported_value",
            )
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        low = limit.minimum is not None and value < limit.minimum
        high = limit.maximum is not None and value > limit.maximum
        if not (low or high):
            continue
        if not limit.clamp:
            bounds = f"between {limit.minimum} and {limit.maximum}"
            raise InvalidRequest(
                f"{name}={value} is out of range for {provider}: it must be {bounds}",
                param=name,
                code="parameter_out_of_range",
            )
        bound = limit.minimum if low else limit.maximum
        request = {**request, name: bound}
    return request
