"""Alembic, run programmatically. Synchronous: the CLI calls it before the server's event loop starts."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from engine.settings import project_path

__all__ = ["alembic_config", "upgrade_to_head"]


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(project_path("migrations")))
    # ConfigParser interpolation would read "%" in a password as a reference.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_to_head(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")
