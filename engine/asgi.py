"""`engine.asgi:app` for ASGI servers and uvicorn workers: settings from the environment.

Run `turnout import` (or `turnout serve` once) first: this entry point migrates nothing and imports
nothing, it serves what SQL holds.
"""

from __future__ import annotations

from engine.app import create_app
from engine.settings import Settings

app = create_app(Settings())
