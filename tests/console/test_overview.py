"""The overview page: totals, charts and breakdown read from the rollup of the request log, the
deployments' live states refreshing by themselves, and the page's speed on a million-row log."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.console.usage_overview import PERIODS
from engine.usage.record import UsageRecord
from tests.console.conftest import MASTER_KEY
from tests.console.forms import signed_in_client
from tests.console.seed_log import (
    MILLION,
    database_url,
    key_row,
    run_apart,
    seed_million,
    varied_log,
    write_log,
)
from tests.fakes import FakeUpstream
from tests.support import FakeClock, GatewayServer, running_gateway
from tests.support.browser import save_screenshot, sign_in

CLOCK_START = datetime(2026, 11, 22, 12, 0, 30, tzinfo=UTC)
NASTY = "<script>alert(1)</script>"


def _record(number: int, age: timedelta, **fields: Any) -> UsageRecord:
    values: dict[str, Any] = {
        "request_id": f"small{number:027d}",
        "created_at": CLOCK_START - age,
        "operation": "chat",
        "alias": "chat-a",
        "provider": "openai",
        "deployment_id": 1,
        "upstream_model": "gpt-4o-mini",
        "status": 200,
        "attempts": 1,
    }
    values.update(fields)
    return UsageRecord(**values)


# hour: 3 + 1 requests; day: the same; 30 days: 2 more (3 days old)
SMALL_LOG = [
    *(
        _record(
            n,
            timedelta(minutes=10 + n),
            key_id=1,
            prompt_tokens=10,
            completion_tokens=5,
            cost=Decimal("0.0012"),
            latency_ms=100.0,
        )
        for n in range(3)
    ),
    _record(
        3,
        timedelta(minutes=5),
        alias=NASTY,
        key_id=None,
        provider=None,
        deployment_id=None,
        status=500,
        error_type="api_error",
        error_code="boom",
        stream=True,
        latency_ms=50.0,
        ttft_ms=20.0,
    ),
    *(
        _record(
            4 + n,
            timedelta(days=3, minutes=n),
            key_id=2,
            prompt_tokens=100,
            completion_tokens=50,
            cost=Decimal("0.25"),
            latency_ms=1000.0,
        )
        for n in range(2)
    ),
]


def _config(upstream: FakeUpstream) -> dict[str, Any]:
    return {
        "model_list": [
            {
                "model_name": "local-chat",
                "litellm_params": {"model": "ollama_chat/llama3.2", "api_base": upstream.url},
            },
            # two deployments: one that fails cools down (a deployment alone in its alias never does)
            {
                "model_name": "flaky",
                "litellm_params": {"model": "ollama_chat/qwen3", "api_base": upstream.url},
            },
            {
                "model_name": "flaky",
                "litellm_params": {"model": "ollama_chat/gemma3", "api_base": upstream.url},
            },
        ],
        "router_settings": {"allowed_fails": 0, "cooldown_time": 60},
    }


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream) -> Iterator[GatewayServer]:
    """A gateway whose request log holds SMALL_LOG, its clock standing at CLOCK_START."""
    tmp = tmp_path_factory.mktemp("overview-small")
    keys = [key_row(1, "team-a", "sk-abcde"), key_row(2, None, "sk-fghij")]
    write_log(database_url(tmp), SMALL_LOG, keys)
    with running_gateway(
        tmp,
        _config(upstream),
        master_key=MASTER_KEY,
        ui_sign_in_delay=0,
        clock=FakeClock(CLOCK_START.timestamp()),
    ) as server:
        yield server


@pytest.fixture(scope="module")
def http(small: GatewayServer) -> Iterator[httpx.Client]:
    client = signed_in_client(small.url, MASTER_KEY)
    yield client
    client.close()


def _stat(html: str, name: str) -> str:
    found = re.search(rf'id="stat-{name}"><div class="label">[^<]*</div><div class="value">([^<]*)<', html)
    assert found, f"no {name} card"
    return found.group(1)


def _rows(html: str) -> list[list[str]]:
    table = html.split('id="breakdown"', 1)[1].split("</table>", 1)[0]
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>", 1)[1], re.S)
    ]


def test_totals_of_the_last_hour(http: httpx.Client) -> None:
    html = http.get("/ui/?period=hour&by=alias").text
    assert _stat(html, "requests") == "4"
    assert _stat(html, "errors") == "1"
    assert _stat(html, "tokens") == "45"
    assert _stat(html, "cost") == "0.0036"
    p50 = _stat(html, "p50")
    assert p50.startswith("≈ ") and 85 <= float(p50.split()[1]) <= 115, p50
    ttft = _stat(html, "ttft")
    assert ttft.startswith("≈ ") and 15 <= float(ttft.split()[1]) <= 25, ttft


def test_thirty_days_by_key_name_the_keys_never_their_secret(http: httpx.Client) -> None:
    html = http.get("/ui/?period=30d&by=key").text
    assert _stat(html, "requests") == "6"
    assert _stat(html, "tokens") == "345"
    assert _stat(html, "cost") == "0.5036"
    rows = {row[0]: row[1:5] for row in _rows(html)}
    assert rows == {
        "team-a (sk-abcde…)": ["3", "0", "45", "0.0036"],
        "sk-fghij…": ["2", "0", "300", "0.5000"],
        "master key": ["1", "1", "0", "0.0000"],
    }


def test_by_provider_and_the_day(http: httpx.Client) -> None:
    rows = {row[0]: row[1] for row in _rows(http.get("/ui/?period=30d&by=provider").text)}
    assert rows == {"openai": "5", "(no deployment)": "1"}
    assert _stat(http.get("/ui/?period=day&by=provider").text, "requests") == "4"


def test_an_alias_a_client_chose_renders_as_text(http: httpx.Client) -> None:
    html = http.get("/ui/?period=hour&by=alias").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert NASTY not in html


def test_unknown_choices_fall_back_to_the_defaults(http: httpx.Client) -> None:
    answer = http.get("/ui/?period=forever&by=%3Cscript%3E")
    assert answer.status_code == 200
    assert 'aria-current="true">Last day<' in answer.text and 'aria-current="true">Alias<' in answer.text


def test_the_chart_data_is_a_json_block_per_bucket(http: httpx.Client) -> None:
    import json

    html = http.get("/ui/?period=hour").text
    block = re.search(r'<script type="application/json" id="overview-data">(.*?)</script>', html, re.S)
    assert block
    data = json.loads(block.group(1))
    assert len(data["times"]) == 60 and sum(data["requests"]) == 4 and sum(data["errors"]) == 1
    assert data["times"][-1] == int(CLOCK_START.replace(second=0).timestamp())


# SLOW BY DESIGN (the performance bar): a million rows seeded, then migrated into the rollup
def test_a_million_row_log_answers_in_under_half_a_second(tmp_path: Path, upstream: FakeUpstream) -> None:
    """The issue's bar: the overview of a one-million-row request log in under 500 ms (best of 3
    GETs over HTTP, signed in), for every period; all million rows are in the last 30 days. Measured:
    about 20-40 ms on SQLite (and on PostgreSQL), so the bar holds on a slow, busy machine."""
    import time

    span = CLOCK_START - PERIODS["30d"].start(CLOCK_START)
    seed_million(database_url(tmp_path), CLOCK_START, span)

    def seeded_since(moment: datetime) -> int:  # seed_million's times: whole seconds, evenly spread
        first, step, since = (
            CLOCK_START.timestamp() - span.total_seconds(),
            span.total_seconds() / MILLION,
            moment.timestamp(),
        )
        return sum(1 for i in range(MILLION) if int(first + i * step) >= since)

    with running_gateway(
        tmp_path,
        _config(upstream),
        master_key=MASTER_KEY,
        ui_sign_in_delay=0,
        clock=FakeClock(CLOCK_START.timestamp()),
    ) as server:
        client = signed_in_client(server.url, MASTER_KEY)
        try:
            timings = {}
            for query in (
                "period=30d&by=key",
                "period=30d&by=alias",
                "period=day&by=provider",
                "period=hour&by=key",
            ):
                best = float("inf")
                for _ in range(3):
                    started = time.perf_counter()
                    answer = client.get(f"/ui/?{query}")
                    best = min(best, time.perf_counter() - started)
                    assert answer.status_code == 200
                timings[query] = best
                if query == "period=30d&by=key":
                    assert _stat(answer.text, "requests") == "1,000,000"
                    assert _stat(answer.text, "errors") == "50,000"
                    assert len(_rows(answer.text)) == 21
                else:  # the backfill's hour and minute rows: as many requests as seeded in the period
                    period = PERIODS[query.split("&")[0].removeprefix("period=")]
                    assert _stat(answer.text, "requests") == f"{seeded_since(period.start(CLOCK_START)):,}"
            print("overview on 1M rows, best of 3 (ms):", {q: round(t * 1000, 1) for q, t in timings.items()})
            assert max(timings.values()) < 0.5, timings
        finally:
            client.close()


@pytest.fixture(scope="module")
def lively(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream
) -> Iterator[tuple[GatewayServer, FakeClock]]:
    """A gateway with a few hundred varied requests over the last 30 days (most in the last day), its
    clock at the wall clock's time: the requests the test sends are stamped with it."""
    import time

    clock = FakeClock(time.time())
    now = datetime.fromtimestamp(clock(), UTC)
    tmp = tmp_path_factory.mktemp("overview-lively")
    records = sorted(
        [*varied_log(now, timedelta(days=1), 400, seed=1), *varied_log(now, timedelta(days=30), 250, seed=2)],
        key=lambda record: record.created_at,
    )
    keys = [
        key_row(1, "web-app", "sk-q7Lm2"),
        key_row(2, "batch-jobs", "sk-Zx81a"),
        key_row(3, None, "sk-9fKd0"),
    ]
    write_log(database_url(tmp), records, keys)
    with running_gateway(
        tmp, _config(upstream), master_key=MASTER_KEY, ui_sign_in_delay=0, clock=clock
    ) as server:
        yield server, clock


