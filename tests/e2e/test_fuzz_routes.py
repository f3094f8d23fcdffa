"""A bounded, deterministic fuzz of every route, generated from the routes' own schemas.

Each JSON route gets bodies that fit its schema (the canonical request structs through
msgspec.json.schema, the dialects' `schema` sections, the admin API's documented fields), the same
bodies with one place changed (a wrong kind, a number no column holds, NUL, 5,000 characters, nesting
past the bound, a field left out), and raw bodies that are not JSON objects. Query routes and uploads
get parameters and form fields the same way. Behind the gateway an upstream answers every operation
correctly, so whatever goes wrong is the gateway's. For every answer:

- never a 5xx;
- a 4xx has the route's error shape (Anthropic's on /v1/messages, OpenAI's elsewhere);
- no traceback, server path or mapping failure in any body, streams included.

Bounded and derandomized: the same examples every run, a few seconds in all. Before issue 10's fixes it
found the 500s the issue reports (dialect mapping TypeErrors, deep JSON, durations, huge ids).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import msgspec
import pytest
import yaml
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.pipeline.schemas import (
    CompletionsRequest,
    EmbeddingsRequest,
    ImagesRequest,
    RerankRequest,
    SpeechRequest,
)
from engine.pipeline.validate import ChatRequest
from engine.settings import project_path
from tests.e2e.conftest import FIXTURES
from tests.support import GatewayServer, running_gateway
from tests.support.schemas import HOSTILE_VALUES, encode, from_schema, json_values, mutated

MASTER = "sk-fuzz-master"
ALIAS = "fuzz"
RERANK_ALIAS = "fuzz-rerank"  # served by vLLM's rerank: the OpenAI mapping has none
EXAMPLES = 80  # per route: a few thousand requests in all, in seconds
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
ROOT = str(project_path(""))
LEAKS = ("Traceback", 'File "', ROOT, "site-packages", "mapping_error", "a mapping failed")

# ---- an upstream that answers every operation correctly ---------------------------------------------


def _fixture(path: str) -> bytes:
    return (FIXTURES / "openai" / path).read_bytes()


ANSWERS: dict[str, tuple[bytes, bytes | None, str]] = {  # path -> (answer, streamed answer, content type)
    "/v1/chat/completions": (_fixture("simple.response.json"), _fixture("stream_text.stream.txt"), "json"),
    "/v1/completions": (
        _fixture("operations/completions/simple.response.json"),
        _fixture("operations/completions/stream.stream.txt"),
        "json",
    ),
    "/v1/embeddings": (_fixture("operations/embeddings/single.response.json"), None, "json"),
    "/v1/images/generations": (_fixture("operations/images/url.response.json"), None, "json"),
    "/v1/audio/speech": (_fixture("operations/speech/mp3.response.mp3"), None, "audio/mpeg"),
    "/v1/audio/transcriptions": (_fixture("operations/transcriptions/json.response.json"), None, "json"),
    "/v1/audio/translations": (_fixture("operations/translations/json.response.json"), None, "json"),
    "/v1/rerank": (
        (FIXTURES / "vllm" / "operations" / "rerank" / "simple.response.json").read_bytes(),
        None,
        "json",
    ),
}


async def _answer(request: web.Request) -> web.Response:
    known = ANSWERS.get(request.path)
    if known is None:
        return web.json_response({"error": {"message": f"no route {request.path}"}}, status=404)
    whole, streamed, kind = known
    wants_stream = False
    if request.content_type == "application/json":
        try:
            wants_stream = (await request.json()).get("stream") is True
        except ValueError:
            pass
    else:
        await request.read()
    if wants_stream and streamed is not None:
        return web.Response(body=streamed, content_type="text/event-stream")
    return web.Response(body=whole, content_type="application/json" if kind == "json" else kind)


class Upstream:
    """aiohttp on a local port, in a thread with its own loop (as tests.fakes.FakeUpstream runs)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", _answer)
        self.runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = int(self.runner.addresses[0][1])
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self) -> str:
        self.thread.start()
        assert self.ready.wait(10), "the fuzz upstream did not start"
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    with Upstream() as upstream:
        entry = {
            "model_name": ALIAS,
            "litellm_params": {"model": "openai/test-model", "api_base": upstream + "/v1"},
        }
        rerank = {
            "model_name": RERANK_ALIAS,
            "litellm_params": {"model": "hosted_vllm/test-model", "api_base": upstream + "/v1"},
            "model_info": {"mode": "rerank"},
        }
        tmp = tmp_path_factory.mktemp("fuzz")
        with running_gateway(tmp, {"model_list": [entry, rerank]}, master_key=MASTER) as server:
            yield server


@pytest.fixture(scope="module")
def http(gateway: GatewayServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=gateway.url, timeout=30, headers={"authorization": f"Bearer {MASTER}"}
    ) as client:
        yield client


