"""The golden suite's chat scenarios as data: read from a checkout, or from the copy a wheel bundles.

The scenario files stay where the golden tests read them (tests/golden/scenarios); a wheel carries the
same files as engine/_bundled/golden_scenarios, so `turnout record` works after `pip install` too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Scenario", "load_scenarios", "scenarios_dir"]

_ENGINE_DIR = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    needs: tuple[str, ...]
    request: dict[str, Any]  # an OpenAI Chat Completions body (model `test-alias`)


def scenarios_dir() -> Path:
    checkout = _ENGINE_DIR.parent / "tests" / "golden" / "scenarios"
    if checkout.is_dir():
        return checkout
    return _ENGINE_DIR / "_bundled" / "golden_scenarios"


def load_scenarios(folder: Path | None = None) -> list[Scenario]:
    """Every scenario, by name."""
    found = []
    for path in sorted((folder or scenarios_dir()).glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        found.append(
            Scenario(path.stem, str(data["description"]), tuple(data.get("needs") or ()), data["request"])
        )
    return found
