"""The backend.yaml of a recorded provider: how the golden suite routes to it, learnt from the
exchanges (where chat and streamed chat went, how streams were framed), and what was not recorded."""

from __future__ import annotations

from typing import Any

import yaml

from engine.record.fixtures import CREDENTIAL_NAME
from engine.record.session import Backend, Outcome

__all__ = ["backend_yaml"]

_HEADER = """\
# Recorded by `turnout record` from a live backend: how the golden suite routes to this provider (the
# model string, where the upstream receives chat and streamed chat, how it frames streams) and which
# scenarios have no fixture: `refused` lists those Turnout answered with a 400 itself, before any
# upstream call (the mapping refuses them); "not recorded" entries are scenarios a live backend could
# not be made to answer as the scenario needs: write those fixtures from the provider's API reference
# and remove the entry, or keep it, with the reason, when the provider can never send that answer.
"""


def backend_yaml(
    backend: Backend,
    outcomes: list[Outcome],
    not_recorded: dict[str, str],
    refused: dict[str, str],
    params: dict[str, Any],
) -> str:
    main = [
        o
        for o in outcomes
        if o.case.target == "main" and o.exchanges and o.case.route.endswith("/chat/completions")
    ]
    whole = next((o.exchanges[-1] for o in main if not o.case.request.get("stream")), None)
    streamed = next((o for o in main if o.case.request.get("stream") and o.exchanges[-1].status == 200), None)
    paths: dict[str, str] = {}
    if whole is not None:
        paths["chat"] = whole.path
    if streamed is not None and streamed.exchanges[-1].path != paths.get("chat"):
        paths["chat_stream"] = streamed.exchanges[-1].path
        paths.setdefault("chat", streamed.exchanges[-1].path)
    spec: dict[str, Any] = {
        "model": backend.model,
        "api_base_suffix": backend.base_path,
        "framing": _framing(streamed),
    }
    if params:  # a credential given as a parameter is not written down
        spec["litellm_params"] = {
            k: "<redacted>" if CREDENTIAL_NAME.search(k) else v for k, v in params.items()
        }
    spec["paths"] = paths
    if refused:
        spec["refused"] = dict(sorted(refused.items()))
    if not_recorded:
        spec["not_applicable"] = dict(sorted(not_recorded.items()))
    return _HEADER + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=110)


def _framing(streamed: Outcome | None) -> str:
    """`sse`, `sse-events` (SSE with `event:` lines) or `ndjson`, from a recorded stream (sse when none)."""
    if streamed is None:
        return "sse"
    exchange = streamed.exchanges[-1]
    text = exchange.answer.decode("utf-8", "replace")
    if "event-stream" in exchange.response_headers.get("content-type", "") or text.startswith(
        ("data:", "event:")
    ):
        return "sse-events" if any(line.startswith("event:") for line in text.splitlines()) else "sse"
    return "ndjson"
