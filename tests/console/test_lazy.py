"""The console costs a process that serves only the API nothing: its pages are imported and their
routes built on the first request under `ui_path` (engine.console.lazy), and answer as before from
then on; a process with the console turned off answers 404 there, as for any unknown route."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support import running_gateway


def test_the_console_answers_its_first_requests_as_it_always_did(tmp_path: Path) -> None:
    """The first requests: a redirect to sign-in, a static file, a 404 under the console's path in the
    API's error shape."""
    with (
        running_gateway(tmp_path, {"model_list": []}, master_key="sk-lazy-0123456789") as gw,
        httpx.Client(base_url=gw.url) as client,
    ):
        redirect = client.get("/ui/audit/")
        static = client.get("/ui/static/console.css")
        missing = client.get("/ui/no-such-page")
    assert redirect.status_code == 303
    assert redirect.headers["location"] == "/ui/sign-in?next=/ui/audit"
    assert static.status_code == 200 and static.headers["content-type"].startswith("text/css")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"].startswith("no such route")


def test_with_the_console_turned_off_its_path_is_an_unknown_route(tmp_path: Path) -> None:
    with (
        running_gateway(
            tmp_path, {"model_list": []}, master_key="sk-lazy-0123456789", ui_enabled=False
        ) as gw,
        httpx.Client(base_url=gw.url) as client,
    ):
        answers = [client.get(path) for path in ("/ui", "/ui/sign-in", "/ui/static/console.css")]
        health = client.get("/health/readiness")
    assert [answer.status_code for answer in answers] == [404, 404, 404]
    assert all(answer.json()["error"]["message"].startswith("no such route") for answer in answers)
    assert health.status_code == 200
