"""A price per unit of one usage field."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.store.base import Base

if TYPE_CHECKING:
    from engine.store.deployment import DeploymentRow

__all__ = ["COST_UNITS", "CostRow"]

# input_token, output_token, cached_input_token, reasoning_token: per token;
# audio_second: per second of input audio; character: per input character; image: per generated image;
# search_unit: per rerank search unit (one query over up to 100 documents).
COST_UNITS = (
    "input_token",
    "output_token",
    "cached_input_token",
    "reasoning_token",
    "audio_second",
    "character",
    "image",
    "search_unit",
)


class CostRow(Base):
    __tablename__ = "costs"
    __table_args__ = (UniqueConstraint("deployment_id", "unit"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    unit: Mapped[str] = mapped_column(String(30))
    price: Mapped[Decimal]

    deployment: Mapped[DeploymentRow] = relationship(back_populates="costs", lazy="raise")
