"""The admin console: server-rendered pages (Jinja2 + htmx, vendored static files) at `ui_path`.

Pages read and write the same SQL as the admin API; a change reaches the serving path (and the other
replicas) through the gateway's reload and change bus, and lands in the audit log.
"""

from engine.console.routes import console_routes
from engine.console.state import ConsoleState

__all__ = ["ConsoleState", "console_routes"]
