"""The issue's walk through the console, in one browser session, as an operator moving from
LiteLLM's or Ollama2OpenAI's UI would take it: add an Ollama deployment, test it, map a model to a new
alias, issue a key for that alias, use it with the `openai` SDK, find the request in the log and the
overview, revoke the key. Each page's own tests go into the details; this one proves they fit."""

from __future__ import annotations

import re
from typing import Any

import httpx
import openai
import pytest

from tests.console.conftest import MASTER_KEY
from tests.console.forms import csrf_of, sign_in_token, signed_in_client
from tests.console.test_providers import CHAT, _script_probe
from tests.e2e.conftest import golden_json
from tests.fakes import FakeUpstream
from tests.support import GatewayServer

NASTY_MODEL = "<script>document.title='owned'</script>"
TAGS = {"models": [{"name": "llama3.2:latest"}, {"name": "qwen3:8b"}, {"name": NASTY_MODEL}]}


def _requests_shown(page: Any) -> int:
    return int(page.locator("#stat-requests .value").inner_text().replace(",", ""))


def test_an_operator_walks_the_console_end_to_end(
    signed_in: Any, console: GatewayServer, fresh_upstream: FakeUpstream
) -> None:
    from playwright.sync_api import expect

    page = signed_in
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))

    # the overview's request count before anything happens
    page.goto(console.url + "/ui/?period=hour&by=key")
    requests_before = _requests_shown(page)

    # add an Ollama-native deployment pointing at the fake upstream, and test its connection
    page.goto(console.url + "/ui/providers/")
    page.locator('#catalogue tr[data-provider="ollama"] a', has_text="Add deployment").click()
    page.fill("input[name=api_base]", fresh_upstream.url)
    page.fill("input[name=upstream_model]", "llama3.2")
    page.fill("input[name=alias]", "journey-llama")
    _script_probe(fresh_upstream)
    page.click("#test-connection")
    for step in ("chat", "tools", "vision", "reasoning", "streaming"):
        expect(page.locator(f'tr[data-step="{step}"]')).to_have_attribute("data-outcome", "pass")
    _script_probe(fresh_upstream, streaming_status=500)  # the backend breaks: one step fails
    page.click("#test-connection")
    expect(page.locator('tr[data-step="streaming"]')).to_have_attribute("data-outcome", "fail")
    expect(page.locator('tr[data-step="chat"]')).to_have_attribute("data-outcome", "pass")
    page.click("#save")
    page.wait_for_url(re.compile(r".*/ui/providers/$"))
    expect(page.locator('tbody[data-alias="journey-llama"] tr[data-source="console"]')).to_be_visible()

    # refresh the backend's models and map one to a new alias in one step; a model named like a
    # script is listed as text
    fresh_upstream.add("GET", "/api/tags", json=TAGS)
    refresh = page.locator("#refresh-form")
    refresh.locator("select[name=endpoint]").select_option("")
    refresh.locator("select[name=provider]").select_option("ollama")
    refresh.locator("input[name=api_base]").fill(fresh_upstream.url)
    refresh.locator("button[type=submit]").click()
    qwen = page.locator('.refresh-results .map-row[data-model="qwen3:8b"]')
    expect(qwen).to_be_visible()
    expect(page.locator(".refresh-results")).to_contain_text(NASTY_MODEL)
    qwen.locator("input[name=alias]").fill("journey-qwen")
    qwen.locator("button", has_text="Map to alias").click()
    expect(page.locator('tbody[data-alias="journey-qwen"]')).to_contain_text("qwen3:8b")
    assert page.title() != "owned"

    # a key limited to the new alias
    page.goto(console.url + "/ui/keys/")
    page.fill("input[name=key_alias]", "journey-key")
    page.check("input[name=models][value=journey-qwen]")
    page.click("#new-key button[type=submit]")
    secret = page.locator("#new-key-secret").inner_text().strip()
    assert secret.startswith("sk-")

    # the openai SDK calls the alias with that key; another alias is refused
    fresh_upstream.add("POST", CHAT, json=golden_json("ollama", "simple.response.json"))
    client = openai.OpenAI(base_url=console.v1, api_key=secret, max_retries=0)
    answer = client.chat.completions.create(
        model="journey-qwen", messages=[{"role": "user", "content": "Hi"}]
    )
    assert answer.choices[0].message.content == "Hello! It's nice to meet you."
    assert fresh_upstream.last.json["model"] == "qwen3:8b"
    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(model="local-chat", messages=[{"role": "user", "content": "Hi"}])
    assert refused.value.status_code in (401, 403)

    # the request is in the request log (the recorder writes within a second: reload until it is)
    page.goto(console.url + "/ui/requests/?alias=journey-qwen")
    for _ in range(50):
        if page.locator("#request-rows tbody tr", has_text="journey-qwen").count():
            break
        page.wait_for_timeout(100)  # a condition polled, not a fixed wait: the loop ends when it holds
        page.reload()
    row = page.locator("#request-rows tbody tr", has_text="journey-qwen").first
    expect(row).to_contain_text("200")
    row.locator("a").first.click()
    expect(page.locator("#request-detail")).to_contain_text("qwen3:8b")

    # and in the overview's totals, under its key
    page.goto(console.url + "/ui/?period=hour&by=key")
    assert _requests_shown(page) >= requests_before + 2  # the answer and the refusal
    expect(page.locator("#breakdown")).to_contain_text("journey-key")

    # revoke the key: the next call is a 401
    page.goto(console.url + "/ui/keys/")
    page.locator("tr", has_text="journey-key").get_by_role("button", name="Revoke").click()
    page.wait_for_url("**/ui/keys/")
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="journey-qwen", messages=[{"role": "user", "content": "Hi"}])
    assert dialogs, "revoking asked for a confirmation"

    # every change is in the audit log
    page.goto(console.url + "/ui/audit/")
    for action in ("deployment.create", "key.create", "key.revoke"):
        expect(page.locator("#audit, table.grid").first).to_contain_text(action)


def test_a_form_without_the_csrf_token_and_a_virtual_key_are_refused(console: GatewayServer) -> None:
    admin = signed_in_client(console.url, MASTER_KEY)
    page = admin.get("/ui/keys/").text
    without = admin.post("/ui/keys", data={"key_alias": "no-token"})
    assert without.status_code == 403
    assert admin.post("/ui/keys", data={"key_alias": "with-token", "_csrf": csrf_of(page)}).status_code in (
        200,
        201,
        303,
    )
    virtual = httpx.post(
        console.url + "/key/generate", json={}, headers={"authorization": f"Bearer {MASTER_KEY}"}
    ).json()["key"]
    with httpx.Client(base_url=console.url) as browserless:
        form = {"_signin": sign_in_token(browserless), "username": "", "secret": virtual}
        assert browserless.post("/ui/sign-in", data=form).status_code == 401
        opened = browserless.get("/ui/", headers={"authorization": f"Bearer {virtual}"})
        assert opened.status_code == 303 and opened.headers["location"].startswith("/ui/sign-in")
