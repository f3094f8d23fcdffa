"""Which models each backend says it serves, asked through its mapping's `discovery` section.

One question per distinct endpoint (mapping, base URL, credential), all at once, with a short timeout;
answers are cached for `ttl` seconds so that /v1/models and readiness do not hammer backends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import TurnoutError
from engine.mapping.loader import MappingRegistry
from engine.mapping.runtime import MappingRuntimeError
from engine.redact import GENERIC, Redactor
from engine.routing.table import Deployment, RoutingTable
from engine.routing.view import deployment_view
from engine.upstream import UpstreamClient, decode_json

__all__ = ["Discovery", "EndpointReport", "endpoint_key"]

# a backend's model list is small; a longer answer is an error, not something to keep in memory
_MAX_LIST_BYTES = 16 * 1024 * 1024

EndpointKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class EndpointReport:
    provider: str
    models: tuple[str, ...] | None  # None: the backend could not be asked or did not answer
    error: str | None = None

    @property
    def reachable(self) -> bool:
        return self.models is not None


def endpoint_key(deployment: Deployment) -> EndpointKey:
    return (deployment.provider, deployment.api_base or "", deployment.api_key or "")


class Discovery:
    def __init__(
        self,
        registry: MappingRegistry | Callable[[], MappingRegistry],
        client: UpstreamClient,
        *,
        timeout: float = 2.5,
        ttl: float = 30.0,
        redactor: Callable[[], Redactor] = lambda: GENERIC,
    ) -> None:
        self._registry = registry if callable(registry) else (lambda: registry)  # the mappings in force
        self._redactor = redactor
        self._client = client
        self._timeout = timeout
        self._ttl = ttl
        self._cache: tuple[float, RoutingTable, dict[EndpointKey, EndpointReport]] | None = None
        self._lock = asyncio.Lock()

    async def reports(self, table: RoutingTable) -> dict[EndpointKey, EndpointReport]:
        """A report per endpoint whose mapping can list models (cached; refreshed after `ttl`)."""
        async with self._lock:
            cached = self._cache
            if cached is not None and cached[1] is table and time.monotonic() - cached[0] < self._ttl:
                return cached[2]
            endpoints = self._endpoints(table)
            answers = await asyncio.gather(*(self._ask(d) for d in endpoints.values()))
            reports = dict(zip(endpoints, answers, strict=True))
            self._cache = (time.monotonic(), table, reports)
            return reports

    async def missing_models(self, table: RoutingTable) -> frozenset[int]:
        """The deployments whose backend lists the models it serves, without theirs."""
        reports = await self.reports(table)
        missing = set()
        for alias in table.aliases.values():
            for deployment in alias.deployments:
                report = reports.get(endpoint_key(deployment))
                if (
                    report is not None
                    and report.models is not None
                    and deployment.upstream_model not in report.models
                ):
                    missing.add(deployment.id)
        return frozenset(missing)

    async def ask(self, deployment: Deployment) -> EndpointReport:
        """One endpoint's model list, asked now and not cached (e.g. for a deployment not saved yet)."""
        mapping = self._registry().get(deployment.provider)
        if mapping is None or mapping.discovery is None:
            return EndpointReport(deployment.provider, None, f"{deployment.provider} cannot list its models")
        return await self._ask(deployment)

    def _endpoints(self, table: RoutingTable) -> dict[EndpointKey, Deployment]:
        endpoints: dict[EndpointKey, Deployment] = {}
        for alias in table.aliases.values():
            for deployment in alias.deployments:
                mapping = self._registry().get(deployment.provider)
                if mapping is not None and mapping.discovery is not None:
                    endpoints.setdefault(endpoint_key(deployment), deployment)
        return endpoints

    async def _ask(self, deployment: Deployment) -> EndpointReport:
        mapping = self._registry().get(deployment.provider)
        assert mapping is not None and mapping.discovery is not None
        view = deployment_view(deployment)
        label = f"{mapping.name} discovery"
        try:
            url = mapping.discovery.url({}, view)
            headers: Mapping[str, Any] = mapping.headers({}, view) if mapping.headers is not None else {}
            response = await self._client.send(
                mapping.discovery.method,
                url,
                headers=dict(headers),
                body=None,
                timeout=self._timeout,
                label=label,
            )
            raw = await response.read(_MAX_LIST_BYTES)
            if response.status != 200:
                return EndpointReport(mapping.name, None, f"HTTP {response.status}")
            models = mapping.discovery.models(decode_json(raw, label), {}, view)
        # a failure's text may quote the backend or the URL the mapping built: no credential in it
        except TurnoutError as exc:
            return EndpointReport(mapping.name, None, self._redactor().text(exc.message))
        except MappingRuntimeError as exc:
            problem = f"mapping failed at {exc.where}: {exc.detail}"
            return EndpointReport(mapping.name, None, self._redactor().text(problem))
        if not isinstance(models, list):
            return EndpointReport(mapping.name, None, "the discovery mapping did not give a list")
        return EndpointReport(mapping.name, tuple(str(m) for m in models if isinstance(m, str)))
