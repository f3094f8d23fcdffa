"""The sources rows in SQL come from, by name. Every row of providers, deployments, router settings and
fallbacks names its source; `SOURCE_PRECEDENCE` (engine/store/load.py) ranks them.

A module of its own, with no imports: the console and the loader name sources without importing the
bootstrap and what it imports.
"""

from __future__ import annotations

__all__ = ["CONFIG_SOURCE", "CONSOLE_SOURCE", "DEFAULTS_SOURCE"]

CONSOLE_SOURCE = "console"  # created in the admin console; no import of a file touches it
CONFIG_SOURCE = "config"  # the `--config` file (or an upload in the console), imported at start
DEFAULTS_SOURCE = "defaults"  # the default alias set, served when no config file is given
