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
        params = _params(test_location)
        if "provider" not in params:  # syrupy also asks about other tests when it looks for unused files
            return super().dirname(test_location=test_location)
        return str(SNAPSHOTS / params["provider"])

    @classmethod
    def get_snapshot_name(cls, *, test_location: Any, index: Any = 0) -> str:
        params = _params(test_location)
        if "scenario" not in params:
            return super().get_snapshot_name(test_location=test_location, index=index)
        return f"{params['scenario']}.{index}"


def _params(test_location: Any) -> dict[str, Any]:
    callspec = getattr(test_location.item, "callspec", None)
    return dict(callspec.params) if callspec is not None else {}


@pytest.fixture
def golden(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(GoldenSnapshot)
