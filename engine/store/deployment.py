"""One upstream model behind an alias."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.store.base import Base, TimestampMixin

if TYPE_CHECKING:
    from engine.store.alias import AliasRow
    from engine.store.capability import CapabilityRow
    from engine.store.cost import CostRow
    from engine.store.provider import ProviderRow

__all__ = ["DeploymentRow"]


class DeploymentRow(TimestampMixin, Base):
    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("source", "source_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alias_id: Mapped[int] = mapped_column(ForeignKey("aliases.id", ondelete="CASCADE"), index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="RESTRICT"), index=True)
    upstream_model: Mapped[str] = mapped_column(String(300))
    weight: Mapped[float] = mapped_column(default=1.0)
    priority: Mapped[int] = mapped_column(default=0)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)  # per-model parameter defaults
    # parameters that win over the request (`turnout_forced_params`); `params` are only defaults
    forced_params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # the deployment's own limits, None: unlimited (enforced by the router, per process)
    rpm: Mapped[int | None]  # requests per minute
    tpm: Mapped[int | None]  # tokens per minute
    max_parallel_requests: Mapped[int | None]  # requests in flight at once
    timeout: Mapped[float | None]
    tags: Mapped[list[str]] = mapped_column(default=list)
    mode: Mapped[str] = mapped_column(String(50))
    source: Mapped[str] = mapped_column(String(50))
    # Stable identity within its source: model_info.id, else "<model_name>#<n>".
    source_key: Mapped[str] = mapped_column(String(300))

    alias: Mapped[AliasRow] = relationship(back_populates="deployments", lazy="raise")
    provider: Mapped[ProviderRow] = relationship(back_populates="deployments", lazy="raise")
    capability: Mapped[CapabilityRow | None] = relationship(
        back_populates="deployment", lazy="raise", cascade="all, delete-orphan", uselist=False
    )
    costs: Mapped[list[CostRow]] = relationship(
        back_populates="deployment", lazy="raise", cascade="all, delete-orphan"
    )
