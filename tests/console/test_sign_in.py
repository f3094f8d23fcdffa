"""Who opens the console: the master key or an admin password, never a virtual key; sessions are
signed cookies (HttpOnly, SameSite=Strict) that expire; changes need the CSRF token; failed sign-ins
are slowed, counted, locked out and audited."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.console.conftest import MASTER_KEY
from tests.console.forms import csrf_of, sign_in_token, signed_in_client
from tests.support import FakeClock, GatewayServer, running_gateway
from tests.support.browser import save_screenshot, sign_in


def _post_sign_in(client: httpx.Client, secret: str, username: str = "") -> httpx.Response:
    return client.post(
        "/ui/sign-in", data={"_signin": sign_in_token(client), "username": username, "secret": secret}
    )


def test_a_page_without_a_session_sends_the_browser_to_sign_in(console: GatewayServer) -> None:
    answer = httpx.get(console.url + "/ui/audit/", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/sign-in?next=/ui/audit"


def test_the_master_key_signs_in_with_a_strict_http_only_cookie(console: GatewayServer) -> None:
    with httpx.Client(base_url=console.url) as client:
        answer = _post_sign_in(client, MASTER_KEY)
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ui" in cookie
    assert "max-age=28800" in cookie
    assert MASTER_KEY.lower() not in cookie


def test_a_browser_signs_in_and_out(page: Any, console: GatewayServer) -> None:
    page.goto(console.url + "/ui/sign-in")
    save_screenshot(page, "sign-in")
    sign_in(page, console.url, MASTER_KEY)
    assert page.locator(".top .who").inner_text() == "master key"
    page.click(".sign-out button")
    page.wait_for_url("**/ui/sign-in")
    page.goto(console.url + "/ui/audit/")
    assert "/ui/sign-in" in page.url


def test_a_wrong_key_is_refused_with_the_same_words_as_any_failure(console: GatewayServer) -> None:
    with httpx.Client(base_url=console.url) as client:
        wrong = _post_sign_in(client, "sk-not-the-master")
        unknown_user = _post_sign_in(client, "whatever-password", username="nobody")
    assert wrong.status_code == unknown_user.status_code == 401
    assert (
        "Wrong name, key or password." in wrong.text and "Wrong name, key or password." in unknown_user.text
    )
    assert "set-cookie" not in wrong.headers


def test_a_virtual_key_never_opens_the_console(console: GatewayServer) -> None:
    created = httpx.post(
        console.url + "/key/generate", json={}, headers={"authorization": f"Bearer {MASTER_KEY}"}
    )
    virtual = created.json()["key"]
    with httpx.Client(base_url=console.url) as client:
        assert _post_sign_in(client, virtual).status_code == 401
        as_bearer = client.get("/ui/", headers={"authorization": f"Bearer {virtual}"}, follow_redirects=False)
        assert as_bearer.status_code == 303  # a header is never read here: only a session cookie
        master_bearer = client.get(
            "/ui/", headers={"authorization": f"Bearer {MASTER_KEY}"}, follow_redirects=False
        )
        assert master_bearer.status_code == 303  # not even the master key, as a header


def test_a_change_without_the_csrf_token_is_refused(console: GatewayServer) -> None:
    client = signed_in_client(console.url, MASTER_KEY)
    assert client.post("/ui/sign-out").status_code == 403
    forged = client.post("/ui/sign-out", data={"_csrf": "forged"})
    assert forged.status_code == 403
    other_site = client.post(
        "/ui/sign-out",
        data={"_csrf": csrf_of(client.get("/ui/").text)},
        headers={"origin": "https://evil.example"},
    )
    assert other_site.status_code == 403
    assert client.post("/ui/sign-out", data={"_csrf": csrf_of(client.get("/ui/").text)}).status_code == 303


def test_a_forged_or_altered_cookie_opens_nothing(console: GatewayServer) -> None:
    client = signed_in_client(console.url, MASTER_KEY)
    cookie = client.cookies["turnout_console"]
    payload, _, mac = cookie.partition(".")
    for forged in (payload + ".AAAA", "x" * 5000, "", payload[:-2] + "." + mac):
        client.cookies.set("turnout_console", forged, path="/ui")
        assert client.get("/ui/", follow_redirects=False).status_code == 303


def test_failed_sign_ins_lock_the_address_out_and_are_audited(tmp_path: Path) -> None:
    clock = FakeClock(1_800_000_000)
    with (
        running_gateway(
            tmp_path, master_key=MASTER_KEY, ui_sign_in_delay=0, ui_max_failed_sign_ins=3, clock=clock
        ) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        statuses = [_post_sign_in(client, f"guess-{n}").status_code for n in range(3)]
        locked = _post_sign_in(client, MASTER_KEY)  # even the right key waits out the lockout
        assert statuses == [401, 401, 401]
        assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text
        clock.advance(server.settings.ui_lockout_seconds + 1)
        assert _post_sign_in(client, MASTER_KEY).status_code == 303
        audit = client.get("/ui/audit/").text
    assert audit.count("sign_in_failed") == 3
    assert "guess-" not in audit  # what was typed is never recorded


def test_a_failed_sign_in_waits_the_configured_delay(tmp_path: Path) -> None:
    waited: list[float] = []

    async def pause(seconds: float) -> None:
        waited.append(seconds)

    with (
        running_gateway(tmp_path, master_key=MASTER_KEY, ui_sign_in_delay=2.5) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        server.app.state.console.pause = pause
        assert _post_sign_in(client, "wrong").status_code == 401
        assert _post_sign_in(client, MASTER_KEY).status_code == 303
    assert waited == [2.5]


def test_a_session_expires(tmp_path: Path) -> None:
    clock = FakeClock(1_800_000_000)
    with running_gateway(tmp_path, master_key=MASTER_KEY, ui_session_ttl=60, clock=clock) as server:
        client = signed_in_client(server.url, MASTER_KEY)
        assert client.get("/ui/").status_code == 200
        clock.advance(61)
        assert client.get("/ui/").status_code == 303


def test_an_admin_password_from_the_environment_signs_in(tmp_path: Path) -> None:
    with (
        running_gateway(tmp_path, admin_password="correct horse battery", ui_sign_in_delay=0) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        assert _post_sign_in(client, "correct horse battery", username="someone").status_code == 401
        assert _post_sign_in(client, "correct horse battery", username="admin").status_code == 303
        assert ">user:admin<" in client.get("/ui/").text


def test_without_master_key_or_password_nothing_opens_the_console(tmp_path: Path) -> None:
    with running_gateway(tmp_path, ui_sign_in_delay=0) as server, httpx.Client(base_url=server.url) as client:
        form = client.get("/ui/sign-in").text
        assert "There is no default password" in form
        for secret, user in (("", ""), ("admin", "admin"), ("anything", "")):
            assert _post_sign_in(client, secret, username=user).status_code in (400, 401)


def test_set_password_stores_a_hash_and_a_new_password_ends_old_sessions(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'turnout.db'}"

    def set_password(password: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "engine", "admin", "set-password", "--user", "ops", "--password-stdin"],
            input=password + "\n",
            capture_output=True,
            text=True,
            env={"TURNOUT_DATABASE_URL": database, "PATH": "/usr/bin:/bin"},
            check=False,
        )

    too_short = set_password("short")
    assert too_short.returncode == 2 and "at least 12" in too_short.stderr
    assert set_password("first long password").returncode == 0
    with running_gateway(tmp_path, ui_sign_in_delay=0) as server:
        client = signed_in_client(server.url, "first long password", username="ops")
        assert client.get("/ui/").status_code == 200
        changed = set_password("second long password")
        assert changed.returncode == 0
        assert client.get("/ui/", follow_redirects=False).status_code == 303
        signed_in_client(server.url, "second long password", username="ops")
    # read once the server has stopped: closing a file SQLite has open, in its own process, would drop
    # SQLite's locks on it (POSIX locks are per process)
    stored = (tmp_path / "turnout.db").read_bytes()
    assert b"long password" not in stored and b"scrypt$" in stored
