"""Test support: run the real gateway on a local port."""

from tests.support.server import GatewayServer, running_gateway

__all__ = ["GatewayServer", "running_gateway"]
