"""What a deployment can do; None means "not stated"."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.store.base import Base

if TYPE_CHECKING:
    from engine.store.deployment import DeploymentRow

__all__ = ["CapabilityRow"]


class CapabilityRow(Base):
    __tablename__ = "capabilities"

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), unique=True)
    supports_tools: Mapped[bool | None]
    supports_vision: Mapped[bool | None]
    supports_reasoning: Mapped[bool | None]
    supports_streaming: Mapped[bool | None]
    supports_system_messages: Mapped[bool | None]
    supports_json_schema: Mapped[bool | None]
    max_tokens: Mapped[int | None]
    max_input_tokens: Mapped[int | None]
    max_output_tokens: Mapped[int | None]
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)  # other supports_* flags, kept verbatim

    deployment: Mapped[DeploymentRow] = relationship(back_populates="capability", lazy="raise")
