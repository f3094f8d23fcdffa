"""A resolver for the HTTP client that fetches client-chosen URLs: only addresses the policy allows.

The connection is made to the addresses this resolver returns and to no others, so checking them here
defeats DNS rebinding (a name that resolved to a public address when checked and to 127.0.0.1 when
connected): there is one resolution, and it is the one checked. Addresses the policy refuses are left
out; a name with none left raises `Refused`, which the HTTP client passes up untouched. IP literals in
URLs never reach a resolver: `AddressPolicy.check_url` judges them before the request is sent.

Besides engine.upstream, the one module that knows the HTTP library: it plugs into UpstreamClient.
"""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from engine.netguard import ADDRESS_REFUSED, AddressPolicy, Refused

__all__ = ["GuardedResolver"]


class GuardedResolver(AbstractResolver):
    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if self._policy.allows_host(host):
            return results
        allowed = [result for result in results if self._policy.allows_address(result["host"])]
        if not allowed:
            addresses = ", ".join(sorted({result["host"] for result in results}))
            raise Refused(ADDRESS_REFUSED, f"{host} resolves to {addresses or 'nothing'}")
        return allowed

    async def close(self) -> None:
        await self._inner.close()
