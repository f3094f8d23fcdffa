"""Playground: chat with an alias from the browser, streamed, the reasoning apart from the answer and
the deployment, attempts, fallback, cost, latency and tokens shown; the endpoint behind it answers as
/v1/chat/completions does, for a console session with the CSRF header only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.console.conftest import MASTER_KEY
from tests.console.forms import csrf_of, signed_in_client
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway
from tests.support.browser import save_screenshot
from tests.support.request_log import request_log_db, row_for

CHAT = "/api/chat"  # where Ollama's native API takes chat requests
EVIL_ALIAS = "evil<script>alert(1)</script>"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream) -> Iterator[GatewayServer]:
    """The suite's console gateway (local-chat: Ollama on the module's fake), with prices on local-chat
    so an answer has a cost, an alias that falls back to it, an embedding alias the playground must
    not offer, an alias named like markup, and a 1 MB body limit."""
    ollama = {"api_base": upstream.url}
    config = {
        "model_list": [
            {
                "model_name": "local-chat",
                "litellm_params": {
                    "model": "ollama_chat/llama3.2",
                    **ollama,
                    "input_cost_per_token": 0.000001,
                    "output_cost_per_token": 0.000002,
                },
            },
            {"model_name": "flaky-chat", "litellm_params": {"model": "ollama_chat/flaky", **ollama}},
            {"model_name": EVIL_ALIAS, "litellm_params": {"model": "ollama_chat/llama3.2", **ollama}},
            {
                "model_name": "local-embed",
                "litellm_params": {"model": "ollama/nomic-embed-text", **ollama},
                "model_info": {"mode": "embedding"},
            },
        ],
        "router_settings": {"fallbacks": [{"flaky-chat": ["local-chat"]}]},
    }
    with running_gateway(
        tmp_path_factory.mktemp("playground"),
        config,
        master_key=MASTER_KEY,
        ui_sign_in_delay=0,
        max_request_body_bytes=1_000_000,
    ) as server:
        yield server


def _ollama_stream(thinking: list[str], content: list[str]) -> list[bytes]:
    """An Ollama /api/chat stream (NDJSON, as tests/golden/fixtures/ollama/stream_reasoning.stream.txt):
    thinking pieces, then content pieces, then the closing line with the token counts."""

    def line(message: dict[str, str], **more: Any) -> bytes:
        body = {"model": "llama3.2", "created_at": "2025-01-01T12:00:00Z", "message": message, **more}
        return (json.dumps(body) + "\n").encode()

    lines = [line({"role": "assistant", "content": "", "thinking": piece}, done=False) for piece in thinking]
    lines += [line({"role": "assistant", "content": piece}, done=False) for piece in content]
    lines.append(
        line(
            {"role": "assistant", "content": ""},
            done=True,
            done_reason="stop",
            prompt_eval_count=18,
            eval_count=64,
        )
    )
    return lines


def _open(page: Any, console: GatewayServer) -> None:
    page.goto(console.url + "/ui/playground/")
    page.select_option("#pg-model", "local-chat")


def _send(page: Any, text: str) -> None:
    page.fill("#pg-message", text)
    page.click("#pg-send")


def _fact(answer: Any, name: str) -> Any:
    return answer.locator(f'[data-fact="{name}"]')


def test_a_streamed_answer_shows_its_reasoning_apart_and_what_the_gateway_reports(
    signed_in: Any, console: GatewayServer, fresh_upstream: FakeUpstream
) -> None:
    page = signed_in
    fresh_upstream.add(
        "POST", CHAT, stream=_ollama_stream(["The user", " greets me."], ["Hello", " there!"]), times=1
    )
    _open(page, console)
    page.fill("#pg-system", "Answer briefly.")
    page.fill("#pg-temperature", "0.3")
    page.select_option("#pg-effort", "high")
    _send(page, "Hi")

    answer = page.locator(".pg-assistant").last
    expect(answer.locator(".pg-answer")).to_have_text("Hello there!")
    expect(answer.locator(".pg-thinking .pg-text")).to_have_text("The user greets me.")
    expect(answer.locator(".pg-thinking")).to_be_visible()
    expect(_fact(answer, "deployment")).to_have_text("ollama/llama3.2")
    expect(_fact(answer, "attempts")).to_have_text("1")
    expect(_fact(answer, "fallback")).to_have_text("none")
    expect(_fact(answer, "tokens")).to_have_text("18 in · 64 out")
    # a stream's cost is known when it has ended: the page reads it from the request log
    expect(_fact(answer, "cost")).to_have_text("$0.000146")  # 18 x 0.000001 + 64 x 0.000002
    expect(_fact(answer, "total")).to_contain_text("gateway")
    expect(_fact(answer, "ttft")).to_contain_text("ms")
    sent = fresh_upstream.last.json
    assert sent["messages"] == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Hi"},
    ]
    assert sent["stream"] is True and sent["think"] is True
    assert sent["options"]["temperature"] == 0.3
    save_screenshot(page, "playground")

    # the second turn sends the conversation so far
    fresh_upstream.add("POST", CHAT, stream=_ollama_stream([], ["Still here."]), times=1)
    _send(page, "Are you there?")
    expect(page.locator(".pg-assistant").last.locator(".pg-answer")).to_have_text("Still here.")
    assert fresh_upstream.last.json["messages"] == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello there!"},
        {"role": "user", "content": "Are you there?"},
    ]

    # Clear forgets it
    page.click("#pg-clear")
    expect(page.locator(".pg-turn")).to_have_count(0)
    fresh_upstream.add("POST", CHAT, stream=_ollama_stream([], ["New start."]), times=1)
    _send(page, "Hello again")
    expect(page.locator(".pg-assistant").last.locator(".pg-answer")).to_have_text("New start.")
    assert [m["content"] for m in fresh_upstream.last.json["messages"]] == ["Answer briefly.", "Hello again"]


def test_a_whole_answer_renders_the_same_way_with_its_cost_header(
    signed_in: Any, console: GatewayServer, fresh_upstream: FakeUpstream
) -> None:
    page = signed_in
    fresh_upstream.add(
        "POST",
        CHAT,
        json={
            "model": "llama3.2",
            "created_at": "2025-01-01T12:00:00Z",
            "message": {"role": "assistant", "content": "Forty-two.", "thinking": "Six times seven."},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 10,
            "eval_count": 5,
        },
        times=1,
    )
    _open(page, console)
    page.uncheck("#pg-stream")
    page.fill("#pg-max-tokens", "50")
    _send(page, "What is six times seven?")
    answer = page.locator(".pg-assistant").last
    expect(answer.locator(".pg-answer")).to_have_text("Forty-two.")
    expect(answer.locator(".pg-thinking .pg-text")).to_have_text("Six times seven.")
    expect(_fact(answer, "cost")).to_have_text("$0.00002")  # 10 x 0.000001 + 5 x 0.000002
    expect(_fact(answer, "tokens")).to_have_text("10 in · 5 out")
    sent = fresh_upstream.last.json
    assert sent["stream"] is False and sent["options"]["num_predict"] == 50


def test_a_fallback_is_shown_with_every_attempt(
    signed_in: Any, console: GatewayServer, fresh_upstream: FakeUpstream
) -> None:
    page = signed_in
    fresh_upstream.add("POST", CHAT, stream=_ollama_stream([], ["From the fallback."]), times=1)
    fresh_upstream.add(
        "POST", CHAT, status=500, json={"error": "llama runner process has terminated"}, times=1
    )
    page.goto(console.url + "/ui/playground/?alias=flaky-chat")
    expect(page.locator("#pg-model")).to_have_value("flaky-chat")
    _send(page, "Hi")
    answer = page.locator(".pg-assistant").last
    expect(answer.locator(".pg-answer")).to_have_text("From the fallback.")
    expect(_fact(answer, "fallback")).to_contain_text("flaky-chat -> local-chat")
    expect(_fact(answer, "deployment")).to_have_text("ollama/llama3.2")


def test_an_upstream_error_is_shown_readably(
    signed_in: Any, console: GatewayServer, fresh_upstream: FakeUpstream
) -> None:
    page = signed_in
    fresh_upstream.add(
        "POST", CHAT, status=500, json={"error": "llama runner process has terminated"}, times=1
    )
    _open(page, console)
    _send(page, "Hi")
    error = page.locator(".pg-assistant").last.locator(".pg-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("llama runner process has terminated")
    expect(error).to_contain_text("50")  # the gateway's status for an upstream's 500
    failed = page.locator(".pg-assistant").last
    expect(_fact(failed, "attempts")).to_have_text("1")
    expect(_fact(failed, "deployment")).to_have_text("ollama/llama3.2 (tried last)")  # from the request log
    expect(_fact(failed, "cost")).to_have_text("\u2013")  # an en dash: no cost for a failure
    # the failed turn is not part of the conversation: the next one is sent alone
    fresh_upstream.add("POST", CHAT, stream=_ollama_stream([], ["Back."]), times=1)
    _send(page, "Again")
    expect(page.locator(".pg-assistant").last.locator(".pg-answer")).to_have_text("Back.")
    assert fresh_upstream.last.json["messages"] == [{"role": "user", "content": "Again"}]


def test_an_ended_session_is_said_so(signed_in: Any, console: GatewayServer) -> None:
    page = signed_in
    _open(page, console)
    page.context.clear_cookies()
    _send(page, "Hi")
    error = page.locator(".pg-assistant").last.locator(".pg-error")
    expect(error).to_contain_text("Your console session has ended")


def test_markup_in_an_answer_or_an_alias_renders_as_text(
    signed_in: Any, console: GatewayServer, fresh_upstream: FakeUpstream
) -> None:
    page = signed_in
    hostile = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"><b>bold</b>'
    fresh_upstream.add("POST", CHAT, stream=_ollama_stream([hostile], [hostile]), times=1)
    _open(page, console)
    expect(page.locator("#pg-model option", has_text=EVIL_ALIAS)).to_have_count(1)
    _send(page, hostile)
    answer = page.locator(".pg-assistant").last
    expect(answer.locator(".pg-answer")).to_have_text(hostile)
    expect(answer.locator(".pg-thinking .pg-text")).to_have_text(hostile)
    expect(page.locator(".pg-user").last.locator(".pg-text")).to_have_text(hostile)
    assert page.locator(".pg-transcript img, .pg-transcript script, .pg-transcript b").count() == 0
    assert page.evaluate("window.pwned") is None


def test_stop_ends_a_stream_and_keeps_what_had_arrived(
    signed_in: Any, console: GatewayServer, fresh_upstream: FakeUpstream
) -> None:
    page = signed_in
    fresh_upstream.add("POST", CHAT, stream=_ollama_stream([], ["Partial"]), hang_after=1, times=1)
    _open(page, console)
    _send(page, "Tell me a long story")
    answer = page.locator(".pg-assistant").last
    expect(answer.locator(".pg-answer")).to_have_text("Partial")
    page.click("#pg-stop")
    expect(answer.locator(".pg-error")).to_have_text("Stopped.")
    expect(page.locator("#pg-send")).to_be_enabled()
    assert fresh_upstream.disconnected.wait(10)  # the gateway hung up on the upstream too


def test_the_page_offers_the_chat_aliases_only(console: GatewayServer) -> None:
    client = signed_in_client(console.url, MASTER_KEY)
    page = client.get("/ui/playground/")
    assert page.status_code == 200
    assert "content-security-policy" in page.headers
    assert '<option value="local-chat"' in page.text and '<option value="flaky-chat"' in page.text
    assert "local-embed" not in page.text
    assert "<script>alert(1)" not in page.text and "evil&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>" not in page.text.split("<body>")[1]  # no inline script: the CSP forbids it


def _chat(client: httpx.Client, body: Any, **headers: str) -> httpx.Response:
    return client.post("/ui/playground/chat", json=body, headers=headers)


def test_the_endpoint_answers_as_the_api_does(console: GatewayServer, fresh_upstream: FakeUpstream) -> None:
    client = signed_in_client(console.url, MASTER_KEY)
    csrf = csrf_of(client.get("/ui/playground/").text)
    fresh_upstream.add("POST", CHAT, stream=_ollama_stream(["Hm."], ["Hi!"]), times=1)
    body = {
        "model": "local-chat",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with client.stream("POST", "/ui/playground/chat", json=body, headers={"x-csrf-token": csrf}) as answer:
        events = [line for line in answer.iter_lines() if line.startswith("data: ")]
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert answer.headers["x-turnout-deployment"] == "ollama/llama3.2"
    assert answer.headers["x-turnout-attempts"] == "1"
    request_id = answer.headers["x-turnout-request-id"]
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(event[6:]) for event in events[:-1]]
    assert (
        "".join(c["choices"][0]["delta"].get("reasoning_content") or "" for c in chunks if c["choices"])
        == "Hm."
    )
    assert chunks[-1]["usage"]["prompt_tokens"] == 18

    # what the request log recorded of it (the recorder writes every half second: wait for the row)
    with request_log_db(console) as db:
        row_for(db, request_id)
    logged = client.get(f"/ui/playground/requests/{request_id}").json()
    assert logged["cost"] == "0.000146" and logged["attempts"] == 1 and logged["status"] == 200
    assert client.get("/ui/playground/requests/not-an-id").status_code == 404

    unknown = _chat(
        client, {"model": "nope", "messages": [{"role": "user", "content": "x"}]}, **{"x-csrf-token": csrf}
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "model_not_found"
    bad = client.post(
        "/ui/playground/chat",
        content=b"{not json",
        headers={"x-csrf-token": csrf, "content-type": "application/json"},
    )
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    too_big = {"model": "local-chat", "messages": [{"role": "user", "content": "x" * 1_100_000}]}
    assert _chat(client, too_big, **{"x-csrf-token": csrf}).status_code == 413


def test_the_endpoint_needs_a_session_and_the_csrf_header(console: GatewayServer) -> None:
    body = {"model": "local-chat", "messages": [{"role": "user", "content": "Hi"}]}
    client = signed_in_client(console.url, MASTER_KEY)
    assert _chat(client, body).status_code == 403
    assert _chat(client, body, **{"x-csrf-token": "forged"}).status_code == 403
    with httpx.Client(base_url=console.url) as anonymous:
        assert _chat(anonymous, body).status_code == 401
        assert anonymous.get("/ui/playground/", follow_redirects=False).status_code == 303
        created = anonymous.post(
            "/key/generate", json={}, headers={"authorization": f"Bearer {MASTER_KEY}"}
        ).json()["key"]
        for key in (created, MASTER_KEY):  # a header is never read here, not even the master key's
            as_bearer = _chat(anonymous, body, authorization=f"Bearer {key}")
            assert as_bearer.status_code == 401
