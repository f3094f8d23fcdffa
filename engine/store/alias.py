"""A model name clients ask for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.store.base import Base, TimestampMixin

if TYPE_CHECKING:
    from engine.store.deployment import DeploymentRow

__all__ = ["AliasRow"]


class AliasRow(TimestampMixin, Base):
    __tablename__ = "aliases"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    mode: Mapped[str] = mapped_column(String(50))  # chat | embedding | audio_speech | ...
    display_name: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(50))
    # this alias's own strategy (model_info.routing_strategy), None: the router's
    routing_strategy: Mapped[str | None] = mapped_column(String(50))

    deployments: Mapped[list[DeploymentRow]] = relationship(
        back_populates="alias", lazy="raise", cascade="all, delete-orphan"
    )
