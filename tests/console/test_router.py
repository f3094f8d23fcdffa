"""The Router page: settings and fallbacks in force with their source, console values that win over the
config file's and survive its re-import, a config imported by upload, and the routing exported as a
LiteLLM config that imports back to the same bytes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from sqlalchemy import select

from engine.config.litellm import parse_litellm_config
from engine.mapping.loader import load_registry
from engine.settings import project_path
from engine.store.models import AuditRow
from tests.console.conftest import MASTER_KEY
from tests.console.forms import csrf_of, signed_in_client
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway
from tests.support.browser import save_screenshot
from tests.support.request_log import request_log_db

PROVIDER_SECRET = "sk-literal-provider-secret-0123456789"
ODD_ALIAS = 'odd: "name" #1\nmodel_list: []'


def _config(upstream: str, broken: str, strategy: str = "simple-shuffle") -> dict[str, Any]:
    return {
        "model_list": [
            {
                "model_name": "local-chat",
                "litellm_params": {"model": "ollama_chat/llama3.2", "api_base": upstream},
            },
            {"model_name": "broken", "litellm_params": {"model": "ollama_chat/llama3.2", "api_base": broken}},
            {
                "model_name": "cloud",
                "litellm_params": {
                    "model": "openai/gpt-4o-mini",
                    "api_base": upstream + "/v1",
                    "api_key": PROVIDER_SECRET,
                    "weight": 2,
                    "order": 1,
                    "rpm": 60,
                    "temperature": 0.2,
                    "turnout_forced_params": {"seed": 7},
                    "tags": ["fast"],
                },
                "model_info": {
                    "id": "cloud-primary",
                    "supports_vision": True,
                    "max_input_tokens": 128000,
                    "input_cost_per_token": 0.00000015,
                    "output_cost_per_token": 0.0000006,
                    "routing_strategy": "ordered",
                },
            },
            {
                "model_name": "cloud",
                "litellm_params": {"model": "openai/gpt-4o", "api_key": "os.environ/CLOUD_BACKUP_KEY"},
                "model_info": {"privacy_tier": "third-party", "mode": "chat"},
            },
            {  # a hostile name: the export's comment lines must stay comments
                "model_name": ODD_ALIAS,
                "litellm_params": {"model": "groq/llama-3.1-8b", "api_key": "os.environ/ODD_KEY"},
            },
            {
                "model_name": "embed",
                "litellm_params": {"model": "ollama/nomic-embed-text", "api_base": upstream},
                "model_info": {"mode": "embedding"},
            },
        ],
        "router_settings": {
            "routing_strategy": strategy,
            "cooldown_time": 30,
            "context_window_fallbacks": [{"local-chat": ["cloud"]}],
        },
    }


@pytest.fixture(scope="module")
def broken_upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        fake.add("POST", "/api/chat", status=500, json={"error": "down"})
        yield fake


@pytest.fixture(scope="module")
def console(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream, broken_upstream: FakeUpstream
) -> Iterator[GatewayServer]:
    config = _config(upstream.url, broken_upstream.url)
    with running_gateway(
        tmp_path_factory.mktemp("router"), config, master_key=MASTER_KEY, ui_sign_in_delay=0
    ) as server:
        yield server


def _answer(upstream: FakeUpstream) -> None:
    upstream.add(
        "POST",
        "/api/chat",
        json={"model": "llama3.2", "message": {"role": "assistant", "content": "hi"}, "done": True},
    )


def _chat_status(server: GatewayServer, model: str) -> int:
    client = openai.OpenAI(base_url=server.v1, api_key=MASTER_KEY, max_retries=0)
    try:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello"}])
    except openai.APIStatusError as error:
        return error.status_code
    return 200


def _post(client: httpx.Client, path: str, **fields: str) -> httpx.Response:
    csrf = csrf_of(client.get("/ui/router/").text)
    return client.post(path, data={"_csrf": csrf, **fields})


def _audit(server: GatewayServer, action: str) -> list[AuditRow]:
    with request_log_db(server) as db, db.connect() as connection:
        rows = connection.execute(select(AuditRow.__table__).where(AuditRow.action == action)).all()
    return [AuditRow(**row._asdict()) for row in rows]


def _export(client: httpx.Client) -> str:
    answer = client.get("/ui/router/export.yaml")
    assert answer.status_code == 200
    assert answer.headers["content-disposition"].startswith("attachment;")
    return answer.text


def test_strategy_and_a_fallback_are_changed_in_the_browser(
    signed_in: Any, console: GatewayServer, fresh_upstream: FakeUpstream, tmp_path: Path
) -> None:
    page = signed_in
    page.goto(console.url + "/ui/router/")
    row = page.locator("#setting-routing_strategy")
    assert "simple-shuffle" in row.locator(".effective").inner_text()
    assert row.locator(".badge").inner_text() == "config"
    assert "cloud (ordered)" in page.locator("#alias-strategies").inner_text()
    row.locator("select[name=value]").select_option("least-busy")
    row.get_by_role("button", name="Set").click()
    page.wait_for_url("**/ui/router/")
    row = page.locator("#setting-routing_strategy")
    assert row.locator(".effective").inner_text() == "least-busy"
    assert row.locator(".badge").inner_text() == "console"
    assert console.gateway.table.settings.routing_strategy == "least-busy"

    # a general fallback for the broken alias: its next request is answered by local-chat
    _answer(fresh_upstream)
    assert _chat_status(console, "broken") >= 500
    form = page.locator("#fallback-form")
    form.locator("select[name=alias]").select_option("broken")
    form.locator("select[name=kind]").select_option("general")
    form.locator("input[name=targets]").fill("local-chat")
    form.get_by_role("button", name="Save list").click()
    page.wait_for_url("**/ui/router/")
    listed = page.locator("table.fallbacks tr", has_text="broken")
    assert "local-chat" in listed.inner_text() and "console" in listed.inner_text()
    assert _chat_status(console, "broken") == 200
    save_screenshot(page, "router")

    # upload the file the gateway started with: nothing changes, and the report says so
    upload = tmp_path / "same.yaml"
    upload.write_text(console.settings.config.read_text())
    page.set_input_files("#import input[type=file]", str(upload))
    page.locator("#import").get_by_role("button", name="Import").click()
    report = page.locator("#import-report")
    report.wait_for()
    assert "0 created" in report.inner_text() and "6 unchanged" in report.inner_text()
    assert page.locator("#setting-routing_strategy .effective").inner_text() == "least-busy"

    # download the export
    with page.expect_download() as download:
        page.get_by_role("link", name="Download YAML").click()
    saved = tmp_path / "export.yaml"
    download.value.save_as(saved)
    assert "model_list:" in saved.read_text() and PROVIDER_SECRET not in saved.read_text()

    # reset: the config file's strategy and no fallback again
    page.locator("#setting-routing_strategy").get_by_role("button", name="Reset").click()
    page.wait_for_url("**/ui/router/")
    assert page.locator("#setting-routing_strategy .badge").inner_text() == "config"
    page.locator("table.fallbacks tr", has_text="broken").get_by_role("button", name="Reset").click()
    page.wait_for_url("**/ui/router/")
    assert page.locator("table.fallbacks tr", has_text="broken").count() == 0
    assert console.gateway.table.settings.routing_strategy == "simple-shuffle"


def test_num_retries_set_here_applies_to_the_next_request(
    console: GatewayServer, fresh_upstream: FakeUpstream
) -> None:
    client = signed_in_client(console.url, MASTER_KEY)
    _answer(fresh_upstream)
    fresh_upstream.add("POST", "/api/chat", status=500, json={"error": "flaky"}, times=1)
    assert _chat_status(console, "local-chat") >= 500  # no retry by default
    assert _post(client, "/ui/router/settings/num_retries", value="1").status_code == 303
    fresh_upstream.add("POST", "/api/chat", status=500, json={"error": "flaky"}, times=1)
    assert _chat_status(console, "local-chat") == 200  # the retry got the good answer
    assert len(fresh_upstream.requests) == 3
    assert _post(client, "/ui/router/settings/num_retries/reset").status_code == 303
    assert console.gateway.table.settings.num_retries == 0

    set_rows = [
        row for row in _audit(console, "router.setting.set") if row.target == "router_settings:num_retries"
    ]
    assert set_rows[-1].before == {"setting": "num_retries", "console": None}
    assert set_rows[-1].after == {"setting": "num_retries", "console": 1}
    reset = [
        row for row in _audit(console, "router.setting.reset") if row.target == "router_settings:num_retries"
    ]
    assert reset[-1].before == {"setting": "num_retries", "console": 1} and reset[-1].after["console"] is None


@pytest.mark.parametrize(
    ("key", "typed", "problem"),
    [
        ("num_retries", "-1", "must be a whole number, 0 or more"),
        ("num_retries", "1.5", "must be a whole number, 0 or more"),
        ("allowed_fails", "lots", "must be a whole number, 0 or more"),
        ("cooldown_time", "inf", "must be a number of seconds, 0 or more"),
        ("routing_strategy", "fastest", "unknown routing_strategy"),
        ("enable_pre_call_checks", "maybe", "must be true or false"),
        ("retry_after", "", "type a value"),
    ],
)
def test_a_bad_value_is_refused_next_to_its_setting(
    console: GatewayServer, key: str, typed: str, problem: str
) -> None:
    client = signed_in_client(console.url, MASTER_KEY)
    before = console.gateway.table.settings
    answer = _post(client, f"/ui/router/settings/{key}", value=typed)
    assert answer.status_code == 422
    assert f'id="error-{key}"' in answer.text and problem in answer.text
    if key not in ("routing_strategy", "enable_pre_call_checks"):
        assert f'value="{typed}"' in answer.text
    assert console.gateway.table.settings == before


def test_an_unknown_setting_and_bad_fallbacks_are_refused(console: GatewayServer) -> None:
    client = signed_in_client(console.url, MASTER_KEY)
    assert _post(client, "/ui/router/settings/max_fun", value="1").status_code == 404
    unknown = _post(client, "/ui/router/fallbacks", alias="broken", kind="general", targets="nowhere")
    assert unknown.status_code == 422 and 'id="error-fallback_targets"' in unknown.text
    assert "nothing serves &#39;nowhere&#39;" in unknown.text and 'value="nowhere"' in unknown.text
    itself = _post(client, "/ui/router/fallbacks", alias="broken", kind="general", targets="broken")
    assert itself.status_code == 422 and "cannot fall back to itself" in itself.text
    kind = _post(client, "/ui/router/fallbacks", alias="broken", kind="sometimes", targets="local-chat")
    assert kind.status_code == 422 and 'id="error-fallback_kind"' in kind.text


def test_a_change_without_the_csrf_token_is_refused(console: GatewayServer) -> None:
    client = signed_in_client(console.url, MASTER_KEY)
    assert client.post("/ui/router/settings/num_retries", data={"value": "4"}).status_code == 403
    files = {"config": ("c.yaml", b"model_list: []\n", "application/yaml")}
    assert client.post("/ui/router/import", files=files).status_code == 403
    assert console.gateway.table.settings.num_retries == 0


def test_a_console_value_survives_a_restart_with_a_config_stating_another(tmp_path: Path) -> None:
    first = _config("http://127.0.0.1:9", "http://127.0.0.1:9", strategy="ordered")
    with running_gateway(tmp_path, first, master_key=MASTER_KEY) as server:
        client = signed_in_client(server.url, MASTER_KEY)
        assert _post(client, "/ui/router/settings/routing_strategy", value="least-busy").status_code == 303
    second = _config("http://127.0.0.1:9", "http://127.0.0.1:9", strategy="latency-based-routing")
    with running_gateway(tmp_path, second, master_key=MASTER_KEY) as server:
        assert server.gateway.table.settings.routing_strategy == "least-busy"
        client = signed_in_client(server.url, MASTER_KEY)
        page = client.get("/ui/router/").text
        assert "console values win over the config file" in page.lower()
        assert _post(client, "/ui/router/settings/routing_strategy/reset").status_code == 303
        assert server.gateway.table.settings.routing_strategy == "latency-based-routing"


def test_an_upload_replaces_the_config_source_and_keeps_console_values(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    with running_gateway(tmp_path, _config(upstream.url, upstream.url), master_key=MASTER_KEY) as server:
        client = signed_in_client(server.url, MASTER_KEY)
        assert _post(client, "/ui/router/settings/num_retries", value="2").status_code == 303
        uploaded = {
            "model_list": [
                {
                    "model_name": "fresh",
                    "litellm_params": {"model": "ollama_chat/qwen3", "api_base": upstream.url},
                }
            ],
            "router_settings": {"num_retries": 5, "routing_strategy": "ordered", "mystery": 1},
            "general_settings": {"master_key": "sk-other"},
        }
        csrf = csrf_of(client.get("/ui/router/").text)
        files = {"config": ("new.yaml", yaml.safe_dump(uploaded).encode(), "application/yaml")}
        answer = client.post("/ui/router/import", data={"_csrf": csrf}, files=files)
        assert answer.status_code == 200, answer.text
        assert (
            'id="import-report"' in answer.text and "1 created" in answer.text and "6 deleted" in answer.text
        )
        assert "router_settings.mystery is not used by Turnout" in answer.text
        assert "apply only when the file is given to turnout serve --config" in answer.text
        table = server.gateway.table
        assert sorted(table.aliases) == ["fresh"]
        assert table.settings.num_retries == 2 and table.settings.routing_strategy == "ordered"
        audit = [row for row in _audit(server, "router.import") if row.target == "config:new.yaml"]
        assert audit and audit[0].after["created"] == 1 and audit[0].after["deleted"] == 6


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("bad.yaml", b"model_list: [unclosed\n", "not valid YAML"),
        ("list.yaml", b"- just\n- a list\n", "must hold a mapping with a model_list"),
        ("bad.json", b"{nope", "not valid JSON"),
        ("binary.yaml", b"\xff\xfe\x00bad", "not UTF-8"),
        ("modes.yaml", yaml.safe_dump(
            {"model_list": [
                {"model_name": "m", "litellm_params": {"model": "ollama/a"}},
                {"model_name": "m", "litellm_params": {"model": "ollama/b"},
                 "model_info": {"mode": "embedding"}},
            ]}
        ).encode(), "mixes modes"),
        ("script.yaml", yaml.safe_dump(
            {"model_list": [{"model_name": "<script>alert(1)</script>", "litellm_params": {}}]}
        ).encode(), "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("big.yaml", b"# " + b"x" * (1024 * 1024) + b"\n", "larger than 1024 KB"),
    ],
)  # fmt: skip
def test_a_bad_upload_is_refused_and_changes_nothing(
    console: GatewayServer, name: str, content: bytes, problem: str
) -> None:
    client = signed_in_client(console.url, MASTER_KEY)
    before = _export(client)
    csrf = csrf_of(client.get("/ui/router/").text)
    answer = client.post(
        "/ui/router/import", data={"_csrf": csrf}, files={"config": (name, content, "application/yaml")}
    )
    assert answer.status_code == 400
    assert problem in answer.text and "<script>alert(1)" not in answer.text
    assert _export(client) == before


def test_an_upload_far_over_the_limit_is_refused_before_it_is_read(console: GatewayServer) -> None:
    client = signed_in_client(console.url, MASTER_KEY)
    csrf = csrf_of(client.get("/ui/router/").text)
    files = {"config": ("huge.yaml", b"x" * (3 * 1024 * 1024), "application/yaml")}
    answer = client.post("/ui/router/import", data={"_csrf": csrf}, files=files)
    assert answer.status_code == 413
    assert "larger than 1024 KB; nothing was imported" in answer.text


def test_the_export_reads_back_to_the_same_bytes(console: GatewayServer, tmp_path: Path) -> None:
    client = signed_in_client(console.url, MASTER_KEY)
    assert _post(client, "/ui/router/settings/num_retries", value="3").status_code == 303
    assert (
        _post(client, "/ui/router/fallbacks", alias="*", kind="general", targets="local-chat").status_code
        == 303
    )
    exported = _export(client)
    assert PROVIDER_SECRET not in exported
    document = yaml.safe_load(exported)
    cloud = {
        entry["model_info"]["id"]: entry for entry in document["model_list"] if entry["model_name"] == "cloud"
    }
    primary, backup = cloud["cloud-primary"], cloud["cloud#1"]  # the backup is listed first: order 0
    generated = primary["litellm_params"]["api_key"]
    assert generated.startswith("os.environ/TURNOUT_OPENAI_") and generated.endswith("_API_KEY")
    assert backup["litellm_params"]["api_key"] == "os.environ/CLOUD_BACKUP_KEY"
    header = exported.split("\nmodel_list:")[0]
    assert f'{generated.removeprefix("os.environ/")}: needed by "cloud" (id "cloud-primary")' in header
    assert 'CLOUD_BACKUP_KEY: needed by "cloud" (id "cloud#1")' in header
    assert '#   ODD_KEY: needed by "odd: \\"name\\" #1\\nmodel_list: []"\n' in header
    assert all(line.startswith("# ") for line in header.splitlines())
    assert primary["model_info"]["routing_strategy"] == "ordered"
    assert primary["litellm_params"]["turnout_forced_params"] == {"seed": 7}
    assert primary["model_info"]["input_cost_per_token"] == 0.00000015
    assert document["router_settings"]["num_retries"] == 3
    assert document["router_settings"]["fallbacks"] == [{"*": ["local-chat"]}]

    # the file parses without a warning, and a gateway on a fresh database serves it back as it was
    path = tmp_path / "exported.yaml"
    path.write_text(exported)
    assert parse_litellm_config(path, load_registry(project_path("mappings")).catalog()).warnings == []
    (tmp_path / "again").mkdir()
    with running_gateway(tmp_path / "again", document, master_key=MASTER_KEY) as again:
        assert _export(signed_in_client(again.url, MASTER_KEY)) == exported
        assert sorted(again.gateway.table.aliases) == sorted(console.gateway.table.aliases)
    assert _post(client, "/ui/router/settings/num_retries/reset").status_code == 303
    assert _post(client, "/ui/router/fallbacks/reset", alias="*", kind="general").status_code == 303
