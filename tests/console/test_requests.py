"""The request log page: newest first, filters, cursor pagination, a row's details, escaping."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from engine.usage.record import UsageRecord
from tests.console.conftest import MASTER_KEY
from tests.console.forms import signed_in_client
from tests.console.seed_log import database_url, key_row, varied_log, write_log
from tests.fakes import FakeUpstream
from tests.support import FakeClock, GatewayServer, running_gateway
from tests.support.browser import save_screenshot, sign_in

NOW = datetime(2026, 11, 22, 12, 0, 30, tzinfo=UTC)
NASTY = "<script>alert(2)</script>"
VARIED = varied_log(NOW - timedelta(minutes=5), timedelta(days=2), 130)
SPECIAL = UsageRecord(
    request_id="special0000000000000000000000001",
    created_at=NOW - timedelta(minutes=1),
    operation="chat",
    alias=NASTY,
    key_id=1,
    stream=True,
    deployment_id=4,
    provider="openai",
    upstream_model="gpt-<i>4o</i>",
    prompt_tokens=1200,
    completion_tokens=300,
    reasoning_tokens=120,
    cached_tokens=400,
    cost=Decimal("0.0012345"),
    latency_ms=2410.0,
    ttft_ms=380.0,
    status=502,
    error_type="api_error",
    error_code="<b>bad</b>",
    attempts=3,
)
LOG = [*VARIED, SPECIAL]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream) -> Iterator[GatewayServer]:
    tmp = tmp_path_factory.mktemp("requests")
    keys = [key_row(1, "team-a", "sk-abcde"), key_row(2, "batch", "sk-fghij"), key_row(3, None, "sk-klmno")]
    write_log(database_url(tmp), LOG, keys)
    config = {
        "model_list": [
            {
                "model_name": "local-chat",
                "litellm_params": {"model": "ollama_chat/llama3.2", "api_base": upstream.url},
            }
        ]
    }
    with running_gateway(
        tmp, config, master_key=MASTER_KEY, ui_sign_in_delay=0, clock=FakeClock(NOW.timestamp())
    ) as server:
        yield server


@pytest.fixture(scope="module")
def http(gateway: GatewayServer) -> Iterator[httpx.Client]:
    client = signed_in_client(gateway.url, MASTER_KEY)
    yield client
    client.close()


def _ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'<tr data-request="(\d+)">', html)]


def _cells(html: str, column: int) -> list[str]:
    rows = re.findall(r'<tr data-request="\d+">(.*?)</tr>', html, re.S)
    return [
        re.sub(r"<[^>]+>", "", re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[column]).strip() for row in rows
    ]


def _all_pages(http: httpx.Client, query: str) -> list[int]:
    ids: list[int] = []
    url: str | None = f"/ui/requests/?{query}"
    while url is not None:
        html = http.get(url).text
        ids += _ids(html)
        found = re.search(r'id="older" href="([^"]+)"', html)
        url = found.group(1).replace("&amp;", "&") if found else None
    return ids


def test_the_whole_log_newest_first_page_by_page(http: httpx.Client) -> None:
    first = http.get("/ui/requests/")
    assert first.status_code == 200
    assert len(_ids(first.text)) == 50
    ids = _all_pages(http, "")
    assert len(ids) == len(LOG) and ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("key=1", lambda r: r.key_id == 1),
        ("key=master", lambda r: r.key_id is None),
        ("alias=embed", lambda r: r.alias == "embed"),
        ("status=2xx", lambda r: 200 <= r.status < 300),
        ("status=4xx", lambda r: 400 <= r.status < 500),
        ("status=5xx", lambda r: r.status >= 500),
        ("status=499", lambda r: r.status == 499),
        ("code=429", lambda r: r.status == 429),
        ("time=hour", lambda r: r.created_at >= NOW - timedelta(hours=1)),
        (
            "time=day&status=2xx&key=2",
            lambda r: r.created_at >= NOW - timedelta(days=1) and r.status < 300 and r.key_id == 2,
        ),
        (
            "from=2026-11-21T06:00&to=2026-11-21T18:00",
            lambda r: (
                datetime(2026, 11, 21, 6, tzinfo=UTC) <= r.created_at < datetime(2026, 11, 21, 18, tzinfo=UTC)
            ),
        ),
    ],
)
def test_filters_select_the_rows_they_name(http: httpx.Client, query: str, expected: Any) -> None:
    wanted = sum(1 for record in LOG if expected(record))
    assert wanted > 0, "the seeded log should hold rows for every filter"
    assert len(_all_pages(http, query)) == wanted


def test_a_filter_that_does_not_parse_is_shown_next_to_its_field(http: httpx.Client) -> None:
    answer = http.get("/ui/requests/?code=abc&from=yesterday&alias=chat-fast")
    assert answer.status_code == 400
    assert "A status code is a number from 100 to 599." in answer.text
    assert "A date and time, e.g." in answer.text
    assert 'name="code" value="abc"' in answer.text and 'value="chat-fast"' in answer.text
    assert http.get("/ui/requests/?cursor=!!nonsense").status_code == 400


def test_a_rows_details(http: httpx.Client) -> None:
    row_id = _ids(http.get("/ui/requests/?code=502&alias=" + NASTY).text)[0]
    page = http.get(f"/ui/requests/{row_id}")
    assert page.status_code == 200 and "<html" in page.text
    fragment = http.get(f"/ui/requests/{row_id}", headers={"HX-Request": "true"})
    assert "<html" not in fragment.text
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment.text))
    for fact in (
        SPECIAL.request_id,
        "team-a (sk-abcde…)",
        "chat (stream)",
        "#4",
        "openai",
        "502",
        "api_error",
        "1200 prompt (400 cached)",
        "300 completion (120 reasoning)",
        "0.0012345",
        "2.41 s",
        "380 ms",
    ):
        assert fact in text, (fact, text)
    assert re.search(r"Attempts\s*</dt>\s*<dd>3<", fragment.text)
    assert http.get("/ui/requests/999999").status_code == 404


def test_values_from_clients_and_upstreams_render_as_text(http: httpx.Client) -> None:
    listing = http.get("/ui/requests/?time=hour").text
    row_id = _ids(http.get("/ui/requests/?code=502&alias=" + NASTY).text)[0]
    detail = http.get(f"/ui/requests/{row_id}").text
    for html in (listing, detail):
        assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html and NASTY not in html
    assert "&lt;b&gt;bad&lt;/b&gt;" in detail and "<b>bad</b>" not in detail
    assert "gpt-&lt;i&gt;4o&lt;/i&gt;" in detail


def test_the_log_in_a_browser(page: Any, gateway: GatewayServer) -> None:
    from playwright.sync_api import expect

    sign_in(page, gateway.url, MASTER_KEY)
    page.goto(f"{gateway.url}/ui/requests/")
    expect(page.locator("#request-rows tbody tr")).to_have_count(50)
    save_screenshot(page, "requests")
    page.select_option("select[name=status]", "5xx")
    page.click("#request-filter button[type=submit]")
    expect(page).to_have_url(re.compile(r"status=5xx"))
    statuses = page.locator("#request-rows tbody tr td:nth-child(5)").all_inner_texts()
    assert statuses and all(text.strip().startswith("5") for text in statuses)
    page.locator(f'#request-rows tr:has-text("{NASTY}") a').first.click()
    detail = page.locator("#request-detail")
    expect(detail).to_contain_text(SPECIAL.request_id)
    expect(detail).to_contain_text("<b>bad</b>")
    assert "/ui/requests/?" in page.url, "the details open beside the list, not as a new page"
    save_screenshot(page, "request-detail")
