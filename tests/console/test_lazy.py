"""The console costs a process that serves only the API nothing: its pages are imported and their
routes built on the first request under `ui_path` (engine.console.lazy), and answer as before from
then on; a process with the console turned off answers 404 there, as for any unknown route."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support import running_gateway

# modules that a serving process imports only once the console has been asked for, and never
_CONSOLE = ("engine.console.routes", "engine.console.pages", "engine.console.render")
_NEVER = ("pydantic.v1", "litestar.plugins.pydantic", "litestar.plugins.attrs")

_SCRIPT = """
import json, sys
import httpx
from pathlib import Path
from tests.support import running_gateway

def imported():
    return sorted(m for m in sys.modules if m.startswith(tuple(json.loads(sys.argv[2]))))

seen = {}
key = "sk-lazy-0123456789"
with running_gateway(Path(sys.argv[1]), {"model_list": []}, master_key=key) as gw:
    seen["health"] = httpx.get(gw.url + "/health/readiness").status_code
    seen["models"] = httpx.get(gw.v1 + "/models", headers={"authorization": "Bearer " + key}).status_code
    seen["before"] = imported()
    page = httpx.get(gw.url + "/ui/sign-in")
    seen["page"] = [page.status_code, page.headers.get("content-security-policy", "")]
    seen["after"] = imported()
print(json.dumps(seen))
"""


def test_a_serving_process_imports_the_console_on_its_first_request_only(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path), json.dumps([*_CONSOLE, *_NEVER])],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["health"] == 200 and seen["models"] == 200
    assert seen["before"] == []  # the API served, the console not yet asked for
    status, policy = seen["page"]
    assert status == 200 and "script-src 'self'" in policy
    assert set(_CONSOLE) <= set(seen["after"])
    assert not [name for name in seen["after"] if name.startswith(_NEVER)]


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
