"""Every engine module states its public surface in __all__, and every name listed exists (habit 10)."""

from __future__ import annotations

import importlib
import pkgutil

import engine

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(engine.__path__, "engine.")
    if not info.ispkg and info.name not in ("engine.__main__", "engine.asgi")
)


def test_every_module_declares_and_defines_its_exports() -> None:
    problems = []
    for name in MODULES:
        module = importlib.import_module(name)
        exported = getattr(module, "__all__", None)
        if exported is None:
            problems.append(f"{name}: no __all__")
            continue
        problems += [
            f"{name}: __all__ names missing {item!r}" for item in exported if not hasattr(module, item)
        ]
    assert not problems, "\n".join(problems)


def test_package_exports() -> None:
    assert engine.__all__ == ["__version__"]
    from engine.routing import __all__ as routing

    assert sorted(routing) == [
        "Alias",
        "Capabilities",
        "Cost",
        "Deployment",
        "Fallbacks",
        "Limits",
        "RouterSettings",
        "RoutingTable",
    ]
