"""What requests did: the request log (batched SQL writes), metrics, and reports over both."""

from __future__ import annotations

from engine.usage.record import UsageRecord

__all__ = ["UsageRecord"]
