"""Golden snapshots as reviewable files: tests/golden/snapshots/<provider>/<scenario>.<kind>.json."""

from __future__ import annotations

import pytest
from syrupy.assertion import SnapshotAssertion

from tests.golden.support import SNAPSHOTS, snapshot_extension

# the chat matrix: one folder per provider, one file per scenario and kind
GoldenSnapshot = snapshot_extension(
    lambda p: str(SNAPSHOTS / p["provider"]) if isinstance(p.get("provider"), str) else None,
    lambda p: str(p["scenario"]) if "scenario" in p else None,
)


@pytest.fixture
def golden(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(GoldenSnapshot)
