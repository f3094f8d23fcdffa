"""What the checker reports: one problem at one file and line, an error or a warning."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Diagnostic", "Report", "Severity"]

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True, order=True)
class Diagnostic:
    file: str
    line: int
    severity: Severity
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity}: {self.message}"


@dataclass(slots=True)
class Report:
    """Every diagnostic of a check, each once, in file and line order; plus load errors as the loader
    worded them (they already start with file:line)."""

    load_errors: list[str] = field(default_factory=list)
    diagnostics: set[Diagnostic] = field(default_factory=set)

    def add(self, file: str, line: int, severity: Severity, message: str) -> None:
        self.diagnostics.add(Diagnostic(file, line, severity, message))

    @property
    def errors(self) -> int:
        return len(self.load_errors) + sum(d.severity == "error" for d in self.diagnostics)

    @property
    def warnings(self) -> int:
        return sum(d.severity == "warning" for d in self.diagnostics)

    def lines(self) -> list[str]:
        return [*map(_as_error, self.load_errors), *(str(d) for d in sorted(self.diagnostics))]


def _as_error(problem: str) -> str:
    """A loader's "file:line: message" as "file:line: error: message", like the checker's own."""
    found = re.match(r"(.*?:\d+): (.*)", problem, re.DOTALL)
    return f"{found[1]}: error: {found[2]}" if found else f"{problem} (error)"
