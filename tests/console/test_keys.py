"""The Keys page: list with spend against budget, create (the secret shown once), edit and revoke, each
change checked like the admin API's, audited, and applied to the serving path at once."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import select

from engine.store.models import ApiKeyRow, AuditRow
from tests.console.conftest import MASTER_KEY
from tests.console.forms import csrf_of, signed_in_client
from tests.fakes import FakeUpstream
from tests.support import FakeClock, GatewayServer, running_gateway
from tests.support.browser import save_screenshot
from tests.support.request_log import request_log_db


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream) -> Iterator[GatewayServer]:
    """Two aliases on the fake upstream, so that a key limited to one is refused the other."""
    config = {
        "model_list": [
            {
                "model_name": name,
                "litellm_params": {"model": "ollama_chat/llama3.2", "api_base": upstream.url},
            }
            for name in ("local-chat", "other-chat")
        ]
    }
    with running_gateway(
        tmp_path_factory.mktemp("keys"), config, master_key=MASTER_KEY, ui_sign_in_delay=0
    ) as server:
        yield server


def _answer(upstream: FakeUpstream) -> None:
    upstream.add(
        "POST",
        "/api/chat",
        json={"model": "llama3.2", "message": {"role": "assistant", "content": "hi"}, "done": True},
    )


def _chat(server: GatewayServer, key: str, model: str) -> Any:
    client = openai.OpenAI(base_url=server.v1, api_key=key, max_retries=0)
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello"}])


def _status_of_chat(server: GatewayServer, key: str, model: str) -> int:
    try:
        _chat(server, key, model)
    except openai.APIStatusError as error:
        return error.status_code
    return 200


def _audit(server: GatewayServer, action: str) -> list[AuditRow]:
    with request_log_db(server) as db, db.connect() as connection:
        rows = connection.execute(select(AuditRow.__table__).where(AuditRow.action == action)).all()
    return [AuditRow(**row._asdict()) for row in rows]


def _key_row(server: GatewayServer, prefix: str) -> ApiKeyRow:
    with request_log_db(server) as db, db.connect() as connection:
        found = connection.execute(select(ApiKeyRow.__table__).where(ApiKeyRow.key_prefix == prefix)).one()
    return ApiKeyRow(**found._asdict())


def _new_key(client: httpx.Client, **fields: Any) -> httpx.Response:
    csrf = csrf_of(client.get("/ui/keys/").text)
    return client.post("/ui/keys", data={"_csrf": csrf, **fields})


def test_a_key_created_in_the_browser_works_at_once_is_edited_and_revoked(
    signed_in: Any, console: GatewayServer, fresh_upstream: FakeUpstream
) -> None:
    page = signed_in
    _answer(fresh_upstream)
    page.goto(console.url + "/ui/keys/")
    page.fill("input[name=key_alias]", "team-browser")
    page.fill("input[name=max_budget]", "5")
    page.fill("input[name=budget_duration]", "a month")
    page.click("#new-key button[type=submit]")  # refused: the error comes back next to the field
    page.locator("#error-budget_duration").wait_for()
    assert page.input_value("input[name=key_alias]") == "team-browser"
    page.fill("input[name=budget_duration]", "30d")
    page.fill("input[name=rpm_limit]", "100")
    page.check("input[name=models][value=local-chat]")
    page.click("#new-key button[type=submit]")
    secret_box = page.locator("#created-key.secret-once")
    secret_box.wait_for()
    assert page.locator("#created-key button[data-copy='#new-key-secret']").is_visible()
    secret = page.locator("#new-key-secret").inner_text().strip()
    assert re.fullmatch(r"sk-[A-Za-z0-9_-]{32}", secret)
    save_screenshot(page, "key-created")
    page.click("#created-key button[data-copy]")
    page.locator("#created-key button[data-copy]", has_text="Copied").wait_for()

    # the key works at once, for its alias only
    assert _chat(console, secret, "local-chat").choices[0].message.content == "hi"
    assert _status_of_chat(console, secret, "other-chat") in (401, 403)

    # a reload never shows the secret again
    page.reload()
    assert page.locator("#created-key").count() == 0
    assert secret not in page.content()
    row = page.locator("tr", has_text="team-browser")
    assert secret[:8] in row.inner_text()
    save_screenshot(page, "keys")

    # an edit applies at once: the other alias is allowed now
    row.get_by_role("link", name="Edit").click()
    page.check("input[name=models][value=other-chat]")
    page.click("form button[type=submit]:has-text('Save')")
    page.wait_for_url("**/ui/keys/")
    assert _status_of_chat(console, secret, "other-chat") == 200

    # revoke asks first, then the key is refused at once
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("tr", has_text="team-browser").get_by_role("button", name="Revoke").click()
    page.wait_for_url("**/ui/keys/")
    assert page.locator("tr", has_text="team-browser").count() == 0
    assert _status_of_chat(console, secret, "local-chat") == 401


def test_a_dismissed_confirm_revokes_nothing(signed_in: Any, console: GatewayServer) -> None:
    client = signed_in_client(console.url, MASTER_KEY)
    assert _new_key(client, key_alias="kept-key").status_code == 201
    page = signed_in
    page.goto(console.url + "/ui/keys/")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.locator("tr", has_text="kept-key").get_by_role("button", name="Revoke").click()
    page.goto(console.url + "/ui/keys/")
    assert page.locator("tr", has_text="kept-key").count() == 1


def test_bad_fields_are_shown_next_to_them_with_what_was_typed(console: GatewayServer) -> None:
    client = signed_in_client(console.url, MASTER_KEY)
    before = client.get("/key/list", headers={"authorization": f"Bearer {MASTER_KEY}"}).json()["total_count"]
    answer = _new_key(
        client,
        key_alias="typed-alias",
        max_budget="-3",
        budget_duration="3 fortnights",
        rpm_limit="many",
        tpm_limit="0",
        privacy="public",
        duration="soon",
        models="no-such-alias",
    )
    assert answer.status_code == 422
    html = answer.text
    for name in ("max_budget", "budget_duration", "rpm_limit", "tpm_limit", "privacy", "duration"):
        assert f'id="error-{name}"' in html, name
    assert 'value="typed-alias"' in html and 'value="3 fortnights"' in html and 'value="many"' in html
    assert "must be a number from 0" in html and "not a duration like 30s" in html
    after = client.get("/key/list", headers={"authorization": f"Bearer {MASTER_KEY}"}).json()["total_count"]
    assert after == before


def test_an_allowed_model_nothing_serves_is_refused_next_to_the_models(console: GatewayServer) -> None:
    client = signed_in_client(console.url, MASTER_KEY)
    answer = _new_key(client, key_alias="ghost", models="no-such-alias")
    assert answer.status_code == 422
    assert 'id="error-models"' in answer.text and "no model is configured as" in answer.text
    assert "ghost" not in client.get("/ui/keys/").text


def test_a_change_without_the_csrf_token_is_refused(console: GatewayServer) -> None:
    client = signed_in_client(console.url, MASTER_KEY)
    answer = client.post("/ui/keys", data={"key_alias": "no-token"})
    assert answer.status_code == 403
    assert "no-token" not in client.get("/ui/keys/").text


def test_an_alias_with_a_script_renders_as_text(console: GatewayServer) -> None:
    client = signed_in_client(console.url, MASTER_KEY)
    assert _new_key(client, key_alias="<script>alert(1)</script>").status_code == 201
    html = client.get("/ui/keys/").text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_changes_are_audited_without_the_secret(console: GatewayServer) -> None:
    client = signed_in_client(console.url, MASTER_KEY)
    created = _new_key(client, key_alias="audited", rpm_limit="10")
    assert created.status_code == 201
    secret = re.search(r'id="new-key-secret">([^<]+)<', created.text)
    assert secret
    row = _key_row(console, secret.group(1)[:8])
    csrf = csrf_of(created.text)
    edit = client.get(f"/ui/keys/{row.id}")
    assert edit.status_code == 200 and 'value="10"' in edit.text
    updated = client.post(
        f"/ui/keys/{row.id}",
        data={"_csrf": csrf, "key_alias": "audited", "rpm_limit": "20", "duration": "7d"},
    )
    assert updated.status_code == 303
    changed = _key_row(console, row.key_prefix)
    assert changed.rpm_limit == 20 and changed.expires_at is not None
    assert client.post(f"/ui/keys/{row.id}/revoke", data={"_csrf": csrf}).status_code == 303

    target = f"key:{row.id}"
    create = next(entry for entry in _audit(console, "key.create") if entry.target == target)
    update = next(entry for entry in _audit(console, "key.update") if entry.target == target)
    revoke = next(entry for entry in _audit(console, "key.revoke") if entry.target == target)
    assert create.before is None and create.after["prefix"] == f"{row.key_prefix}..."
    assert update.before["rpm_limit"] == 10 and update.after["rpm_limit"] == 20
    assert revoke.before["revoked"] is None and revoke.after["revoked"] is not None
    assert create.actor == "master key"
    for entry in (create, update, revoke):
        assert secret.group(1) not in str(entry.before) + str(entry.after)
    assert client.get(f"/ui/keys/{row.id}").status_code == 404  # a revoked key is not edited


def test_an_edit_that_keeps_the_period_keeps_its_reset_time(console: GatewayServer) -> None:
    client = signed_in_client(console.url, MASTER_KEY)
    created = _new_key(client, key_alias="period", max_budget="2", budget_duration="30d")
    secret = re.search(r'id="new-key-secret">([^<]+)<', created.text)
    assert secret
    row = _key_row(console, secret.group(1)[:8])
    fields = {"key_alias": "period", "max_budget": "3", "budget_duration": "30d"}
    answer = client.post(f"/ui/keys/{row.id}", data={"_csrf": csrf_of(created.text), **fields})
    assert answer.status_code == 303
    changed = _key_row(console, row.key_prefix)
    assert changed.budget_reset_at == row.budget_reset_at and changed.max_budget == 3
    page = client.get("/ui/keys/").text
    assert "<meter" in page and "resets" in page


def test_an_expired_key_is_shown_as_expired(tmp_path: Path) -> None:
    clock = FakeClock()
    config = {"model_list": [{"model_name": "m", "litellm_params": {"model": "ollama_chat/x"}}]}
    with running_gateway(tmp_path, config, master_key=MASTER_KEY, clock=clock) as server:
        client = signed_in_client(server.url, MASTER_KEY)
        assert _new_key(client, key_alias="short-lived", duration="1d").status_code == 201
        row = re.search(r'<tr id="key-\d+"\s*>(.*?)</tr>', client.get("/ui/keys/").text, re.S)
        assert row and "short-lived" in row.group(1) and "expired" not in row.group(1)
        clock.set(datetime(2100, 1, 1, tzinfo=UTC).timestamp())  # long after any wall clock's "1d"
        client = signed_in_client(server.url, MASTER_KEY)  # the session expired with the move, too
        listed = client.get("/ui/keys/").text
        row = re.search(r"<tr id=\"key-\d+\" class=\"expired\">(.*?)</tr>", listed, re.S)
        assert (
            row and "short-lived" in row.group(1) and '<span class="badge bad">expired</span>' in row.group(1)
        )