@pytest.fixture(scope="module")
def virtual_key(http: httpx.Client) -> str:
    created = http.post("/key/generate", json={"key_alias": "fuzzed"})
    assert created.status_code == 200, created.text
    key: str = created.json()["key"]
    return key


# ---- what every answer must be ----------------------------------------------------------------------


def openai_shape(body: Any) -> None:
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def anthropic_shape(body: Any) -> None:
    assert body["type"] == "error" and set(body) == {"type", "error"}, body
    assert isinstance(body["error"]["type"], str) and isinstance(body["error"]["message"], str), body


def check(response: httpx.Response, shape: Callable[[Any], None] = openai_shape) -> None:
    text = response.text
    assert response.status_code < 500, f"{response.request.method} {response.request.url}: {text[:2000]}"
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} in {text[:2000]}"
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/json"), text[:500]
        shape(response.json())


# ---- bodies -----------------------------------------------------------------------------------------


def _dialect_schema(name: str, route: str | None = None) -> dict[str, Any]:
    """A dialect's body schema as written in its YAML (a local route's with the dialect's $defs)."""
    tree = yaml.safe_load((project_path("mappings") / "dialects" / f"{name}.yaml").read_text())
    schema: dict[str, Any] = tree["schema"]
    if route is None:
        return schema
    return {**tree["local_routes"][route]["schema"], "$defs": schema["$defs"]}


def _usually_served(
    bodies: st.SearchStrategy[Any], drop: tuple[str, ...], alias: str = ALIAS
) -> st.SearchStrategy[Any]:
    """Nine bodies in ten name the served alias and leave out the fields that always end in a refusal
    (`drop`: e.g. an id nothing was stored under), so that they get past the door to the translation."""

    def served(body: Any, usual: bool) -> Any:
        if not usual or not isinstance(body, dict):
            return body
        kept = {name: value for name, value in body.items() if name not in drop}
        return {**kept, "model": alias} if "model" in body else kept

    return st.builds(served, bodies, st.integers(0, 9).map(bool))


RAW_BODIES = st.sampled_from(
    [
        b"",
        b"{",
        b"[]",
        b"5",
        b'"text"',
        b"null",
        b'{"model": 1e400}',
        b'{"a": NaN}',
        b"[" * 5000 + b"]" * 5000,
    ]
)


def json_inputs(
    schema: dict[str, Any], drop: tuple[str, ...] = (), alias: str = ALIAS
) -> st.SearchStrategy[bytes]:
    """Bodies for a JSON route: two in five fitting, two mutated, one any JSON or not JSON at all."""
    bodies = _usually_served(from_schema(schema), drop, alias)
    valid, changed = bodies.map(encode), mutated(bodies).map(encode)
    return st.one_of(valid, valid, changed, changed, json_values().map(encode) | RAW_BODIES)


def canonical(struct: type) -> dict[str, Any]:
    return msgspec.json.schema(struct)


KEY_FIELDS: dict[str, Any] = {  # the admin API's documented fields (README, "Keys")
    "type": "object",
    "properties": {
        "models": {"type": ["array", "null"], "items": {"enum": [ALIAS]}},
        "max_budget": {"type": ["number", "null"], "minimum": 0, "maximum": 1000},
        "budget_duration": {"enum": ["30s", "15m", "12h", "30d", "2w", None]},
        "duration": {"enum": ["30s", "15m", "12h", "30d", "2w", None]},
        "rpm_limit": {"type": ["integer", "null"], "minimum": 1, "maximum": 10**6},
        "tpm_limit": {"type": ["integer", "null"], "minimum": 1, "maximum": 10**6},
        "max_parallel_requests": {"type": ["integer", "null"], "minimum": 1, "maximum": 100},
        "key_alias": {"type": ["string", "null"], "minLength": 1, "maxLength": 200},
        "metadata": {"type": ["object", "null"]},
        "privacy": {"enum": ["local", "private", None]},
    },
}

# fields that make a fitting body a refusal every time (a stored id, a feature the gateway refuses) or
# most of the time (hosted tools)
ALWAYS_REFUSED = {
    "/v1/responses": ("previous_response_id", "conversation", "background", "tools", "tool_choice")
}

ALIASES = {"/v1/rerank": RERANK_ALIAS}  # the alias a route's bodies name, when not ALIAS

JSON_ROUTES: dict[str, tuple[dict[str, Any], Callable[[Any], None]]] = {
    "/v1/chat/completions": (canonical(ChatRequest), openai_shape),
    "/v1/completions": (canonical(CompletionsRequest), openai_shape),
    "/v1/embeddings": (canonical(EmbeddingsRequest), openai_shape),
    "/v1/images/generations": (canonical(ImagesRequest), openai_shape),
    "/v1/audio/speech": (canonical(SpeechRequest), openai_shape),
    "/v1/rerank": (canonical(RerankRequest), openai_shape),
    "/v1/messages": (_dialect_schema("anthropic"), anthropic_shape),
    "/v1/messages/count_tokens": (_dialect_schema("anthropic", "count_tokens"), anthropic_shape),
    "/v1/responses": (_dialect_schema("responses"), openai_shape),
    "/key/generate": (KEY_FIELDS, openai_shape),
    "/key/delete": (
        {"type": "object", "properties": {"keys": {"type": "array", "items": {"type": "string"}}}},
        openai_shape,
    ),
}