def _requests_shown(page: Any) -> int:
    return int(page.locator("#stat-requests .value").inner_text().replace(",", ""))


def test_the_overview_in_a_browser(
    page: Any, lively: tuple[GatewayServer, FakeClock], fresh_upstream: FakeUpstream
) -> None:
    """Totals and charts render; a request sent through the gateway reaches the totals; the
    deployments' states refresh by themselves when the upstream starts failing."""
    from playwright.sync_api import expect

    server, _ = lively
    sign_in(page, server.url, MASTER_KEY)
    page.goto(f"{server.url}/ui/?period=day&by=alias")
    for chart in ("requests", "tokens", "cost", "latency"):
        expect(page.locator(f'[data-chart="{chart}"] canvas').first).to_be_visible()
    expect(page.locator("#breakdown tbody tr")).to_have_count(5)
    expect(page.locator("#deployment-states [data-deployment] .badge")).to_have_text(["healthy"] * 3)
    save_screenshot(page, "overview")

    page.click('a[href*="period=30d"]')
    expect(page).to_have_url(re.compile(r"period=30d&by=alias"))
    before = _requests_shown(page)
    fresh_upstream.add(
        "POST",
        "/api/chat",
        json={
            "message": {"role": "assistant", "content": "hi"},
            "done": True,
            "prompt_eval_count": 3,
            "eval_count": 1,
        },
    )
    answer = httpx.post(
        f"{server.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        json={"model": "local-chat", "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    page.wait_for_function(  # the recorder writes within a second: read the page until it counts it
        "([url, want]) => fetch(url).then(r => r.text()).then(t => t.includes(want))",
        arg=[f"{server.url}/ui/?period=30d&by=provider", f'<div class="value">{before + 1:,}</div>'],
        timeout=10_000,
    )

    page.evaluate("window.stillTheSamePage = true")
    fresh_upstream.add("POST", "/api/chat", status=500, json={"error": "the model fell over"})
    failed = httpx.post(
        f"{server.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        json={"model": "flaky", "messages": [{"role": "user", "content": "hi"}]},
        timeout=10,
    )
    assert failed.status_code >= 500
    flaky = page.locator('#deployment-states tr:has-text("flaky")')
    expect(flaky.locator(".badge")).to_have_text(["cooling down", "cooling down"], timeout=12_000)
    expect(flaky.locator(".last-error").first).to_contain_text("fell over")
    expect(page.locator('#deployment-states tr:has-text("local-chat") .badge')).to_have_text("healthy")
    assert page.evaluate("window.stillTheSamePage") is True


@pytest.mark.postgres
def test_the_same_figures_on_postgresql(tmp_path: Path, upstream: FakeUpstream) -> None:
    """The writer's upsert and the overview's statement on PostgreSQL: SMALL_LOG gives the same page."""
    from tests.support.services import POSTGRES_URL, empty_postgres

    def emptied() -> bool:  # in a thread: Playwright may hold an event loop in this one
        with ThreadPoolExecutor(1) as worker:
            return worker.submit(empty_postgres).result()

    if not emptied():
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL}")
    write_log(POSTGRES_URL, SMALL_LOG, [key_row(1, "team-a", "sk-abcde"), key_row(2, None, "sk-fghij")])
    again = replace(SMALL_LOG[0], request_id="again" + SMALL_LOG[0].request_id[5:])
    write_log(POSTGRES_URL, [again], [])  # the upsert adds to the rollup rows already there
    with running_gateway(
        tmp_path,
        _config(upstream),
        master_key=MASTER_KEY,
        ui_sign_in_delay=0,
        clock=FakeClock(CLOCK_START.timestamp()),
        database_url=POSTGRES_URL,
    ) as server:
        client = signed_in_client(server.url, MASTER_KEY)
        try:
            html = client.get("/ui/?period=30d&by=key").text
        finally:
            client.close()
    emptied()
    assert _stat(html, "requests") == "7" and _stat(html, "cost") == "0.5048"
    assert {row[0]: row[1] for row in _rows(html)} == {
        "team-a (sk-abcde…)": "4",
        "sk-fghij…": "2",
        "master key": "1",
    }


