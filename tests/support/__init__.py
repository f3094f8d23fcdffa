"""Test support: run the real gateway on a local port, with a clock the test moves."""

from tests.support.clock import FakeClock
from tests.support.server import GatewayServer, running_gateway

__all__ = ["FakeClock", "GatewayServer", "running_gateway"]
