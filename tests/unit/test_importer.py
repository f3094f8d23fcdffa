"""Config plans written into SQLite and read back as a routing table."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from engine.config.catalog import ProviderCatalog
from engine.config.importer import ImportReport, remove_source, sync_source
from engine.config.litellm import parse_litellm_data
from engine.config.plan import ConfigError, ImportPlan
from engine.config.secrets import SecretBox
from engine.routing.table import Fallbacks, Limits, RouterSettings, RoutingTable
from engine.store.db import create_engine, session_factory
from engine.store.load import load_routing_table
from engine.store.migrate import upgrade_to_head
from engine.store.models import (
    AliasRow,
    Base,
    CapabilityRow,
    CostRow,
    DeploymentRow,
    FallbackRow,
    ProviderRow,
    RouterSettingRow,
)
from tests.support.catalog import TEST_CATALOG

T = TypeVar("T")

CATALOG = TEST_CATALOG
SECRET = "sk-very-secret-literal-key-123"
BOX = SecretBox(b"test salt key")


def _config(*, with_embedding: bool = True, qwen_ctx: int = 8192) -> dict[str, Any]:
    entries: list[dict[str, Any]] = [
        {
            "model_name": "chat",
            "litellm_params": {
                "model": "ollama/qwen3:8b",
                "api_base": "os.environ/TEST_OLLAMA_URL",
                "num_ctx": qwen_ctx,
            },
            "model_info": {
                "supports_vision": True,
                "max_input_tokens": 40960,
                "input_cost_per_token": 0.000001,
            },
        },
        {
            "model_name": "chat",
            "litellm_params": {"model": "gpt-4.1", "api_key": "os.environ/TEST_OPENAI_KEY", "order": 1},
        },
        {
            "model_name": "vllm",
            "litellm_params": {
                "model": "hosted_vllm/llama",
                "api_base": "http://gpu:8000/v1",
                "api_key": SECRET,
            },
            "model_info": {"id": "vllm-1", "privacy_tier": "self-hosted"},
        },
    ]
    if with_embedding:
        entries.append(
            {
                "model_name": "embed",
                "litellm_params": {"model": "ollama/nomic"},
                "model_info": {"mode": "embedding"},
            }
        )
    return {"model_list": entries}


def _plan(**kwargs: Any) -> ImportPlan:
    return parse_litellm_data(_config(**kwargs), CATALOG, origin="test.yaml")


class Db:
    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "data" / "turnout.db"
        self.url = f"sqlite+aiosqlite:///{self.path}"
        upgrade_to_head(self.url)

    def run(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async def main() -> T:
            engine = create_engine(self.url)
            try:
                async with session_factory(engine)() as session, session.begin():
                    return await work(session)
            finally:
                await engine.dispose()

        return asyncio.run(main())

    def sync(self, plan: ImportPlan, source: str = "config") -> ImportReport:
        return self.run(lambda session: sync_source(session, plan, source, CATALOG, BOX))

    def table(self) -> RoutingTable:
        return self.run(lambda session: load_routing_table(session, CATALOG, BOX))

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        async def read(session: AsyncSession) -> dict[str, list[tuple[Any, ...]]]:
            found: dict[str, list[tuple[Any, ...]]] = {}
            for model in (
                ProviderRow, AliasRow, DeploymentRow, CapabilityRow, CostRow, RouterSettingRow, FallbackRow,
            ):  # fmt: skip
                table = Base.metadata.tables[model.__tablename__]
                rows = await session.execute(select(table).order_by(table.c.id))
                found[table.name] = [tuple(row) for row in rows]
            return found

        return self.run(read)


def test_import_then_reimport_changes_nothing(tmp_path: Path) -> None:
    db = Db(tmp_path)
    first = db.sync(_plan())
    assert (first.created, first.updated, first.deleted) == (4, 0, 0)
    before = db.snapshot()
    again = db.sync(_plan())
    assert (again.created, again.updated, again.unchanged, again.deleted) == (0, 0, 4, 0)
    assert db.snapshot() == before  # same ids, same rows, same updated_at
    assert len(before["providers"]) == 4
    assert {row[-1] for row in before["costs"]} == {Decimal("0.000001")}


def test_changed_entry_is_updated_and_dropped_entries_removed(tmp_path: Path) -> None:
    db = Db(tmp_path)
    db.sync(_plan())
    before = db.snapshot()
    report = db.sync(_plan(with_embedding=False, qwen_ctx=4096))
    assert (report.created, report.updated, report.deleted, report.aliases_deleted) == (0, 1, 1, 1)
    assert report.providers_deleted == 1
    after = db.snapshot()
    assert [row[0] for row in after["deployments"]] == [row[0] for row in before["deployments"]][:3]
    assert {row[1] for row in after["aliases"]} == {"chat", "vllm"}


def test_sources_are_kept_apart(tmp_path: Path) -> None:
    db = Db(tmp_path)
    db.sync(_plan(with_embedding=False))
    other = {"model_list": [{"model_name": "embed", "litellm_params": {"model": "ollama/nomic"}}]}
    db.sync(parse_litellm_data(other, CATALOG), source="defaults")
    sources = {(row[1], row[4]) for row in db.snapshot()["aliases"]}
    assert sources == {("chat", "config"), ("vllm", "config"), ("embed", "defaults")}
    removed = db.run(lambda session: remove_source(session, "config"))
    assert (removed.deleted, removed.aliases_deleted) == (3, 2)
    assert list(db.table().aliases) == ["embed"]


def test_mixed_modes_are_refused(tmp_path: Path) -> None:
    db = Db(tmp_path)
    plan = _plan()
    data = _config()
    data["model_list"][3]["model_name"] = "chat"
    with pytest.raises(ConfigError, match="alias 'chat' mixes modes \\(chat, embedding\\)"):
        db.sync(parse_litellm_data(data, CATALOG, origin="test.yaml"))
    assert db.sync(plan).created == 4  # the refused import wrote nothing


def test_embedding_alias_refuses_mixed_models(tmp_path: Path) -> None:
    db = Db(tmp_path)
    entries = [
        {"model_name": "embed", "litellm_params": {"model": "ollama/nomic-embed-text", "api_base": url}}
        for url in ("http://a:11434", "http://b:11434")
    ]
    entries.append({"model_name": "embed", "litellm_params": {"model": "text-embedding-3-small"}})
    for entry in entries:
        entry["model_info"] = {"mode": "embedding"}
    mixed = parse_litellm_data({"model_list": entries}, CATALOG, origin="rag.yaml")
    with pytest.raises(ConfigError, match=r"rag\.yaml: embedding alias 'embed' mixes models") as refused:
        db.sync(mixed)
    assert "ollama/nomic-embed-text, openai/text-embedding-3-small" in str(refused.value)
    same_model = parse_litellm_data({"model_list": entries[:2]}, CATALOG, origin="rag.yaml")
    assert db.sync(same_model).created == 2  # one model on two servers is a safe fallback


def test_routing_table_resolves_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-from-env")
    monkeypatch.delenv("TEST_OLLAMA_URL", raising=False)
    db = Db(tmp_path)
    db.sync(_plan())
    table = db.table()
    chat = table.get("chat")
    assert chat is not None and chat.mode == "chat"
    local, hosted = chat.deployments
    assert (local.provider, local.api_base, local.priority, local.privacy_tier) == (
        "ollama", "http://localhost:11434", 0, "local",
    )  # fmt: skip
    assert local.params == {"num_ctx": 8192}
    assert local.capabilities.vision is True and local.capabilities.max_input_tokens == 40960
    assert [(cost.unit, cost.price) for cost in local.costs] == [("input_token", Decimal("0.000001"))]
    assert (hosted.api_key, hosted.api_base, hosted.priority) == (
        "sk-from-env",
        "https://api.openai.com/v1",
        1,
    )
    vllm = table.aliases["vllm"].deployments[0]
    assert (vllm.api_key, vllm.api_base, vllm.privacy_tier) == (SECRET, "http://gpu:8000/v1", "self-hosted")
    assert table.aliases["embed"].mode == "embedding"

    monkeypatch.setenv("TEST_OLLAMA_URL", "http://other:11434")
    assert db.table().aliases["chat"].deployments[0].api_base == "http://other:11434"


def test_literal_key_is_not_stored_in_plaintext(tmp_path: Path) -> None:
    db = Db(tmp_path)
    db.sync(_plan())
    db.sync(_plan())
    data = b"".join(path.read_bytes() for path in db.path.parent.glob("turnout.db*"))
    assert SECRET.encode() not in data
    assert "os.environ/TEST_OPENAI_KEY" in str(db.snapshot()["providers"])


def test_unknown_mapping_is_skipped_when_loading(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = Db(tmp_path)
    db.sync(_plan())
    smaller = ProviderCatalog(providers={"openai": CATALOG.providers["openai"]}, default_provider="openai")
    table = db.run(lambda session: load_routing_table(session, smaller, BOX))
    assert [d.provider for d in table.aliases["chat"].deployments] == ["openai"]
    assert "embed" not in table.aliases
    assert "provider mapping 'ollama' is not installed" in caplog.text


def _routed(**router: Any) -> dict[str, Any]:
    """The test config with router settings, an alias strategy, limits and forced parameters."""
    data = _config()
    chat_local, chat_hosted = data["model_list"][:2]
    chat_local["model_info"]["routing_strategy"] = "least-busy"
    chat_hosted["litellm_params"].update(rpm=100, tpm=50_000, max_parallel_requests=4)
    chat_hosted["litellm_params"]["turnout_forced_params"] = {"temperature": 0}
    data["router_settings"] = router or {
        "routing_strategy": "latency-based-routing",
        "num_retries": 2,
        "cooldown_time": 10,
        "fallbacks": [{"chat": ["vllm", "gpt-4o"]}],
        "context_window_fallbacks": [{"*": ["vllm"]}],
    }
    return data


def _routed_plan(**router: Any) -> ImportPlan:
    return parse_litellm_data(_routed(**router), CATALOG, origin="test.yaml")


def test_router_config_imports_idempotently_and_loads(tmp_path: Path) -> None:
    db = Db(tmp_path)
    first = db.sync(_routed_plan())
    assert first.settings_changed == 3 + 3  # settings; fallback rows
    before = db.snapshot()
    again = db.sync(_routed_plan())
    assert (again.updated, again.unchanged, again.settings_changed) == (0, 4, 0)
    assert db.snapshot() == before
    table = db.table()
    assert table.settings == RouterSettings(
        routing_strategy="latency-based-routing", num_retries=2, cooldown_time=10.0
    )
    chat = table.aliases["chat"]
    assert chat.routing_strategy == "least-busy" and table.aliases["vllm"].routing_strategy is None
    # gpt-4o: served by no source, dropped; "*" serves every alias without its own list, not itself
    assert chat.fallbacks == Fallbacks(general=("vllm",), context_window=("vllm",))
    assert table.aliases["vllm"].fallbacks == Fallbacks()
    assert table.aliases["embed"].fallbacks == Fallbacks(context_window=("vllm",))
    local, hosted = chat.deployments
    assert (local.limits, local.forced_params) == (Limits(), {})
    assert hosted.limits == Limits(rpm=100, tpm=50_000, max_parallel_requests=4)
    assert hosted.forced_params == {"temperature": 0} and "temperature" not in hosted.params


def test_router_config_changes_are_written_and_removed(tmp_path: Path) -> None:
    db = Db(tmp_path)
    db.sync(_routed_plan())
    changed = db.sync(
        _routed_plan(routing_strategy="latency-based-routing", num_retries=3, fallbacks=[{"chat": ["embed"]}])
    )
    assert changed.settings_changed == 1 + 1 + 2 + 1  # num_retries; cooldown_time; 2 positions; "*"
    table = db.table()
    assert table.settings == RouterSettings(routing_strategy="latency-based-routing", num_retries=3)
    assert table.aliases["chat"].fallbacks == Fallbacks(general=("embed",))
    plain = db.sync(_plan())  # no router settings, no alias strategy, no limits
    assert plain.updated == 1 and plain.settings_changed == 3
    table = db.table()
    assert table.settings == RouterSettings() and table.aliases["chat"].routing_strategy is None
    assert table.aliases["chat"].deployments[1].limits == Limits()
    db.sync(_routed_plan())
    removed = db.run(lambda session: remove_source(session, "config"))
    assert removed.settings_changed == 6
    assert db.snapshot()["router_settings"] == db.snapshot()["fallbacks"] == []


def test_config_source_wins_over_defaults(tmp_path: Path) -> None:
    db = Db(tmp_path)
    defaults = {
        "model_list": [{"model_name": "small", "litellm_params": {"model": "ollama/qwen3:0.6b"}}],
        "router_settings": {
            "routing_strategy": "ordered",
            "allowed_fails": 1,
            "fallbacks": [{"chat": ["small"]}, {"small": ["chat"]}],
        },
    }
    db.sync(parse_litellm_data(defaults, CATALOG, origin="defaults.yaml"), source="defaults")
    db.sync(_routed_plan())
    table = db.table()
    assert table.settings == RouterSettings(
        routing_strategy="latency-based-routing", num_retries=2, cooldown_time=10.0, allowed_fails=1
    )
    assert table.aliases["chat"].fallbacks.general == ("vllm",)  # the config's list, whole
    assert table.aliases["small"].fallbacks == Fallbacks(general=("chat",), context_window=("vllm",))
    reversed_order = db.run(
        lambda session: load_routing_table(session, CATALOG, BOX, precedence=("defaults", "config"))
    )
    assert reversed_order.settings.routing_strategy == "ordered"
    assert reversed_order.aliases["chat"].fallbacks.general == ("small",)


def test_alias_strategy_of_another_source_is_kept(tmp_path: Path) -> None:
    db = Db(tmp_path)
    db.sync(_routed_plan())
    other = {"model_list": [{"model_name": "chat", "litellm_params": {"model": "ollama/qwen3:0.6b"}}]}
    db.sync(parse_litellm_data(other, CATALOG), source="defaults")  # states no strategy for "chat"
    assert db.table().aliases["chat"].routing_strategy == "least-busy"
    other["model_list"][0]["model_info"] = {"routing_strategy": "ordered"}
    db.sync(parse_litellm_data(other, CATALOG), source="defaults")  # the latest statement wins
    assert db.table().aliases["chat"].routing_strategy == "ordered"


def test_unusable_router_rows_are_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = Db(tmp_path)
    db.sync(_plan())

    async def tamper(session: AsyncSession) -> None:
        session.add_all(
            [
                RouterSettingRow(source="config", key="num_retries", value="three"),
                RouterSettingRow(source="config", key="routing_strategy", value="fastest"),
                RouterSettingRow(source="config", key="cooldown_time", value=7),
                RouterSettingRow(source="config", key="enable_pre_call_checks", value=1),
                RouterSettingRow(source="other", key="from_the_future", value=True),
            ]
        )
        (await session.scalars(select(AliasRow).where(AliasRow.name == "chat"))).one().routing_strategy = "x"

    db.run(tamper)
    table = db.table()
    assert table.settings == RouterSettings(cooldown_time=7.0)
    assert table.aliases["chat"].routing_strategy is None
    assert "ignoring router setting num_retries='three' from config" in caplog.text
    assert "alias chat: unknown routing strategy 'x'" in caplog.text
