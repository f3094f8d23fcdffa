"""Build Turnout's sdist and wheel as a package index would get them, and install the wheel into a fresh
virtual environment outside the checkout, as `pip install turnout-….whl` (or pipx, or `uv tool install`)
would.

Offline and fast by default: the new environment gets no copy of the dependencies but a `.pth` line
naming this test environment's site-packages (a folder named in a `.pth` file joins `sys.path` after the
environment's own site-packages, and its own `.pth` files, the editable install of the checkout
included, are not run). So the `engine` package and the `turnout` command come from the installed wheel,
and only the third-party libraries are shared; `pip check` then proves the wheel's declared dependencies
are met by what it finds. `TURNOUT_TEST_INSTALL_FROM_INDEX=1` installs the dependencies from the package
index instead (a minute or more, and the network).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FROM_INDEX", "Installed", "build_sdist_and_wheel", "build_wheel", "copy_tree", "install_wheel"]

ROOT = Path(__file__).resolve().parents[2]
FROM_INDEX = os.environ.get("TURNOUT_TEST_INSTALL_FROM_INDEX") == "1"


def _run(*command: str | Path, cwd: Path | None = None, timeout: float = 120) -> str:
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def build_wheel(source: Path, into: Path) -> Path:
    """`pip wheel` of the project in `source` (a PEP 517 build by the backend this environment has)."""
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", into, source)
    (wheel,) = into.glob("turnout-*.whl")
    return wheel


def build_sdist_and_wheel(into: Path) -> tuple[Path, Path]:
    """The sdist of the checkout, and the wheel built from that sdist alone (as `python -m build` does),
    so that a file the sdist forgets breaks the wheel."""
    _run(sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", into, cwd=ROOT)
    (sdist,) = into.glob("turnout-*.tar.gz")
    unpacked = into / "unpacked"
    with tarfile.open(sdist) as archive:
        archive.extractall(unpacked, filter="data")
    (source,) = unpacked.iterdir()
    return sdist, build_wheel(source, into / "wheel")


@dataclass(frozen=True)
class Installed:
    """A virtual environment with the wheel installed."""

    venv: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def environment(self, **settings: str) -> dict[str, str]:
        """A process environment without this test run's settings, the checkout or its venv on any path."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TURNOUT_", "LITELLM_", "PYTHON", "VIRTUAL_ENV"))
        }
        env["PATH"] = f"{self.bin}{os.pathsep}/usr/bin:/bin"
        env.update(settings)
        return env


def install_wheel(wheel: Path, venv: Path) -> Installed:
    if FROM_INDEX:
        _run(sys.executable, "-m", "venv", venv)
        _run(venv / "bin" / "python", "-m", "pip", "install", "-q", wheel, timeout=600)
        return Installed(venv)
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    purelib = _run(venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
    (Path(purelib.strip()) / "_shared_test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    pip = (sys.executable, "-m", "pip", "--python", venv / "bin" / "python")
    _run(*pip, "install", "-q", "--no-deps", "--no-compile", wheel)
    _run(*pip, "check")
    return Installed(venv)


def copy_tree(names: list[str], into: Path) -> None:
    """The checkout's files and folders `names`, into `into` (a build context)."""
    for name in names:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, into / name)
