"""`engine.asgi:app` for ASGI servers and uvicorn workers: settings, and Turnout's log format, from the
environment.

Run `turnout import` (or `turnout serve` once) first: this entry point migrates nothing and imports
nothing, it serves what SQL holds.
"""

from __future__ import annotations

from engine.app import create_app
from engine.logs import configure_logging
from engine.settings import Settings

settings = Settings()
configure_logging(
    settings.log_level, settings.log_format, credentials=(settings.master_key, settings.salt_key)
)
app = create_app(settings)
