"""`engine.asgi:app` for ASGI servers and uvicorn workers: settings from the environment.

Run `turnout import` (or `turnout serve` once) first: this entry point migrates nothing and imports
nothing, it serves what SQL holds.
"""

from __future__ import annotations

import logging

from engine.app import create_app
from engine.settings import Settings

settings = Settings()
# a worker process logs as `turnout serve` does (its reloads, its start), at the level it was given
logging.basicConfig(
    level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
)
app = create_app(settings)
