"""The admin console: server-rendered pages (Jinja2 + htmx, vendored static files) at `ui_path`.

Pages read and write the same SQL as the admin API; a change reaches the serving path (and the other
replicas) through the gateway's reload and change bus, and lands in the audit log.

Importing this package stays cheap: the pages (engine.console.routes) are imported by the app only on
the console's first request (engine.console.lazy).
"""

from engine.console.lazy import LazyConsole
from engine.console.state import ConsoleState

__all__ = ["ConsoleState", "LazyConsole"]
