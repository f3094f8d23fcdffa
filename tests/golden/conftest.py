"""Golden snapshots as reviewable files: tests/golden/snapshots/<provider>/<scenario>.<kind>.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

SNAPSHOTS = Path(__file__).parent / "snapshots"


class GoldenSnapshot(JSONSnapshotExtension):
    """One file per (provider, scenario, kind), keys sorted, named for a reviewer rather than an index."""

    @classmethod
    def dirname(cls, *, test_location: Any) -> str:
        return str(SNAPSHOTS / test_location.item.callspec.params["provider"])

    @classmethod
    def get_snapshot_name(cls, *, test_location: Any, index: Any = 0) -> str:
        return f"{test_location.item.callspec.params['scenario']}.{index}"


@pytest.fixture
def golden(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(GoldenSnapshot)
