"""The built wheel, installed outside the checkout, is a whole Turnout: its mappings, migrations and the
console's templates and static files inside the package, and a `turnout` command that serves."""

from __future__ import annotations

import subprocess
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import httpx
import pytest

import engine
from tests.e2e.conftest import OLLAMA
from tests.fakes import FakeUpstream
from tests.package.install import FROM_INDEX, Installed
from tests.support.process import serving
from tests.support.sdk_types import openai_client
from tests.support.server import free_port

pytestmark = pytest.mark.package  # slow by nature: a wheel built and installed (tests/package/install.py)

MASTER = "sk-wheel-master-8Kq2Lm4Np6"


def test_the_wheel_carries_the_data_folders_and_the_metadata(built: tuple[Path, Path]) -> None:
    sdist, wheel = built
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = Parser().parsestr(
            archive.read(f"turnout-{engine.__version__}.dist-info/METADATA").decode()
        )
    for needed in (
        "engine/_bundled/mappings/providers/ollama.yaml",
        "engine/_bundled/mappings/dialects/anthropic.yaml",
        "engine/_bundled/mappings/models/defaults.yaml",
        "engine/_bundled/migrations/env.py",
        "engine/_bundled/migrations/script.py.mako",
        "engine/console/templates/base.html",
        "engine/console/static/console.css",
        "engine/py.typed",
        f"turnout-{engine.__version__}.dist-info/licenses/LICENSE",
    ):
        assert needed in names, needed
    assert any(name.startswith("engine/_bundled/migrations/versions/") for name in names)
    assert not any(name.startswith(("tests/", "bench/", "docs/")) for name in names)
    assert metadata["Name"] == "turnout" and metadata["Version"] == engine.__version__
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Requires-Python"] == ">=3.11"
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert "Programming Language :: Python :: 3.11" in metadata.get_all("Classifier")
    assert metadata.get_payload().startswith("# Turnout")  # the README, as the index shows it
    with tarfile.open(sdist) as archive:
        top = {name.split("/", 2)[1] for name in archive.getnames() if name.count("/")}
    assert {"engine", "mappings", "migrations", "tests", "LICENSE", "pyproject.toml"} <= top


@pytest.mark.timeout(900 if FROM_INDEX else 120)  # from the index, the install downloads the dependencies
def test_the_installed_command_serves_from_anywhere(installed: Installed, tmp_path: Path) -> None:
    version = subprocess.run(
        [installed.bin / "turnout", "--version"], env=installed.environment(), capture_output=True, text=True
    )
    assert version.stdout.strip() == f"turnout {engine.__version__}"
    where = subprocess.run(
        [installed.bin / "python", "-c", "import engine; print(engine.__file__)"],
        env=installed.environment(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(installed.venv), where  # not the checkout
    check = subprocess.run(
        [installed.bin / "turnout", "mappings", "check"],
        env=installed.environment(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0 and "_bundled/mappings: all valid" in check.stdout, check
    port = free_port()
    with FakeUpstream() as fake:
        OLLAMA.answer(fake, "simple")
        env = installed.environment(
            TURNOUT_PORT=str(port),
            TURNOUT_MASTER_KEY=MASTER,
            TURNOUT_OLLAMA_URL=fake.url,  # the default alias set, from the bundled mappings/models
            TURNOUT_DISCOVERY_INTERVAL="0",
        )
        with serving([str(installed.bin / "turnout"), "serve"], env, tmp_path, port) as running:
            client = openai_client(running.url + "/v1", MASTER)
            answer = client.chat.completions.create(
                model="gpt-4", messages=[{"role": "user", "content": "Hi"}]
            )
            assert answer.choices[0].message.content == "Hello! It's nice to meet you."
            assert fake.last.json["model"] == "qwen3:32b"
            assert httpx.get(running.url + "/ui/sign-in", timeout=5).status_code == 200  # templates
            assert "htmx" in httpx.get(running.url + "/ui/sign-in", timeout=5).text
            assert httpx.get(running.url + "/ui/static/console.css", timeout=5).status_code == 200
        assert running.stop() in (0, -15), running.stderr
    assert "Traceback" not in running.stderr and " ERROR " not in running.stderr, running.stderr
    assert (tmp_path / "turnout.db").exists()  # migrated by the bundled migrations, in the working folder
