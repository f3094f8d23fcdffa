"""The response cache's parts without a gateway: the local store's bounds and expiry, a request's
controls, the entry key, the config's cache settings."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from engine.bootstrap import apply_config_settings
from engine.cache import cache_problem
from engine.cache.config import redis_url_of
from engine.cache.controls import CacheControls, read_controls
from engine.cache.entry import Entry, decode_entry, encode_entry
from engine.cache.key import entry_key, scope_of
from engine.cache.options import operations_of
from engine.cache.stores import LocalStore
from engine.config.litellm import parse_litellm_data
from engine.config.plan import ConfigError
from engine.errors import InvalidRequest
from engine.keys.ring import VirtualKey
from engine.settings import Settings
from tests.support.catalog import TEST_CATALOG
from tests.support.clock import FakeClock


def _run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_the_local_store_forgets_the_least_recently_used() -> None:
    store = LocalStore(max_entries=2, max_bytes=1000, clock=FakeClock())

    async def scenario() -> list[bytes | None]:
        await store.put("a", b"1", 60)
        await store.put("b", b"2", 60)
        await store.get("a")  # a is now the most recently used
        await store.put("c", b"3", 60)
        return [await store.get(name) for name in ("a", "b", "c")]

    assert _run(scenario()) == [b"1", None, b"3"]
    assert len(store) == 2


def test_the_local_store_is_bounded_by_bytes() -> None:
    store = LocalStore(max_entries=100, max_bytes=10, clock=FakeClock())

    async def scenario() -> list[bytes | None]:
        await store.put("a", b"12345", 60)
        await store.put("b", b"12345", 60)
        await store.put("c", b"123", 60)  # a goes: 13 bytes would not fit
        await store.put("huge", b"x" * 11, 60)  # larger than the whole store: never kept
        return [await store.get(name) for name in ("a", "b", "c", "huge")]

    assert _run(scenario()) == [None, b"12345", b"123", None]
    assert store.size == 8


def test_local_entries_expire_by_the_injected_clock() -> None:
    clock = FakeClock()
    store = LocalStore(max_entries=10, max_bytes=100, clock=clock)
    _run(store.put("a", b"1", 10))
    clock.advance(9.9)
    assert _run(store.get("a")) == b"1"
    clock.advance(0.1)
    assert _run(store.get("a")) is None
    assert store.size == 0


def test_controls_from_the_header_and_the_body() -> None:
    assert read_controls(None, None, 100) == CacheControls()
    assert read_controls("No-Cache", None, 100) == CacheControls(read=False)
    assert read_controls("no-store, max-age=5", None, 100) == CacheControls(write=False, max_age=5)
    both = read_controls("s-maxage=9", {"s-maxage": 3, "ttl": 1000, "namespace": "n"}, 100)
    assert both == CacheControls(ttl=100, max_age=3, namespace="n")  # ttl bounded by the max
    assert read_controls(None, {"ttl": 0}, 100).write is False
    assert read_controls(None, {"use-cache": False}, 100) == CacheControls(read=False, write=False)
    assert read_controls("private, max-age=x", None, 100) == CacheControls()  # unknown: ignored


@pytest.mark.parametrize(
    ("field", "param"),
    [
        ([], "cache"),
        ({"no-store": 1}, "cache.no-store"),
        ({"ttl": float("inf")}, "cache.ttl"),
        ({"s-maxage": True}, "cache.s-maxage"),
        ({"namespace": "x" * 201}, "cache.namespace"),
        ({"namespace": "a\x00b"}, "cache.namespace"),
        ({"no-cache": True, "\x00" * 1000: 1}, "cache"),
    ],
)
def test_bad_controls_are_a_400_naming_them(field: Any, param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        read_controls(None, field, 100)
    assert refused.value.param == param
    assert len(refused.value.message) < 200


def _key(key_id: int, namespace: str | None = None) -> VirtualKey:
    return VirtualKey(
        key_id, "hash", "sk-abcde", None, frozenset(), None, None, None, None, 0, None, None, None, None,
        cache_namespace=namespace,
    )  # fmt: skip


def test_scopes() -> None:
    assert scope_of(None, shared=False) == "gateway"
    assert scope_of(_key(7), shared=False) == "key:7"
    assert scope_of(_key(7, "team"), shared=False) == "ns:team"
    assert scope_of(_key(7), shared=True) == "shared"


def test_the_key_leaves_out_only_what_does_not_change_the_answer() -> None:
    request = {"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}
    base = entry_key("key:1", "", "chat", None, request)
    volatile = {"user": "u", "metadata": {"a": 1}, "store": True, "cache": {"ttl": 3}}
    assert entry_key("key:1", "", "chat", None, {**volatile, **request}) == base
    assert entry_key("key:1", "", "chat", None, dict(reversed(request.items()))) == base
    for changed in (
        entry_key("key:2", "", "chat", None, request),
        entry_key("key:1", "n", "chat", None, request),
        entry_key("key:1", "", "completions", None, request),
        entry_key("key:1", "", "chat", "local", request),
        entry_key("key:1", "", "chat", None, {**request, "stream": True}),
        entry_key("key:1", "", "chat", None, {**request, "temperature": 1}),
        entry_key("key:1", "", "chat", None, {**request, "model": "gpt-4o"}),
    ):
        assert changed != base
    with pytest.raises(TypeError):
        entry_key("key:1", "", "chat", None, {**request, "file": object()})


def test_entries_round_trip_and_garbage_is_a_miss() -> None:
    entry = Entry(1.0, 2.0, "text/event-stream", pieces=[(0, b"data: {}\n\n"), (1, b"\x90")])
    assert decode_entry(encode_entry(entry)) == entry
    assert decode_entry(b"not msgpack at all") is None
    assert decode_entry(b"\x93\x01\x02\x03") is None


def test_operations() -> None:
    assert operations_of("acompletion, aembedding,atext_completion") == {"chat", "embeddings", "completions"}
    with pytest.raises(ValueError, match="transcriptions"):
        operations_of("chat,transcriptions")


def _plan(litellm_settings: dict[str, Any]) -> Any:
    return parse_litellm_data({"model_list": [], "litellm_settings": litellm_settings}, TEST_CATALOG)


def test_litellm_cache_settings_become_turnouts(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _plan(
        {
            "cache": True,
            "cache_params": {
                "type": "redis",
                "host": "cache.internal",
                "port": 6380,
                "password": "os.environ/TEST_CACHE_PASSWORD",
                "default_in_redis_ttl": 30,
                "namespace": "litellm.caching",
                "supported_call_types": ["acompletion", "aembedding", "atranscription"],
                "max_connections": 10,
                "turnout_scope": "shared",
            },
        }
    )
    assert "litellm_settings.cache_params.max_connections is not used by Turnout" in plan.warnings
    assert any("atranscription" in warning for warning in plan.warnings)
    monkeypatch.setenv("TEST_CACHE_PASSWORD", "p@ss word")
    settings = apply_config_settings(Settings(), plan)
    assert settings.cache and settings.cache_type == "redis" and settings.cache_ttl == 30
    assert settings.cache_call_types == "chat,embeddings" and settings.cache_scope == "shared"
    assert settings.cache_namespace == "litellm.caching"
    assert settings.cache_redis_url == "redis://:p%40ss%20word@cache.internal:6380"


def test_the_environment_wins_over_the_file() -> None:
    plan = _plan({"cache": True, "cache_params": {"ttl": 30}})
    settings = apply_config_settings(Settings(cache=False, cache_ttl=5), plan)
    assert (settings.cache, settings.cache_ttl) == (False, 5)


@pytest.mark.parametrize(
    ("litellm_settings", "problem"),
    [
        ({"cache": "yes"}, "cache must be true or false"),
        ({"cache_params": [1]}, "cache_params must be a mapping"),
        ({"cache_params": {"type": "s3"}}, "not supported by Turnout"),
        ({"cache_params": {"ttl": 0}}, "ttl must be"),
        ({"cache_params": {"supported_call_types": ["teleport"]}}, "unknown call type"),
        ({"cache_params": {"turnout_scope": "everyone"}}, "turnout_scope must be"),
    ],
)
def test_bad_cache_settings_are_named(litellm_settings: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        _plan(litellm_settings)


def test_redis_url_of() -> None:
    def same(value: Any) -> Any:
        return value

    assert redis_url_of({"url": "redis://r:1/2", "host": "ignored"}, same) == "redis://r:1/2"
    assert redis_url_of({"host": "h"}, same) == "redis://h:6379"
    assert redis_url_of({"host": "h", "username": "u", "password": "p"}, same) == "redis://u:p@h:6379"
    assert redis_url_of({"port": 1}, same) is None


def test_settings_that_cannot_work_are_refused_before_serving(tmp_path: Any) -> None:
    from engine.bootstrap import prepare
    from engine.mapping.loader import load_registry
    from engine.settings import project_path

    config = tmp_path / "config.yaml"
    config.write_text("model_list: []\nlitellm_settings: {cache: true, cache_params: {type: redis}}\n")
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 't.db'}", config=config)
    with pytest.raises(ConfigError, match="needs TURNOUT_CACHE_REDIS_URL"):
        prepare(settings, load_registry(project_path("mappings")))
    assert cache_problem(Settings(cache=True, cache_call_types="chat,speech")) is not None
    assert cache_problem(Settings(cache=False, cache_call_types="speech")) is None
