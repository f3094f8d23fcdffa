"""`turnout mappings check`: every mapping loaded as the gateway loads it, then read for what loading
cannot refuse on its own but is wrong all the same. Each finding names file:line:

- errors: a key that is certainly absent (a misspelt canonical parameter, deployment field, stream
  state or error field), Jinja statements or comments that would go out as text, a filter, test or
  function called with the wrong number of arguments; the loader's own errors (unknown `$` keys
  included) come first.
- warnings: a key that is probably misspelt in a payload the checker cannot know in full (upstream
  answers and events, canonical answers): read once, close to a key read elsewhere or to a known one;
  a parameter read although the operation's params drop it.

The checker reads the sections the compiler produced (within `authoring`, each keeps its
expressions as engine.mapping.compiler.Site), so it sees every construct the compiler knows, and the
serving path, which records nothing, pays nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

from engine.mapping.checks.diagnostics import Diagnostic, Report
from engine.mapping.checks.mappings import check_dialect, check_provider
from engine.mapping.compiler import authoring
from engine.mapping.dialects import DialectMapping, check_dialects
from engine.mapping.expressions import shared_parses
from engine.mapping.loader import check_folder
from engine.mapping.spec import ProviderMapping
from engine.mapping.yaml_lines import LineDict

__all__ = ["Diagnostic", "Report", "check_mappings"]


def check_mappings(folder: Path | Sequence[Path]) -> Report:
    """Check every provider and dialect mapping in `folder` (or folders, later ones on top)."""
    report = Report()
    with shared_parses(), authoring():
        report.load_errors += check_folder(folder, partial(_provider, report=report))
        report.load_errors += check_dialects(folder, partial(_dialect, report=report))
    return report


def _provider(provider: ProviderMapping, tree: LineDict, *, report: Report) -> None:
    check_provider(provider, tree, report)


def _dialect(dialect: DialectMapping, tree: LineDict, *, report: Report) -> None:
    check_dialect(dialect, tree, report)
