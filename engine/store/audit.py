"""One change made through the admin console: who, what, when, and the row before and after.

Written in the same transaction as the change it describes, so a change without its audit row cannot
exist. `before` / `after` hold what the console showed (secrets masked), None for a creation or a
deletion; sign-ins and failed sign-ins are recorded too (`action` "sign_in", "sign_in_failed").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base, utcnow

__all__ = ["AuditRow"]


class AuditRow(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(120))  # "master key", "user:alice", or a client address
    action: Mapped[str] = mapped_column(String(60))  # e.g. "deployment.create", "key.revoke"
    target: Mapped[str] = mapped_column(String(300))  # what was changed, e.g. "deployment 12"
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
