"""Just enough of a Dockerfile reader to run an image's command as written: its stages, each with its
instructions in order (continuation lines joined, comments dropped)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Stage", "exec_form", "expand", "stages"]


@dataclass
class Stage:
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def all(self, instruction: str) -> list[str]:
        return [arguments for name, arguments in self.instructions if name == instruction]

    def last(self, instruction: str) -> str:
        found = self.all(instruction)
        assert found, f"no {instruction} in the stage FROM {self.base}"
        return found[-1]

    def environment(self, inherited: dict[str, str]) -> dict[str, str]:
        """The stage's ENV lines applied in order over `inherited` (`$VAR` / `${VAR}` expanded)."""
        env = dict(inherited)
        for arguments in self.all("ENV"):
            for pair in shlex.split(arguments):
                name, _, value = pair.partition("=")
                env[name] = expand(value, env)
        return env


def stages(path: Path) -> list[Stage]:
    found: list[Stage] = []
    for line in _logical_lines(path.read_text()):
        name, _, arguments = line.partition(" ")
        name, arguments = name.upper(), arguments.strip()
        if name == "FROM":
            found.append(Stage(arguments))
        elif found:
            found[-1].instructions.append((name, arguments))
    return found


def exec_form(arguments: str) -> list[str]:
    """A JSON-array (exec form) command; the shell form is refused: it would need a shell's rules."""
    command = json.loads(arguments)
    assert isinstance(command, list) and all(isinstance(part, str) for part in command), arguments
    return command


def expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), value)


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    return lines
