"""The router end to end: retries, failover, fallbacks, cooldowns, limits, privacy, attempt headers.

Fake upstreams are scripted to fail, and each test asserts the sequence of attempts it caused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.fakes import FakeUpstream
from tests.support import running_gateway, sdk_types
from tests.support.server import free_port

HI = [{"role": "user", "content": "hi"}]


def _ollama_answer(text: str = "ok") -> dict[str, Any]:
    return {
        "model": "m",
        "created_at": "2025-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": text},
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 1,
        "eval_count": 1,
    }


def _entry(alias: str, url: str, model: str, **extra: Any) -> dict[str, Any]:
    info = extra.pop("model_info", None)
    entry: dict[str, Any] = {
        "model_name": alias,
        "litellm_params": {"model": f"ollama/{model}", "api_base": url, **extra},
    }
    if info:
        entry["model_info"] = info
    return entry


def _ask(gw: Any, alias: str, **headers: str) -> httpx.Response:
    return sdk_types.post(
        gw.v1 + "/chat/completions", json={"model": alias, "messages": HI}, headers=headers, timeout=20
    )


def test_failover_to_the_next_deployment_and_headers(tmp_path: Path) -> None:
    with FakeUpstream() as bad, FakeUpstream() as good:
        bad.add("POST", "/api/chat", status=500, json={"error": "boom"})
        good.add("POST", "/api/chat", json=_ollama_answer("from good"))
        config = {
            "model_list": [_entry("a", bad.url, "bad", order=1), _entry("a", good.url, "good", order=2)],
            "router_settings": {"routing_strategy": "simple-shuffle"},
        }
        with running_gateway(tmp_path, config) as gw:
            answer = _ask(gw, "a")
    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["content"] == "from good"
    assert answer.headers["x-turnout-attempts"] == "2"
    assert answer.headers["x-turnout-attempted"] == "ollama/bad=500, ollama/good=ok"
    assert answer.headers["x-turnout-deployment"] == "ollama/good"


def test_retries_with_backoff_on_one_deployment(tmp_path: Path) -> None:
    with FakeUpstream() as fake:
        fake.add("POST", "/api/chat", json=_ollama_answer("third time"))
        fake.add("POST", "/api/chat", status=503, json={"error": "busy"}, times=2)
        config = {"model_list": [_entry("a", fake.url, "m")], "router_settings": {"num_retries": 2}}
        with running_gateway(tmp_path, config) as gw:
            answer = _ask(gw, "a")
    assert answer.status_code == 200
    assert answer.headers["x-turnout-attempted"] == "ollama/m=503, ollama/m=503, ollama/m=ok"
    assert len(fake.requests) == 3


def test_client_errors_are_not_retried(tmp_path: Path) -> None:
    with FakeUpstream() as fake:
        fake.add("POST", "/api/chat", status=400, json={"error": "bad request"})
        config = {"model_list": [_entry("a", fake.url, "m")], "router_settings": {"num_retries": 3}}
        with running_gateway(tmp_path, config) as gw:
            answer = _ask(gw, "a")
    assert answer.status_code == 400
    assert len(fake.requests) == 1


def test_fallback_alias_when_every_deployment_fails(tmp_path: Path) -> None:
    with FakeUpstream() as bad, FakeUpstream() as good:
        bad.add("POST", "/api/chat", status=502, json={"error": "down"})
        good.add("POST", "/api/chat", json=_ollama_answer("fallback"))
        config = {
            "model_list": [_entry("main", bad.url, "m"), _entry("spare", good.url, "s")],
            "router_settings": {"fallbacks": [{"main": ["spare"]}]},
        }
        with running_gateway(tmp_path, config) as gw:
            answer = _ask(gw, "main")
    assert answer.status_code == 200
    assert answer.headers["x-turnout-fallback"] == "main -> spare (failure)"
    assert good.last.json["model"] == "s"


def test_context_window_fallback_from_the_pre_call_check(tmp_path: Path) -> None:
    with FakeUpstream() as small, FakeUpstream() as big:
        big.add("POST", "/api/chat", json=_ollama_answer("long context"))
        config = {
            "model_list": [
                _entry("short", small.url, "s", model_info={"max_input_tokens": 10}),
                _entry("long", big.url, "l", model_info={"max_input_tokens": 100000}),
            ],
            "router_settings": {
                "enable_pre_call_checks": True,
                "context_window_fallbacks": [{"short": ["long"]}],
            },
        }
        with running_gateway(tmp_path, config) as gw:
            body = {"model": "short", "messages": [{"role": "user", "content": "word " * 200}]}
            answer = sdk_types.post(gw.v1 + "/chat/completions", json=body, timeout=20)
    assert answer.status_code == 200
    assert answer.headers["x-turnout-fallback"] == "short -> long (context window)"
    assert small.requests == []  # the short-context deployment was never asked


def test_cooldown_then_503_with_retry_after(tmp_path: Path) -> None:
    with FakeUpstream() as fake:
        fake.add("POST", "/api/chat", status=500, json={"error": "boom"})
        config = {
            "model_list": [_entry("a", fake.url, "m1"), _entry("a", fake.url, "m2")],
            "router_settings": {"allowed_fails": 1, "cooldown_time": 30},
        }
        with running_gateway(tmp_path, config) as gw:
            first, second = _ask(gw, "a"), _ask(gw, "a")  # two failures on each deployment
            cooled = _ask(gw, "a")
    assert (first.status_code, second.status_code) == (500, 500)
    assert cooled.status_code == 503
    assert cooled.json()["error"]["code"] == "deployments_cooling_down"
    assert 1 <= int(cooled.headers["retry-after"]) <= 30
    assert len(fake.requests) == 4  # the third request never went upstream


def test_a_lone_deployment_never_cools_down(tmp_path: Path) -> None:
    with FakeUpstream() as fake:
        fake.add("POST", "/api/chat", status=500, json={"error": "boom"})
        config = {"model_list": [_entry("a", fake.url, "m")], "router_settings": {"allowed_fails": 0}}
        with running_gateway(tmp_path, config) as gw:
            statuses = [_ask(gw, "a").status_code for _ in range(3)]
    assert statuses == [500, 500, 500]  # its own error each time, never a cooldown 503


def test_rpm_limit_answers_429(tmp_path: Path) -> None:
    # the gateway's clock is injected and stands still, 20 s before a minute ends: the requests cannot
    # straddle a minute boundary, whenever the test runs
    with FakeUpstream() as fake:
        fake.add("POST", "/api/chat", json=_ollama_answer())
        config = {"model_list": [_entry("a", fake.url, "m", rpm=2)]}
        with running_gateway(tmp_path, config, clock=lambda: 6_000_040.0) as gw:
            statuses = [_ask(gw, "a").status_code for _ in range(3)]
            limited = _ask(gw, "a")
    assert statuses == [200, 200, 429]
    assert limited.json()["error"]["code"] == "deployment_rate_limited"
    assert limited.headers["retry-after"] == "20"  # to the next minute of the gateway's clock


def test_rpm_limit_counts_per_minute_of_the_gateways_clock(tmp_path: Path) -> None:
    now = [6_000_059.0]  # one second before a minute ends
    with FakeUpstream() as fake:
        fake.add("POST", "/api/chat", json=_ollama_answer())
        config = {"model_list": [_entry("a", fake.url, "m", rpm=1)]}
        with running_gateway(tmp_path, config, clock=lambda: now[0]) as gw:
            before = [_ask(gw, "a").status_code for _ in range(2)]
            now[0] += 2  # the next minute: a new window
            after = _ask(gw, "a").status_code
    assert before == [200, 429] and after == 200


def test_privacy_header_routes_only_to_allowed_tiers(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    with FakeUpstream() as local:
        local.add("POST", "/api/chat", json=_ollama_answer("local answer"))
        cloud = {"model_name": "mixed", "litellm_params": {"model": "openai/gpt", "api_base": closed + "/v1"}}
        only_cloud = {
            "model_name": "cloud",
            "litellm_params": {"model": "openai/gpt", "api_base": closed + "/v1"},
        }
        config = {
            "model_list": [cloud, _entry("mixed", local.url, "m"), only_cloud],
            "router_settings": {"routing_strategy": "ordered"},
        }
        with running_gateway(tmp_path, config) as gw:
            kept_local = _ask(gw, "mixed", **{"x-turnout-privacy": "local"})
            refused = _ask(gw, "cloud", **{"x-turnout-privacy": "private"})
            bad_value = _ask(gw, "cloud", **{"x-turnout-privacy": "secret"})
    assert kept_local.status_code == 200 and kept_local.headers["x-turnout-deployment"] == "ollama/m"
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "privacy_restricted"
    assert "nothing was sent" in refused.json()["error"]["message"]
    assert bad_value.status_code == 400


def test_privacy_tier_override_from_model_info(tmp_path: Path) -> None:
    with FakeUpstream() as fake:
        fake.add(
            "POST",
            "/v1/chat/completions",
            json={"id": "x", "object": "chat.completion", "created": 1, "model": "g", "choices": []},
        )
        entry = {
            "model_name": "onprem",
            "litellm_params": {"model": "openai/g", "api_base": fake.url + "/v1"},
            "model_info": {"privacy_tier": "self-hosted"},
        }
        with running_gateway(tmp_path, {"model_list": [entry]}) as gw:
            answer = _ask(gw, "onprem", **{"x-turnout-privacy": "private"})
    assert answer.status_code == 200


def test_forced_parameters_win_over_the_request(tmp_path: Path) -> None:
    with FakeUpstream() as fake:
        fake.add("POST", "/api/chat", json=_ollama_answer())
        entry = _entry("a", fake.url, "m", num_ctx=4096, turnout_forced_params={"temperature": 0.0})
        with running_gateway(tmp_path, {"model_list": [entry]}) as gw:
            body = {"model": "a", "messages": HI, "temperature": 1.5, "num_ctx": 2048}
            sdk_types.post(gw.v1 + "/chat/completions", json=body, timeout=20)
    options = fake.last.json["options"]
    assert options["temperature"] == 0.0  # forced by the operator
    assert options["num_ctx"] == 2048  # an ordinary override loses to the request
