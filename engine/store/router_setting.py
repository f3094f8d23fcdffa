"""One router setting (LiteLLM's `router_settings` key) as a source states it.

Key/value rather than one column per setting: a source states only some keys, and the loader merges
sources key by key (the config over the default set), so "not stated" must be representable per key;
a row per stated key says exactly that, and a new LiteLLM setting needs no migration. Values are
validated when the file is parsed (`engine.config.litellm_router`) and typed again by the loader.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base, TimestampMixin

__all__ = ["RouterSettingRow"]


class RouterSettingRow(TimestampMixin, Base):
    __tablename__ = "router_settings"
    __table_args__ = (UniqueConstraint("source", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(50))
    key: Mapped[str] = mapped_column(String(50))  # a `RouterSettings` field, e.g. num_retries
    value: Mapped[Any] = mapped_column(JSON)  # a number, a bool or a strategy name
