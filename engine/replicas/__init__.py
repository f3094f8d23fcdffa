"""Several Turnout processes sharing one Redis: how they tell each other that shared state changed."""

from __future__ import annotations

from engine.replicas.bus import ChangeBus, Handler, LocalBus, RedisBus, create_bus

__all__ = ["ChangeBus", "Handler", "LocalBus", "RedisBus", "create_bus"]
