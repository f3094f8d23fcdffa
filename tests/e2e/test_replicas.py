"""Two Turnout processes on one PostgreSQL and one Redis, as N replicas behind a load balancer run.

They share keys, usage, rate-limit and budget counters, cooldowns and routes: a key's limits hold
across both, usage from both lands in one table, and a change made through one reaches the other
within the stated bound (at once through Redis; at most the refresh interval without it).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.e2e.conftest import OPENAI, golden_json
from tests.fakes import FakeUpstream
from tests.support.process import TurnoutProcess, clean_environment, turnout_process
from tests.support.services import POSTGRES_URL, REDIS_URL

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

MASTER = "sk-replicas-master"
ADMIN = {"authorization": f"Bearer {MASTER}"}
PRICES = {"input_cost_per_token": 0.000002, "output_cost_per_token": 0.000008}
ANSWER_COST = Decimal("0.000104")  # the golden answer: 16 x 0.000002 + 9 x 0.000008
PROPAGATION_BOUND = 1.0  # seconds: a change through one replica reaches the other (Redis notice)
HI: list[Any] = [{"role": "user", "content": "Hi"}]
REDIS_PREFIX = f"turnout-test-{uuid.uuid4().hex[:8]}:"  # the replicas' Redis keys, this run's own


def _sql(statement: str) -> list[Any]:
    async def run() -> list[Any]:
        engine = create_async_engine(POSTGRES_URL)
        try:
            async with engine.begin() as connection:
                result = await connection.execute(text(statement))
                return list(result) if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _services_up() -> str | None:
    try:
        _sql("SELECT 1")
    except Exception as exc:
        return f"PostgreSQL at {POSTGRES_URL} is unreachable: {exc}"
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:
        return f"Redis at {REDIS_URL} is unreachable: {exc}"
    return None


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def replicas(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[TurnoutProcess]]:
    problem = _services_up()
    if problem:
        pytest.skip(problem)
    _sql("DROP SCHEMA public CASCADE")  # the test database is shared: start from nothing
    _sql("CREATE SCHEMA public")
    workdir = tmp_path_factory.mktemp("replicas")
    config = workdir / "config.yaml"
    entry = OPENAI.entry(fake.url)
    entry["model_info"] = dict(PRICES)
    # an alias whose first deployment always fails (a path the fake answers with 500): it cools down
    broken = {"model": "openai/broken", "api_base": fake.url + "/broken/v1", "order": 1}
    working = {"model": "openai/test-model", "api_base": fake.url + "/v1", "order": 2}
    flaky = [{"model_name": "flaky", "litellm_params": params} for params in (broken, working)]
    config.write_text(
        yaml.safe_dump(
            {
                "model_list": [entry, *flaky],
                "general_settings": {"master_key": MASTER},
                "router_settings": {"allowed_fails": 0, "cooldown_time": 60},
            }
        )
    )
    settings = {
        "database_url": POSTGRES_URL,
        "redis_url": REDIS_URL,
        "redis_prefix": REDIS_PREFIX,
        "usage_flush_interval": "0.1",
        "routes_refresh_interval": "1",
    }
    # one after the other: the first migrates the empty database
    with (
        turnout_process(workdir, config, **settings) as first,
        turnout_process(workdir, config, **settings) as second,
    ):
        yield [first, second]


@pytest.fixture(autouse=True)
def _answers(fake: FakeUpstream) -> None:
    fake.clear()
    fake.add("POST", OPENAI.path, json=golden_json("openai", "simple.response.json"))


def _generate(replica: TurnoutProcess, **fields: Any) -> str:
    response = httpx.post(replica.url + "/key/generate", json=fields, headers=ADMIN, timeout=10)
    assert response.status_code == 200, response.text
    key: str = response.json()["key"]
    return key


def _chat(replica: TurnoutProcess, key: str, model: str = OPENAI.alias) -> httpx.Response:
    return httpx.post(
        replica.url + "/v1/chat/completions",
        json={"model": model, "messages": HI},
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )


def _within(seconds: float, check: Callable[[], bool]) -> float:
    """How long until `check()` held; fails after `seconds`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, f"not within {seconds} s"
        time.sleep(0.02)
    return time.monotonic() - started


