"""One step of an alias's fallback list, as a source states it (LiteLLM's `fallbacks` and kin).

`alias` and `target` are names, not foreign keys: a fallback may name an alias another source serves
(the config falling back to a default alias), or one that no source serves yet; the loader resolves
names against the aliases it builds and drops targets nothing serves.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base

__all__ = ["FallbackRow"]


class FallbackRow(Base):
    __tablename__ = "fallbacks"
    __table_args__ = (
        UniqueConstraint("source", "alias", "kind", "position"),
        CheckConstraint("kind IN ('general', 'context_window', 'content_policy')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(50))
    alias: Mapped[str] = mapped_column(String(200))  # the alias that failed; "*": any alias without a list
    # general: any failure; context_window: the prompt was too long; content_policy: a filter refused it
    kind: Mapped[str] = mapped_column(String(20))
    position: Mapped[int]  # 0 is tried first
    target: Mapped[str] = mapped_column(String(200))  # the alias to try
