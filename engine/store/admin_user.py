"""A person who may open the admin console with a password (`turnout admin set-password`).

Only a scrypt hash of the password is stored (engine/console/passwords.py). The master key opens the
console too; it is not stored here.
"""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base, TimestampMixin

__all__ = ["AdminUserRow"]


class AdminUserRow(TimestampMixin, Base):
    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
