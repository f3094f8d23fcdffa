"""An upstream endpoint: which mapping speaks to it, where, and with which credentials."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.store.base import Base, TimestampMixin

if TYPE_CHECKING:
    from engine.store.deployment import DeploymentRow

__all__ = ["ProviderRow"]


class ProviderRow(TimestampMixin, Base):
    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    mapping: Mapped[str] = mapped_column(String(100))  # provider mapping name (file stem)
    api_base: Mapped[str | None] = mapped_column(Text)  # a URL or an `os.environ/NAME` reference
    api_key_ref: Mapped[str | None] = mapped_column(String(300))  # `os.environ/NAME`, resolved at load
    api_key_encrypted: Mapped[str | None] = mapped_column(Text)  # Fernet token of a literal key
    api_version: Mapped[str | None] = mapped_column(String(100))
    privacy_tier: Mapped[str | None] = mapped_column(String(20))  # None: the mapping's default
    source: Mapped[str] = mapped_column(String(50))

    deployments: Mapped[list[DeploymentRow]] = relationship(back_populates="provider", lazy="raise")
