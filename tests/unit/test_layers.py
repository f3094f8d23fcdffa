"""The engine's packages import downwards only: routing knows nothing of the pipeline or the API above it,
the pipeline nothing of the API or the gateway that composes it."""

from __future__ import annotations

import ast
from pathlib import Path

import engine

ROOT = Path(engine.__file__).parent
# package -> the packages (and modules) above it, which it must never import
FORBIDDEN = {
    "routing": ("engine.pipeline", "engine.api", "engine.console", "engine.gateway", "engine.app"),
    "pipeline": ("engine.api", "engine.console", "engine.gateway", "engine.app"),
}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_packages_import_downwards_only() -> None:
    problems = []
    for package, above in FORBIDDEN.items():
        for path in sorted((ROOT / package).glob("*.py")):
            for name in sorted(_imports(path)):
                if name.startswith(above):
                    problems.append(f"engine/{package}/{path.name} imports {name}")
    assert not problems, "\n".join(problems)
