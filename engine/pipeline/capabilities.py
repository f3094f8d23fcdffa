"""What a request needs (tools, images, reasoning, JSON schema) against what a deployment can do.

A capability the deployment's SQL row says it lacks (False; None means "not stated" and is allowed)
is a 400 naming it, or, with drop_params, removed from the request and reported in the warning header.
"""

from __future__ import annotations

from typing import Any

from engine.errors import InvalidRequest
from engine.routing.table import Deployment

__all__ = ["gate_capabilities", "requested_capabilities"]


def _has_images(messages: Any) -> bool:
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(
            isinstance(part, dict) and part.get("type") == "image_url" for part in content
        ):
            return True
    return False


def requested_capabilities(request: dict[str, Any]) -> list[str]:
    needed = []
    if request.get("tools"):
        needed.append("tools")
    if _has_images(request.get("messages")):
        needed.append("vision")
    effort = request.get("reasoning_effort")
    if (effort is not None and effort not in ("none", "minimal")) or request.get("think"):
        needed.append("reasoning")
    response_format = request.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        needed.append("json_schema")
    return needed


def _without(request: dict[str, Any], capability: str) -> dict[str, Any]:
    if capability == "tools":
        return {k: v for k, v in request.items() if k not in ("tools", "tool_choice", "parallel_tool_calls")}
    if capability == "reasoning":
        return {k: v for k, v in request.items() if k not in ("reasoning_effort", "think")}
    if capability == "json_schema":
        return {k: v for k, v in request.items() if k != "response_format"}
    messages = []
    for message in request["messages"]:
        content = message.get("content")
        if isinstance(content, list):
            message = {**message, "content": [p for p in content if p.get("type") != "image_url"]}
        messages.append(message)
    return {**request, "messages": messages}


_PARAM = {
    "tools": "tools",
    "vision": "messages",
    "reasoning": "reasoning_effort",
    "json_schema": "response_format",
}


def gate_capabilities(
    request: dict[str, Any], deployment: Deployment, *, drop_params: bool
) -> tuple[dict[str, Any], list[str]]:
    """The request the deployment can take, and the capabilities removed from it (only with drop_params)."""
    lacking = [c for c in requested_capabilities(request) if getattr(deployment.capabilities, c) is False]
    if not lacking:
        return request, []
    if not drop_params:
        raise InvalidRequest(
            f"the model {deployment.alias!r} ({deployment.provider}/{deployment.upstream_model}) does not "
            f"support {', '.join(lacking)}; remove it from the request, or enable drop_params to have it "
            "removed with a warning",
            param=_PARAM[lacking[0]],
            code="unsupported_capability",
        )
    for capability in lacking:
        request = _without(request, capability)
    return request, lacking
