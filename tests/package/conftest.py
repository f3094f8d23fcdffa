"""One sdist, one wheel built from it, and one environment with that wheel installed, for the module's
tests (tests/package/install.py says how, and why it is quick)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.package.install import Installed, build_sdist_and_wheel, install_wheel


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_sdist_and_wheel(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def installed(built: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Installed:
    return install_wheel(built[1], tmp_path_factory.mktemp("install") / "venv")
