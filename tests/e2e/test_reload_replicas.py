"""Two replicas on one PostgreSQL and one Redis: the one that re-imports a changed config file tells the
other through the change bus ("routes"), which then serves the new aliases without polling SQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.conftest import OPENAI, golden_json
from tests.e2e.test_replicas import _services_up, _sql
from tests.fakes import FakeUpstream
from tests.support.process import turnout_process
from tests.support.reload import rewrite, wait_for_readiness
from tests.support.services import POSTGRES_URL, REDIS_URL

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


def _served(url: str, alias: str) -> bool:
    answer = httpx.post(
        url + "/v1/chat/completions",
        json={"model": alias, "messages": [{"role": "user", "content": "Hi"}]},
        timeout=10,
    )
    return answer.status_code == 200


def test_a_config_change_reaches_a_replica_that_does_not_watch(tmp_path: Path, fake: FakeUpstream) -> None:
    problem = _services_up()
    if problem:
        pytest.skip(problem)
    _sql("DROP SCHEMA public CASCADE")  # the test database is shared: start from nothing
    _sql("CREATE SCHEMA public")
    fake.add("POST", OPENAI.path, json=golden_json("openai", "simple.response.json"))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"model_list": [OPENAI.entry(fake.url)]}))
    shared = {
        "database_url": POSTGRES_URL,
        "redis_url": REDIS_URL,
        "redis_prefix": f"turnout-test-{uuid.uuid4().hex[:8]}:",
    }
    # the first watches the file; the second neither watches nor polls SQL: only a notice reaches it
    with (
        turnout_process(tmp_path, config, reload_interval="0.05", **shared) as watching,
        turnout_process(tmp_path, config, reload_interval="0", routes_refresh_interval="0", **shared) as deaf,
    ):
        added = OPENAI.entry(fake.url)
        added["model_name"] = "added-while-serving"
        rewrite(config, yaml.safe_dump({"model_list": [OPENAI.entry(fake.url), added]}))
        wait_for_readiness(watching.url, lambda body: body["reload"]["config"]["version"] == 2, "the import")
        assert _served(watching.url, "added-while-serving")
        deadline = time.monotonic() + 5
        while not _served(deaf.url, "added-while-serving"):
            assert time.monotonic() < deadline, "the change notice did not reach the other replica"
            time.sleep(0.02)
        assert (
            wait_for_readiness(deaf.url, lambda body: True, "readiness")["reload"]["config"]["version"] == 1
        )
