"""Test doubles that stand in for upstream providers (see upstream.py)."""

from __future__ import annotations

from .upstream import FakeUpstream, RecordedRequest, Script

__all__ = ["FakeUpstream", "RecordedRequest", "Script"]
