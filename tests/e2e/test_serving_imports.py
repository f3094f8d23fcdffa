"""What a serving process keeps out of its memory: the console until its first request, and modules
it never needs (each import here costs resident memory in every worker, for the process's life)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.process import fresh_interpreter

# what a serving process imports only once the console has been asked for (engine.console.lazy)
_CONSOLE = ("engine.console.routes", "engine.console.pages", "engine.console.render")
# what it never imports: Litestar's plugins for pydantic and attrs types (engine.app._Litestar), the
# migrations (engine.cli runs them in a child), what only a mapping's error or the authors' tools use
_NEVER = ("pydantic.v1", "litestar.plugins.pydantic", "litestar.plugins.attrs", "alembic", "mako", "difflib")

_SCRIPT = """
import json, sys
import httpx
from pathlib import Path
from tests.support import running_gateway

def imported():
    return sorted(m for m in sys.modules if m.startswith(tuple(json.loads(sys.argv[2]))))

seen = {}
key = "sk-lazy-0123456789"
with running_gateway(Path(sys.argv[1]), {"model_list": []}, master_key=key) as gw:
    seen["health"] = httpx.get(gw.url + "/health/readiness").status_code
    seen["models"] = httpx.get(gw.v1 + "/models", headers={"authorization": "Bearer " + key}).status_code
    seen["before"] = imported()
    page = httpx.get(gw.url + "/ui/sign-in")
    seen["page"] = [page.status_code, page.headers.get("content-security-policy", "")]
    seen["after"] = imported()
print(json.dumps(seen))
"""


def test_a_serving_process_imports_the_console_on_its_first_request_and_never_these(tmp_path: Path) -> None:
    seen = fresh_interpreter(
        _SCRIPT, str(tmp_path), json.dumps([*_CONSOLE, *_NEVER]), home=tmp_path, timeout=120
    )
    assert seen["health"] == 200 and seen["models"] == 200
    assert seen["before"] == []  # the API served, the console not yet asked for
    status, policy = seen["page"]
    assert status == 200 and "script-src 'self'" in policy
    assert set(_CONSOLE) <= set(seen["after"])
    assert not [name for name in seen["after"] if name.startswith(_NEVER)]
