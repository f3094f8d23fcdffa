"""A virtual key: an API key the admin API (or `turnout keys`) issued, with what it may use.

Only the key's SHA-256 is stored; the key itself is shown once, when it is created. `spend` is the spend
of the current budget period: the usage recorder adds to it, and the key ring's reload sets it back to
0 (and moves `budget_reset_at` on) once the period is over.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base, utcnow

__all__ = ["ApiKeyRow"]


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint("privacy IN ('local', 'private')", name="privacy"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 hex of the whole key
    key_prefix: Mapped[str] = mapped_column(String(8))  # "sk-" and the next 5 characters, for display
    key_alias: Mapped[str | None] = mapped_column(String(200))  # a name for people
    models: Mapped[list[str]] = mapped_column(default=list)  # aliases the key may use; empty: all
    max_budget: Mapped[Decimal | None]  # spend limit in the cost rows' currency
    budget_duration: Mapped[str | None] = mapped_column(String(20))  # e.g. "30d": spend resets after it
    spend: Mapped[Decimal] = mapped_column(default=Decimal(0))
    budget_reset_at: Mapped[datetime | None]  # end of the current budget period (None: no budget_duration)
    rpm_limit: Mapped[int | None]  # requests per minute
    tpm_limit: Mapped[int | None]  # tokens per minute
    max_parallel_requests: Mapped[int | None]
    privacy: Mapped[str | None] = mapped_column(String(20))  # like x-turnout-privacy; None: any tier
    expires_at: Mapped[datetime | None]  # None: never
    key_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]  # set by /key/delete and `turnout keys revoke`; never unset
