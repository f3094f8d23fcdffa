"""Providers and models: the catalogue comes from the mapping files; console deployments are added,
tested, edited and deleted here and serve at once; rows from a file are read-only and console rows
survive every import; keys are only ever shown masked; every change is audited."""

from __future__ import annotations

import re
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from engine.settings import project_path
from tests.console.conftest import MASTER_KEY
from tests.console.forms import csrf_of, signed_in_client
from tests.e2e.conftest import golden_json, golden_stream
from tests.fakes import FakeUpstream
from tests.support import GatewayServer, running_gateway
from tests.support.browser import save_screenshot

CHAT = "/api/chat"
PROVIDER_KEY = "sk-provider-secret-0123456789abcdef"
TAGS = {"models": [{"name": "llama3.2:latest"}, {"name": "qwen3:8b"}]}


def _script_probe(fake: FakeUpstream, *, streaming_status: int = 200) -> None:
    """Answers for the probe's steps (chat, tools, vision, reasoning, streaming), scripted in reverse:
    the fake answers by path only, the latest unspent script first."""
    if streaming_status == 200:
        fake.add("POST", CHAT, stream=golden_stream("ollama", "stream_text"), times=1)
    else:
        fake.add("POST", CHAT, status=streaming_status, json={"error": "model runner crashed"}, times=1)
    for scenario in ("reasoning", "vision", "tools", "simple"):
        fake.add("POST", CHAT, json=golden_json("ollama", f"{scenario}.response.json"), times=1)


def _form(upstream_url: str, alias: str, **overrides: str) -> dict[str, str]:
    return {
        "provider": "ollama",
        "api_base": upstream_url,
        "api_key": "",
        "upstream_model": "llama3.2",
        "alias": alias,
        "mode": "chat",
        "priority": "0",
        "weight": "1",
        **overrides,
    }


def _post(client: httpx.Client, path: str, data: dict[str, str]) -> httpx.Response:
    csrf = csrf_of(client.get("/ui/providers/").text)
    return client.post(f"/ui/providers{path}", data={**data, "_csrf": csrf})


def _deployment_ids(html: str, alias: str) -> list[int]:
    body = html.split(f'<tbody data-alias="{alias}">', 1)[1].split("</tbody>", 1)[0]
    return [int(found) for found in re.findall(r'data-deployment="(\d+)"', body)]


def _database(server: GatewayServer) -> Path:
    return Path(str(server.settings.database_url).removeprefix("sqlite+aiosqlite:///"))