def _known_to(replica: TurnoutProcess, key: str) -> None:
    """Wait until a key made through the other replica works here (the notice is asynchronous)."""
    _within(PROPAGATION_BOUND, lambda: httpx.get(
        replica.url + "/v1/models", headers={"authorization": f"Bearer {key}"}, timeout=5
    ).status_code == 200)  # fmt: skip


def test_an_rpm_limit_holds_across_both(replicas: list[TurnoutProcess]) -> None:
    """Windows are the replicas' wall-clock minutes, which the test cannot move: the assertion holds
    whichever minute (or minutes) the requests fall in. Within a minute, both replicas count into one
    window: 200s with 2, 1, 0 requests remaining, then 429s. A new minute starts that sequence again,
    and only there may it restart (replicas that counted apart would each start it). Eight requests
    span at most two minutes, one of which holds four or more: at least one 429 is seen."""
    first, second = replicas
    rpm = 3
    key = _generate(first, rpm_limit=rpm)
    _known_to(second, key)
    seen = []
    for replica in (first, second) * 4:
        answer = _chat(replica, key)
        seen.append((answer.status_code, int(answer.headers["x-ratelimit-remaining-requests"])))
    one_window = [(200, rpm - 1 - n) for n in range(rpm)] + [(429, 0)] * 8
    windows: list[list[tuple[int, int]]] = []
    for step in seen:
        if step == one_window[0] or not windows:
            windows.append([])
        windows[-1].append(step)
    assert all(window == one_window[: len(window)] for window in windows), seen
    assert len(windows) <= 2 and (429, 0) in seen, seen


def test_usage_from_both_lands_in_one_table(replicas: list[TurnoutProcess]) -> None:
    key = _generate(replicas[0])
    _known_to(replicas[1], key)
    ids = []
    for replica in replicas * 2:
        response = _chat(replica, key)
        assert response.status_code == 200
        ids.append(response.headers["x-turnout-request-id"])
    listed = ", ".join(f"'{request_id}'" for request_id in ids)

    def logged() -> bool:
        return len(_sql(f"SELECT request_id FROM request_log WHERE request_id IN ({listed})")) == len(ids)

    _within(5, logged)
    spend = _sql(f"SELECT spend FROM api_keys WHERE key_hash = '{_hash(key)}'")[0][0]
    assert spend == 4 * ANSWER_COST


def test_a_key_revoked_through_one_is_refused_by_the_other(replicas: list[TurnoutProcess]) -> None:
    first, second = replicas
    key = _generate(first)
    _known_to(second, key)
    assert _chat(second, key).status_code == 200
    revoked = httpx.post(first.url + "/key/delete", json={"keys": [key]}, headers=ADMIN, timeout=10)
    assert revoked.status_code == 200
    took = _within(PROPAGATION_BOUND, lambda: _chat(second, key).status_code == 401)
    assert took < PROPAGATION_BOUND


def _settled(key: str) -> None:
    """Wait until every request of `key` that ended has reached the shared counters: releases go to
    Redis just after the answer (batched), so a next request could otherwise overtake them."""
    import redis

    key_id = _sql(f"SELECT id FROM api_keys WHERE key_hash = '{_hash(key)}'")[0][0]
    client = redis.Redis.from_url(REDIS_URL)
    try:
        _within(5, lambda: client.hlen(f"{REDIS_PREFIX}limit:{key_id}:held") == 0)
    finally:
        client.close()


def test_a_budget_spent_through_both_is_enforced_once(replicas: list[TurnoutProcess]) -> None:
    first, second = replicas
    key = _generate(first, max_budget=0.0003)  # three answers: 0.000312
    _known_to(second, key)
    for replica in (first, second, first):
        assert _chat(replica, key).status_code == 200
        _settled(key)
    for replica in replicas:
        refused = _chat(replica, key)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "budget_exceeded"
        assert "retry-after" not in refused.headers  # spent, not only set aside