def test_percentiles_from_the_histogram_are_close() -> None:
    """The log-scale bins give percentiles within a few per cent on a realistic spread."""
    import random

    from engine.store.request_rollup import BINS
    from engine.usage.rollup import bin_of, percentile

    rnd = random.Random(3)
    values = sorted(rnd.lognormvariate(6.5, 0.9) for _ in range(20_000))
    counts = [0] * BINS
    for value in values:
        counts[bin_of(value)] += 1
    for fraction in (0.5, 0.95, 0.99):
        exact = values[int(fraction * len(values))]
        estimate = percentile(counts, fraction)
        assert estimate is not None and abs(estimate - exact) / exact < 0.05, (fraction, exact, estimate)
    assert percentile([0] * BINS, 0.5) is None
    assert bin_of(float("nan")) == 0 and bin_of(-3.0) == 0 and bin_of(float("inf")) == BINS - 1


def test_the_rollup_holds_exactly_the_rows_the_writer_stored(tmp_path: Path) -> None:
    """The rollup is written in the rows' own transaction: a spend-only write (a row the database
    refused, whose key still pays) adds nothing to it."""
    from sqlalchemy import func, select

    from engine.store.db import create_engine, session_factory
    from engine.store.request_log import RequestLogRow
    from engine.store.request_rollup import request_rollup
    from engine.usage.writer import SqlWriter

    url = database_url(tmp_path)
    write_log(url, SMALL_LOG, [key_row(1, "team-a", "sk-abcde"), key_row(2, None, "sk-fghij")])

    async def run() -> tuple[Any, Any]:
        engine = create_engine(url)
        try:
            sessions = session_factory(engine)
            refused_row = replace(SMALL_LOG[0], request_id="refused" + SMALL_LOG[0].request_id[7:])
            await SqlWriter(sessions).write([refused_row], rows=False)
            async with sessions() as session:
                logged = (
                    await session.execute(select(func.count(), func.sum(RequestLogRow.prompt_tokens)))
                ).one()
                rolled = {}
                for span in ("minute", "hour", "day"):
                    rolled[span] = tuple(
                        (
                            await session.execute(
                                select(
                                    func.sum(request_rollup.c.requests),
                                    func.sum(request_rollup.c.prompt_tokens),
                                ).where(request_rollup.c.span == span)
                            )
                        ).one()
                    )
            return tuple(logged), rolled
        finally:
            await engine.dispose()

    logged, rolled = run_apart(run())
    assert logged == (6, 230)
    recent = (4, 30)  # the two 3-day-old requests' minute and hour rows were pruned already
    assert rolled == {"minute": recent, "hour": recent, "day": logged}