def _sql(server: GatewayServer, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(_database(server)) as connection:
        return connection.execute(query, args).fetchall()


def _sdk(server: GatewayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key=MASTER_KEY, max_retries=0)


# ---- the browser flow ----------------------------------------------------------------------------


def test_add_test_save_refresh_and_map_in_the_browser(
    signed_in: Any, console: GatewayServer, fresh_upstream: FakeUpstream
) -> None:
    from playwright.sync_api import expect

    page = signed_in
    page.goto(console.url + "/ui/providers/")
    expect(page.locator("#sources")).to_contain_text("read-only in the console")
    page.locator('#catalogue tr[data-provider="ollama"] a', has_text="Add deployment").click()
    page.wait_for_url(re.compile(r".*/providers/deployments/new\?provider=ollama"))
    expect(page.locator("select[name=provider]")).to_have_value("ollama")
    page.fill("input[name=api_base]", fresh_upstream.url)
    page.fill("input[name=api_key]", PROVIDER_KEY)
    page.fill("input[name=alias]", "browser-llama")
    page.fill("input[name=price_input]", "0.5")
    page.fill("textarea[name=params]", '{"num_ctx": 8192}')

    # Fetch models: the backend's list for the upstream model field
    fresh_upstream.add("GET", "/api/tags", json=TAGS)
    page.click("#fetch-models")
    expect(page.locator("#models-found")).to_contain_text("llama3.2:latest")
    assert page.locator("#upstream-models option").count() >= 2
    page.fill("input[name=upstream_model]", "llama3.2")

    # Test connection: every step passes, before anything is saved
    _script_probe(fresh_upstream)
    page.click("#test-connection")
    rows = page.locator(".probe-results tbody tr")
    expect(rows).to_have_count(5)
    for step in ("chat", "tools", "vision", "reasoning", "streaming"):
        expect(page.locator(f'tr[data-step="{step}"]')).to_have_attribute("data-outcome", "pass")
        expect(page.locator(f'tr[data-step="{step}"] td.number')).to_contain_text(" ms")
    assert fresh_upstream.last.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert fresh_upstream.requests[-2].json["options"]["num_ctx"] == 8192  # the overrides are tested too
    assert _sql(console, "SELECT count(*) FROM aliases WHERE name = 'browser-llama'") == [(0,)]
    save_screenshot(page, "deployment-form")

    # then the backend breaks while streaming: that step fails, the others still pass
    _script_probe(fresh_upstream, streaming_status=500)
    page.click("#test-connection")
    expect(page.locator('tr[data-step="streaming"]')).to_have_attribute("data-outcome", "fail")
    expect(page.locator('tr[data-step="streaming"]')).to_contain_text("HTTP 500")
    expect(page.locator('tr[data-step="chat"]')).to_have_attribute("data-outcome", "pass")
    assert PROVIDER_KEY not in page.content()

    page.click("#save")
    page.wait_for_url(re.compile(r".*/ui/providers/$"))
    row = page.locator('tbody[data-alias="browser-llama"] tr[data-source="console"]')
    expect(row).to_contain_text("llama3.2")
    expect(row).to_contain_text("••••cdef")  # the key, masked
    assert PROVIDER_KEY not in page.content()

    # Refresh models for the Ollama endpoint, and map one to a new alias in one step
    fresh_upstream.add("GET", "/api/tags", json=TAGS)
    refresh = page.locator("#refresh-form")
    refresh.locator("select[name=endpoint]").select_option("")
    refresh.locator("select[name=provider]").select_option("ollama")
    refresh.locator("input[name=api_base]").fill(fresh_upstream.url)
    refresh.locator("button[type=submit]").click()
    qwen = page.locator('.refresh-results .map-row[data-model="qwen3:8b"]')
    expect(qwen).to_be_visible()
    expect(page.locator('.refresh-results .map-row[data-model="llama3.2:latest"]')).to_be_visible()
    qwen.locator("input[name=alias]").fill("qwen-local")
    qwen.locator("button", has_text="Map to alias").click()
    expect(page.locator('.refresh-results .map-row[data-model="qwen3:8b"]')).to_contain_text("mapped")
    expect(page.locator('tbody[data-alias="qwen-local"]')).to_contain_text("qwen3:8b")  # the list, updated
    save_screenshot(page, "providers")

    # the mapped alias serves at once
    fresh_upstream.add("POST", CHAT, json=golden_json("ollama", "simple.response.json"))
    answer = _sdk(console).chat.completions.create(
        model="qwen-local", messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content
    assert fresh_upstream.last.json["model"] == "qwen3:8b"

    # delete, after the confirmation the browser asks for
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator('tbody[data-alias="browser-llama"] button', has_text="Delete").click()
    expect(page.locator('tbody[data-alias="browser-llama"]')).to_have_count(0)
    expect(page.locator('tbody[data-alias="qwen-local"]')).to_have_count(1)


# ---- serving, SQL, audit -------------------------------------------------------------------------


def test_a_console_deployment_serves_at_once_and_edit_and_delete_do_too(
    console: GatewayServer, fresh_upstream: FakeUpstream
) -> None:
    fresh_upstream.add("POST", CHAT, json=golden_json("ollama", "simple.response.json"))
    sdk = _sdk(console)
    ask: Any = {"model": "served-now", "messages": [{"role": "user", "content": "hi"}]}
    with closing(signed_in_client(console.url, MASTER_KEY)) as client:
        created = _post(
            client,
            "/deployments",
            _form(
                fresh_upstream.url, "served-now", api_key=PROVIDER_KEY, price_input="0.15", price_output="0.6"
            ),
        )
        assert created.status_code == 303, created.text
        assert sdk.chat.completions.create(**ask).choices[0].message.content
        assert fresh_upstream.last.json["model"] == "llama3.2"
        assert fresh_upstream.last.headers["authorization"] == f"Bearer {PROVIDER_KEY}"

        # in SQL: a console row, a uuid source key, the key encrypted, prices per token
        ((deployment_id, source_key, encrypted),) = _sql(
            console,
            "SELECT d.id, d.source_key, p.api_key_encrypted FROM deployments d "
            "JOIN providers p ON p.id = d.provider_id JOIN aliases a ON a.id = d.alias_id "
            "WHERE a.name = 'served-now' AND d.source = 'console'",
        )
        assert re.fullmatch(r"[0-9a-f]{32}", source_key)
        assert encrypted and PROVIDER_KEY not in encrypted
        prices = dict(_sql(console, "SELECT unit, price FROM costs WHERE deployment_id = ?", deployment_id))
        assert prices == {"input_token": pytest.approx(0.15e-6), "output_token": pytest.approx(0.6e-6)}

        # edit: a new upstream model, the key field left empty (the stored key is kept)
        edit_page = client.get(f"/ui/providers/deployments/{deployment_id}").text
        assert PROVIDER_KEY not in edit_page and "••••cdef" in edit_page
        edited = _post(
            client,
            f"/deployments/{deployment_id}",
            _form(fresh_upstream.url, "served-now", upstream_model="llama3.3"),
        )
        assert edited.status_code == 303, edited.text
        assert sdk.chat.completions.create(**ask).choices[0].message.content
        assert fresh_upstream.last.json["model"] == "llama3.3"
        assert fresh_upstream.last.headers["authorization"] == f"Bearer {PROVIDER_KEY}"

        # "remove the stored key": the backend is asked without one
        form = _form(fresh_upstream.url, "served-now", upstream_model="llama3.3", clear_key="yes")
        assert _post(client, f"/deployments/{deployment_id}", form).status_code == 303
        assert sdk.chat.completions.create(**ask).choices[0].message.content
        assert "authorization" not in fresh_upstream.last.headers

        deleted = _post(client, f"/deployments/{deployment_id}/delete", {})
        assert deleted.status_code == 303
        with pytest.raises(openai.NotFoundError, match="served-now"):
            sdk.chat.completions.create(**ask)
        # its alias and endpoint went with it: nothing else used them
        assert _sql(console, "SELECT count(*) FROM aliases WHERE name = 'served-now'") == [(0,)]
        assert _sql(
            console,
            "SELECT count(*) FROM providers WHERE source = 'console' AND id NOT IN "
            "(SELECT provider_id FROM deployments)",
        ) == [(0,)]

        audit = client.get("/ui/audit/").text
        for action in ("deployment.create", "deployment.update", "deployment.delete"):
            assert action in audit
        assert "llama3.3" in audit and "served-now" in audit
        assert PROVIDER_KEY not in audit
    rows = _sql(
        console,
        "SELECT after FROM audit_log WHERE action = 'deployment.create' AND target LIKE 'served-now%'",
    )
    assert '"api_key": "\\u2022\\u2022\\u2022\\u2022cdef"' in rows[0][0]  # masked, as JSON stores it
    everything = _sql(console, "SELECT before, after FROM audit_log WHERE action LIKE 'deployment.%'")
    assert all(PROVIDER_KEY not in str(row) for row in everything)


def test_validation_errors_show_next_to_their_fields_with_what_was_typed(console: GatewayServer) -> None:
    typed = _form(
        "ftp://example.com",
        "",
        api_key=PROVIDER_KEY,
        upstream_model="kept-as-typed",
        weight="heavy",
        priority="1.5",
        price_output="-1",
        params='{"logit_bias": {"1": 2}}',  # Ollama drops it: it would never reach the backend
        forced_params='{"n": 3}',  # Ollama answers one choice
        max_input_tokens="lots",
    )
    with closing(signed_in_client(console.url, MASTER_KEY)) as client:
        answer = _post(client, "/deployments", typed)
        assert answer.status_code == 422
        page = answer.text
        problems = dict(re.findall(r'id="error-([a-z_]+)" role="alert">([^<]*)<', page))
        assert set(problems) == {
            "api_base", "alias", "weight", "priority", "price_output", "params", "forced_params",
            "max_input_tokens",
        }  # fmt: skip
        assert "http" in problems["api_base"]
        assert "logit_bias" in problems["params"] and "drops" in problems["params"]
        assert "n=3" in problems["forced_params"]
        assert 'value="kept-as-typed"' in page
        assert PROVIDER_KEY not in page  # not even re-rendered
        bad_json = _post(client, "/deployments", _form("http://h:1", "x", params="{nope"))
        assert bad_json.status_code == 422 and "not valid JSON" in bad_json.text
        not_an_object = _post(client, "/deployments", _form("http://h:1", "x", forced_params="[1]"))
        assert "a JSON object" in not_an_object.text
        own = _post(client, "/deployments", _form("http://h:1", "x", params='{"model": "other"}'))
        assert "set by each request" in own.text
    assert _sql(console, "SELECT count(*) FROM aliases WHERE name IN ('', 'x')") == [(0,)]


def test_an_alias_keeps_one_mode_and_an_embedding_alias_one_model(
    console: GatewayServer, upstream: FakeUpstream
) -> None:
    with closing(signed_in_client(console.url, MASTER_KEY)) as client:
        mixed = _post(client, "/deployments", _form(upstream.url, "local-chat", mode="embedding"))
        assert mixed.status_code == 422
        assert "mixes modes" in mixed.text
        first = _post(
            client,
            "/deployments",
            _form(upstream.url, "vectors", mode="embedding", upstream_model="nomic-embed-text"),
        )
        assert first.status_code == 303
        same = _post(
            client,
            "/deployments",
            _form(
                upstream.url + "/",
                "vectors",
                mode="embedding",
                upstream_model="nomic-embed-text",
                priority="1",
            ),
        )
        assert same.status_code == 303  # the same model on another server is fine
        other = _post(
            client,
            "/deployments",
            _form(upstream.url, "vectors", mode="embedding", upstream_model="mxbai-embed-large"),
        )
        assert other.status_code == 422 and "mixes models" in other.text


def test_rows_from_a_file_are_read_only(console: GatewayServer) -> None:
    (config_id,) = _sql(console, "SELECT d.id FROM deployments d WHERE d.source = 'config'")[0]
    with closing(signed_in_client(console.url, MASTER_KEY)) as client:
        page = client.get("/ui/providers/").text
        assert "re-imported from their file at every" in page and "edit the file" in page.lower()
        row = page.split(f'data-deployment="{config_id}"', 1)[1].split("</tr>", 1)[0]
        assert "read-only" in row and "/delete" not in row and "Edit</a>" not in row
        assert client.get(f"/ui/providers/deployments/{config_id}").status_code == 403
        refused = _post(client, f"/deployments/{config_id}", _form("http://h:1", "local-chat"))
        assert refused.status_code == 403 and "Edit the file" in refused.text
        assert _post(client, f"/deployments/{config_id}/delete", {}).status_code == 403
    assert _sql(console, "SELECT upstream_model FROM deployments WHERE id = ?", config_id) == [("llama3.2",)]


def test_a_model_name_with_a_script_renders_as_text(console: GatewayServer, upstream: FakeUpstream) -> None:
    hostile = "<script>alert(1)</script>"
    with closing(signed_in_client(console.url, MASTER_KEY)) as client:
        assert (
            _post(client, "/deployments", _form(upstream.url, "hostile", upstream_model=hostile)).status_code
            == 303
        )
        page = client.get("/ui/providers/").text
        (deployment_id,) = _deployment_ids(page, "hostile")
        form = client.get(f"/ui/providers/deployments/{deployment_id}").text
    for html in (page, form):
        assert hostile not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_change_without_the_csrf_token_is_refused(console: GatewayServer, upstream: FakeUpstream) -> None:
    with closing(signed_in_client(console.url, MASTER_KEY)) as client:
        answer = client.post("/ui/providers/deployments", data=_form(upstream.url, "no-csrf"))
    assert answer.status_code == 403
    assert _sql(console, "SELECT count(*) FROM aliases WHERE name = 'no-csrf'") == [(0,)]


# ---- the catalogue and imports -------------------------------------------------------------------


def test_a_provider_mapping_file_added_appears_in_the_catalogue(tmp_path: Path) -> None:
    mappings = tmp_path / "mappings"
    shutil.copytree(project_path("mappings"), mappings)
    text = (mappings / "providers" / "openai.yaml").read_text()
    text = re.sub(r"(?m)^name: .*$", "name: acme-llm", text)
    text = re.sub(r"(?m)^description: .*$", "description: Acme's own <b>model</b> server", text)
    text = re.sub(r"(?m)^default_provider: .*$", "", text)
    text = re.sub(r"(?m)^privacy_tier: .*$", "privacy_tier: self-hosted", text)
    (mappings / "providers" / "acme.yaml").write_text(text)
    with (
        running_gateway(tmp_path, {"model_list": []}, mappings_dir=mappings, master_key=MASTER_KEY) as server,
        closing(signed_in_client(server.url, MASTER_KEY)) as client,
    ):
        page = client.get("/ui/providers/").text
        form = client.get("/ui/providers/deployments/new?provider=acme-llm").text
    row = page.split('<tr data-provider="acme-llm">', 1)[1].split("</tr>", 1)[0]
    assert "Acme&#39;s own &lt;b&gt;model&lt;/b&gt; server" in row
    assert "self-hosted" in row and "chat" in row
    assert (
        '<option value="acme-llm"' in form and "selected" in form.split('<option value="acme-llm"', 1)[1][:80]
    )


def test_console_rows_survive_a_restart_that_reimports_the_config(tmp_path: Path) -> None:
    with FakeUpstream() as fake:
        entry = {"model_name": "shared", "litellm_params": {"model": "ollama/llama3.2", "api_base": fake.url}}
        with running_gateway(tmp_path, {"model_list": [entry]}, master_key=MASTER_KEY) as server:
            with closing(signed_in_client(server.url, MASTER_KEY)) as client:
                # a console deployment on the file's alias (more capacity), and one on its own alias
                for alias in ("shared", "console-own"):
                    form = _form(
                        fake.url, alias, upstream_model="qwen3:8b", api_key=PROVIDER_KEY, priority="5"
                    )
                    assert _post(client, "/deployments", form).status_code == 303
            console_rows = _sql(server, "SELECT * FROM deployments WHERE source = 'console' ORDER BY id")
            console_providers = _sql(server, "SELECT * FROM providers WHERE source = 'console' ORDER BY id")
        # restart with a config that no longer has the alias "shared": the import removes the file's rows
        moved = {
            "model_name": "elsewhere",
            "litellm_params": {"model": "ollama/llama3.2", "api_base": fake.url},
        }
        with running_gateway(tmp_path, {"model_list": [moved]}, master_key=MASTER_KEY) as server:
            assert (
                _sql(server, "SELECT * FROM deployments WHERE source = 'console' ORDER BY id") == console_rows
            )
            assert (
                _sql(server, "SELECT * FROM providers WHERE source = 'console' ORDER BY id")
                == console_providers
            )
            assert _sql(server, "SELECT count(*) FROM deployments WHERE source = 'config'") == [(1,)]
            # the alias row the file created stays: a console deployment still serves it
            assert _sql(server, "SELECT source FROM aliases WHERE name = 'shared'") == [("config",)]
            fake.add("POST", CHAT, json=golden_json("ollama", "simple.response.json"))
            for alias in ("shared", "console-own"):
                _sdk(server).chat.completions.create(
                    model=alias, messages=[{"role": "user", "content": "hi"}]
                )
                assert fake.last.json["model"] == "qwen3:8b"
                assert fake.last.headers["authorization"] == f"Bearer {PROVIDER_KEY}"


# ---- Test connection, Fetch models and Refresh models over HTTP ----------------------------------


def test_test_connection_uses_the_stored_key_and_never_shows_a_key(
    console: GatewayServer, fresh_upstream: FakeUpstream
) -> None:
    with closing(signed_in_client(console.url, MASTER_KEY)) as client:
        form = _form(fresh_upstream.url, "probe-stored", api_key=PROVIDER_KEY)
        assert _post(client, "/deployments", form).status_code == 303
        (deployment_id,) = _deployment_ids(client.get("/ui/providers/").text, "probe-stored")
        # an edit form's test: the key field is empty, the stored key is used; the backend echoes it
        echo = {"error": f"invalid api key {PROVIDER_KEY}"}
        fresh_upstream.add("POST", CHAT, status=401, json=echo)
        tested = _post(client, "/test", {**form, "api_key": "", "deployment_id": str(deployment_id)})
        assert fresh_upstream.last.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
        assert 'data-step="chat" data-outcome="fail"' in tested.text and "HTTP 401" in tested.text
        assert 'data-step="tools" data-outcome="skipped"' in tested.text
        assert "invalid api key" in tested.text and PROVIDER_KEY not in tested.text
        # an unsaved key, typed into a new form, is kept out of the answer too
        typed = "sk-typed-never-stored-987654321"
        fresh_upstream.add("POST", CHAT, status=400, json={"error": f"bad key {typed}"})
        tested = _post(client, "/test", _form(fresh_upstream.url, "", api_key=typed))
        assert fresh_upstream.last.headers["authorization"] == f"Bearer {typed}"
        assert "bad key" in tested.text and typed not in tested.text and typed[:12] not in tested.text
        # a form with a bad field is not tested
        refused = _post(client, "/test", _form("gopher://x", "", upstream_model=""))
        assert "Fix the form first" in refused.text and "upstream_model" in refused.text


def test_refresh_models_of_a_stored_endpoint_maps_with_its_key(
    console: GatewayServer, fresh_upstream: FakeUpstream
) -> None:
    with closing(signed_in_client(console.url, MASTER_KEY)) as client:
        form = _form(fresh_upstream.url, "endpoint-owner", api_key=PROVIDER_KEY)
        assert _post(client, "/deployments", form).status_code == 303
        ((provider_id,),) = _sql(
            console,
            "SELECT d.provider_id FROM deployments d JOIN aliases a ON a.id = d.alias_id "
            "WHERE a.name = 'endpoint-owner'",
        )
        page = client.get("/ui/providers/").text
        assert f'<option value="{provider_id}">ollama' in page  # offered as a stored endpoint
        fresh_upstream.add("GET", "/api/tags", json=TAGS)
        listed = _post(client, "/refresh", {"endpoint": str(provider_id)})
        assert 'data-model="qwen3:8b"' in listed.text and 'data-model="llama3.2:latest"' in listed.text
        assert fresh_upstream.last.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
        assert PROVIDER_KEY not in listed.text
        mapped = _post(
            client,
            "/map",
            {
                "endpoint": str(provider_id),
                "upstream_model": "qwen3:8b",
                "alias": "qwen-stored",
                "mode": "chat",
            },
        )
        assert "mapped" in mapped.text and 'hx-swap-oob="true"' in mapped.text
        assert PROVIDER_KEY not in mapped.text
        taken = _post(
            client,
            "/map",
            {
                "endpoint": str(provider_id),
                "upstream_model": "qwen3:8b",
                "alias": "local-chat",
                "mode": "embedding",
            },
        )
        assert "mixes modes" in taken.text and "Map to alias" in taken.text
        # an endpoint that does not answer
        fresh_upstream.add("GET", "/api/tags", status=500, json={"error": "down"})
        broken = _post(client, "/models", _form(fresh_upstream.url, ""))
        assert "Could not list models: HTTP 500" in broken.text
    # the same endpoint (and key): the mapped deployment shares its provider row
    rows = _sql(
        console,
        "SELECT d.provider_id, d.upstream_model FROM deployments d JOIN aliases a ON a.id = d.alias_id "
        "WHERE a.name = 'qwen-stored'",
    )
    assert rows == [(provider_id, "qwen3:8b")]


def test_a_key_may_name_an_environment_variable(
    console: GatewayServer, fresh_upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TURNOUT_TEST_PROVIDER_KEY", "sk-from-the-environment-4242")
    fresh_upstream.add("POST", CHAT, json=golden_json("ollama", "simple.response.json"))
    with closing(signed_in_client(console.url, MASTER_KEY)) as client:
        form = _form(fresh_upstream.url, "env-key", api_key="os.environ/TURNOUT_TEST_PROVIDER_KEY")
        assert _post(client, "/deployments", form).status_code == 303
        assert "$TURNOUT_TEST_PROVIDER_KEY" in client.get("/ui/providers/").text
        bad = _post(client, "/deployments", _form(fresh_upstream.url, "env-key", api_key="os.environ/1 x"))
        assert 'id="error-api_key"' in bad.text
    assert _sql(
        console,
        "SELECT p.api_key_ref, p.api_key_encrypted FROM providers p "
        "JOIN deployments d ON d.provider_id = p.id JOIN aliases a ON a.id = d.alias_id "
        "WHERE a.name = 'env-key'",
    ) == [("os.environ/TURNOUT_TEST_PROVIDER_KEY", None)]
    _sdk(console).chat.completions.create(model="env-key", messages=[{"role": "user", "content": "hi"}])
    assert fresh_upstream.last.headers["authorization"] == "Bearer sk-from-the-environment-4242"