def test_concurrent_requests_through_both_cannot_pass_a_budget_together(
    replicas: list[TurnoutProcess], fake: FakeUpstream
) -> None:
    """The reservations live in Redis: a request in flight on one replica holds the budget on the other."""
    first, second = replicas
    key = _generate(first, max_budget=float(ANSWER_COST))  # one answer
    _known_to(second, key)
    fake.clear()
    fake.add("POST", OPENAI.path, json=golden_json("openai", "simple.response.json"), hold=True)
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(_chat, first, key)
        _within(5, lambda: fake.holding == 1)
        refused = _chat(second, key)
        fake.release_held()
        assert held.result().status_code == 200
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "budget_exceeded" and refused.headers["retry-after"] == "1"
    _settled(key)
    spent = _chat(second, key)
    assert spent.status_code == 429 and "retry-after" not in spent.headers


def test_a_route_added_through_another_process_reaches_both(
    replicas: list[TurnoutProcess], fake: FakeUpstream, tmp_path: Path
) -> None:
    entry = OPENAI.entry(fake.url)
    entry["model_name"] = "added-later"
    # a changed config file: what the replicas were started with, and one alias more
    started_with = yaml.safe_load((Path(replicas[0].workdir) / "config.yaml").read_text())
    started_with["model_list"].append(entry)
    config = tmp_path / "changed.yaml"
    config.write_text(yaml.safe_dump(started_with))
    env = clean_environment(TURNOUT_DATABASE_URL=POSTGRES_URL)
    imported = subprocess.run(
        [sys.executable, "-m", "engine", "import", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert imported.returncode == 0, imported.stderr
    for replica in replicas:  # routes_refresh_interval is 1 s here
        _within(3, lambda replica=replica: _chat(replica, MASTER, "added-later").status_code == 200)


def test_a_cooldown_on_one_replica_reaches_the_other(
    replicas: list[TurnoutProcess], fake: FakeUpstream
) -> None:
    first, second = replicas
    fake.add("POST", "/broken/v1/chat/completions", status=500, json={"error": {"message": "down"}})
    answered = _chat(first, MASTER, "flaky")
    assert answered.status_code == 200  # the second deployment answered
    assert "broken=500" in answered.headers["x-turnout-attempted"]

    def cooling_on(replica: TurnoutProcess) -> bool:
        listed = httpx.get(replica.url + "/turnout/deployments", headers=ADMIN, timeout=5).json()
        states = {d["upstream_model"]: d["state"] for d in listed["data"] if d["alias"] == "flaky"}
        return states.get("broken") == "cooling_down"

    assert cooling_on(first)
    _within(PROPAGATION_BOUND, lambda: cooling_on(second))
    fake.clear()
    fake.add("POST", OPENAI.path, json=golden_json("openai", "simple.response.json"))
    skipped = _chat(second, MASTER, "flaky")
    assert skipped.status_code == 200
    assert "broken" not in skipped.headers["x-turnout-attempted"], "the other replica skips it too"


def test_metrics_and_reports_see_the_shared_log(replicas: list[TurnoutProcess]) -> None:
    report = httpx.get(replicas[1].url + "/turnout/usage?group_by=alias", headers=ADMIN, timeout=10)
    assert report.status_code == 200, report.text
    rows = {row["alias"]: row for row in report.json()["data"]}
    assert rows[OPENAI.alias]["requests"] >= 4
    scraped = httpx.get(replicas[0].url + "/metrics", timeout=10)
    assert scraped.status_code == 200 and "turnout_requests_total" in scraped.text


def _hash(key: str) -> str:
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()


def test_the_replicas_stop_cleanly(replicas: list[TurnoutProcess]) -> None:
    for replica in replicas:
        assert replica.stop() in (0, -15)
        assert "Traceback" not in replica.stderr, replica.stderr[-3000:]
    assert json.dumps(True)  # the module's last test: the processes are gone
