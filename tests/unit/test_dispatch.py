"""The dispatcher calls the attempts it is given (any `Attempts`), never its owner: here a fake one, with no
mapping, upstream or pipeline behind it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from engine.canonical import OPERATIONS, OperationKind
from engine.errors import PermissionDenied, UpstreamUnavailable
from engine.pipeline.call import Call
from engine.pipeline.dispatch import Dispatcher
from engine.pipeline.metering import Meter, NullSink
from engine.pipeline.outcome import Outcome, Reply, Tally
from engine.routing.router import Router
from engine.routing.table import Alias, Deployment, RouterSettings, RoutingTable


def _deployment(n: int, tier: str = "local") -> Deployment:
    return Deployment(id=n, alias="a", provider="p", upstream_model=f"m{n}", privacy_tier=tier)


class FakeAttempts:
    """Fails on the deployments it is told to, answers on the others; remembers what it was asked."""

    def __init__(self, failing: set[int]) -> None:
        self.failing = failing
        self.tried: list[tuple[str, int]] = []

    async def attempt(
        self,
        kind: OperationKind,
        request: dict[str, Any],
        deployment: Deployment,
        registry: Any = None,
        trace: Any = None,
    ) -> Outcome:
        self.tried.append((kind.name, deployment.id))
        if deployment.id in self.failing:
            raise UpstreamUnavailable(f"m{deployment.id} is down")
        return Outcome(Reply(body=b"{}", answer={}), Tally(request))


def _dispatch(alias: Alias, attempts: FakeAttempts, **call: Any) -> Outcome:
    table = RoutingTable({alias.name: alias}, RouterSettings(routing_strategy="ordered"))
    dispatcher = Dispatcher(Router(seed=1), lambda: table, attempts, drop_params=False)
    request = {"model": alias.name, "messages": [{"role": "user", "content": "hi"}]}
    meter = Meter(NullSink(), "chat", request, None)
    return asyncio.run(dispatcher.dispatch(Call(OPERATIONS["chat"], request, meter, **call), alias))


def test_a_failing_deployment_hands_over_to_the_next() -> None:
    attempts = FakeAttempts(failing={1})
    outcome = _dispatch(Alias("a", (_deployment(1), _deployment(2))), attempts)
    assert attempts.tried == [("chat", 1), ("chat", 2)]
    assert outcome.reply.headers["x-turnout-attempted"] == "p/m1=502, p/m2=ok"


def test_a_privacy_refusal_says_whose_level_it_is() -> None:
    alias = Alias("a", (_deployment(1, tier="third-party"),))
    with pytest.raises(PermissionDenied) as header:
        _dispatch(alias, FakeAttempts(set()), privacy="local")
    assert "allowed for privacy level 'local'" in header.value.message
    assert header.value.param == "x-turnout-privacy"
    with pytest.raises(PermissionDenied) as key:
        _dispatch(alias, FakeAttempts(set()), privacy="local", privacy_is_keys=True)
    assert "allowed for this API key's privacy level 'local'" in key.value.message
    assert key.value.param is None
