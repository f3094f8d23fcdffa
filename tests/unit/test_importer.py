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
from engine.routing.table import RoutingTable
from engine.store.db import create_engine, session_factory
from engine.store.load import load_routing_table
from engine.store.migrate import upgrade_to_head
from engine.store.models import AliasRow, Base, CapabilityRow, CostRow, DeploymentRow, ProviderRow
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
            for model in (ProviderRow, AliasRow, DeploymentRow, CapabilityRow, CostRow):
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
    sources = {(row[1], row[-3]) for row in db.snapshot()["aliases"]}
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