@pytest.mark.parametrize("route", JSON_ROUTES)
def test_json_routes(http: httpx.Client, route: str) -> None:
    schema, shape = JSON_ROUTES[route]
    statuses: list[int] = []

    @FUZZ
    @given(body=json_inputs(schema, ALWAYS_REFUSED.get(route, ()), ALIASES.get(route, ALIAS)))
    def post(body: bytes) -> None:
        answer = http.post(route, content=body, headers={"content-type": "application/json"})
        statuses.append(answer.status_code)
        check(answer, shape)

    post()
    # the generated bodies get past the door too, not only refused at it (a random key is never found)
    assert 200 in statuses or route == "/key/delete", statuses
    assert any(400 <= status < 500 for status in statuses), statuses


def test_key_update(http: httpx.Client, virtual_key: str) -> None:
    keys = st.sampled_from([virtual_key, "sk-unknown", ""]) | st.sampled_from(HOSTILE_VALUES)
    bodies = st.builds(lambda fields, key: {**fields, "key": key}, from_schema(KEY_FIELDS), keys)
    encoded = st.one_of(bodies, mutated(bodies), mutated(bodies)).map(encode)

    @FUZZ
    @given(body=encoded | RAW_BODIES)
    def post(body: bytes) -> None:
        check(http.post("/key/update", content=body))

    post()


# ---- query routes -----------------------------------------------------------------------------------

TEXTS = [str(value) for value in HOSTILE_VALUES if not isinstance(value, (list, dict))]
QUERY_VALUES = st.one_of(
    st.sampled_from(
        [*TEXTS, "1", "0", "-5", "2147483648", "true", "yes", "2026-01-01", "2026-01-01T10:00:00+02:00"]
    ),
    st.integers(-(2**70), 2**70).map(str),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12),
)
QUERY_ROUTES: dict[str, list[str]] = {
    "/turnout/usage": ["group_by", "start", "end", "key_id", "alias", "deployment_id"],
    "/turnout/requests": [
        "limit",
        "cursor",
        "key_id",
        "alias",
        "deployment_id",
        "status",
        "errors",
        "start",
        "end",
    ],
    "/spend/logs": ["api_key", "start_date", "end_date", "request_id"],
    "/key/info": ["key"],
    "/key/list": [],
    "/v1/models": ["include_discovered"],
}


@pytest.mark.parametrize("route", QUERY_ROUTES)
def test_query_routes(http: httpx.Client, route: str) -> None:
    names = QUERY_ROUTES[route]
    group_by = st.lists(st.sampled_from(["key", "alias", "deployment", "day", "week"]), max_size=3).map(
        ",".join
    )
    params = st.fixed_dictionaries(
        {},
        optional={name: (group_by | QUERY_VALUES) if name == "group_by" else QUERY_VALUES for name in names},
    )

    @FUZZ
    @given(query=params)
    def get(query: dict[str, str]) -> None:
        check(http.get(route, params=query))

    get()


# ---- uploads ----------------------------------------------------------------------------------------

FORM_VALUE = QUERY_VALUES
UPLOAD_FIELDS = st.fixed_dictionaries(
    {"model": st.sampled_from([ALIAS, ALIAS, ALIAS, "unknown"]) | FORM_VALUE},
    optional={
        "response_format": st.sampled_from(["json", "text", "srt", "verbose_json", "vtt"]) | FORM_VALUE,
        "temperature": st.sampled_from(["0", "0.5", "1"]) | FORM_VALUE,
        "stream": st.sampled_from(["true", "false"]) | FORM_VALUE,
        "language": FORM_VALUE,
        "prompt": FORM_VALUE,
        "timestamp_granularities[]": st.lists(st.sampled_from(["word", "segment"]) | FORM_VALUE, max_size=3),
    },
)
UPLOAD_FILES = st.one_of(
    st.none(),
    st.tuples(
        st.sampled_from(["a.mp3", "", "../../etc/passwd", "nul\x00.wav", "x" * 300]),
        st.binary(max_size=64),
        st.sampled_from(["audio/mpeg", "application/octet-stream", "text/plain", "video/mp4", ""]),
    ),
)


@pytest.mark.parametrize("route", ["/v1/audio/transcriptions", "/v1/audio/translations"])
def test_uploads(http: httpx.Client, route: str) -> None:
    @FUZZ
    @given(fields=UPLOAD_FIELDS, upload=UPLOAD_FILES)
    def post(fields: dict[str, Any], upload: tuple[str, bytes, str] | None) -> None:
        files = {"file": upload} if upload is not None else {"other": ("x", b"1", "audio/mpeg")}
        check(http.post(route, data=fields, files=files))

    post()