def test_the_writer_prunes_minute_and_hour_rows_no_view_reads(tmp_path: Path) -> None:
    """Minute rows are kept two hours and hour rows two days (before the newest request written);
    day rows stay."""
    from sqlalchemy import func, select

    from engine.store.db import create_engine, session_factory
    from engine.store.request_rollup import request_rollup
    from engine.usage.writer import SqlWriter

    url = database_url(tmp_path)
    write_log(url, [], [])
    later = [
        replace(
            SMALL_LOG[0], request_id=f"later{hours:027d}", created_at=CLOCK_START + timedelta(hours=hours)
        )
        for hours in (3, 72)
    ]

    async def spans_after(batches: list[list[UsageRecord]]) -> dict[str, int]:
        engine = create_engine(url)
        try:
            sessions = session_factory(engine)
            writer = SqlWriter(sessions, prune_every=0)
            for batch in batches:
                await writer.write(batch)
            async with sessions() as session:
                counted = await session.execute(
                    select(request_rollup.c.span, func.sum(request_rollup.c.requests)).group_by(
                        request_rollup.c.span
                    )
                )
                return {span: int(total) for span, total in counted}
        finally:
            await engine.dispose()

    # the two 3-day-old requests are past both: only their day rows stay
    assert run_apart(spans_after([SMALL_LOG])) == {"minute": 4, "hour": 4, "day": 6}
    assert run_apart(spans_after([later[:1]])) == {"minute": 1, "hour": 5, "day": 7}  # 3 h later
    assert run_apart(spans_after([later[1:]])) == {"minute": 1, "hour": 1, "day": 8}  # 3 days later
