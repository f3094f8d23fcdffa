"""Checking one compiled section: its Jinja-looking text, its calls, and its lookups against what each
variable is known to hold."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from engine.mapping.checks.calls import call_problem
from engine.mapping.checks.diagnostics import Report, Severity
from engine.mapping.checks.reading import INDEX, calls, lookups
from engine.mapping.compiler import CompiledSection, Site
from engine.mapping.constructs import did_you_mean
from engine.mapping.expressions import ExpressionError, parse

__all__ = ["Keys", "Reads", "Vocabulary", "check_reads", "check_section"]


@dataclass(frozen=True, slots=True)
class Keys:
    """What a variable's top-level keys are, as far as the checker can know."""

    known: frozenset[str]
    # another key: "error" (it is certainly absent), "warning", or "hint" (a warning only when a known
    # key is close enough to suggest: the variable may well hold keys nobody listed)
    unknown: Literal["error", "warning", "hint"]
    what: str  # how a message names them, e.g. "a chat parameter this operation lets through"
    absent: Mapping[str, str] = field(default_factory=dict)  # known keys that never arrive here: why


Vocabulary = Mapping[str, Keys]  # by variable name; variables not in it are not checked
_OPEN_CUTOFF = 0.8  # where a key may well be meant, suggest only what is very close
Reads = dict[tuple[str, ...], list[tuple[str, int]]]  # (group, root, *path) -> where it is read


def check_section(
    section: CompiledSection,
    vocabulary: Vocabulary,
    report: Report,
    reads: Reads | None = None,
    group: str = "",
    owner: tuple[str, str] | None = None,
) -> None:
    """Report what is wrong in `section`. With `reads`, record each lookup of a variable without a
    vocabulary under `group`, for `check_reads` to compare once the whole mapping is read."""
    for site in section.sites:
        if site.kind == "text":
            report.add(
                site.file,
                site.line,
                "error",
                "Jinja statements ({% %}) and comments ({# #}) are not evaluated in a mapping: this text "
                "would be sent as written (use an expression, $if or $for)",
            )
            continue
        try:
            expr = parse(site.source)
        except ExpressionError:
            continue  # the compiler has refused it already
        for call in calls(expr):
            problem = call_problem(call)
            if problem is not None:
                report.add(site.file, site.line, "error", problem)
        for lookup in lookups(expr):
            if lookup.root in site.local_names or lookup.root not in section.variables:
                continue
            keys = vocabulary.get(lookup.root)
            if keys is None:
                if reads is not None:
                    reads.setdefault((group, lookup.root, *lookup.path), []).append((site.file, site.line))
                continue
            # a section inherited through `extends` is read against the provider's own params: say whose
            whose = f" (in {owner[0]}, which extends this file)" if owner and site.file != owner[1] else ""
            _check_key(site, lookup.root, lookup.path[0], keys, report, whose)


def _check_key(site: Site, root: str, key: str, keys: Keys, report: Report, whose: str) -> None:
    if key == INDEX:
        return
    if site.fragment is not None:
        # a fragment serves every section that uses it (one options table for chat, completions and
        # embeddings): a key this section never has may be another's, so only a near miss is said
        if key in keys.absent or key in keys.known:
            return
        hint = did_you_mean(key, keys.known, _OPEN_CUTOFF)
        if hint:
            report.add(
                site.file, site.line, "warning", f"{root}.{key}: {key!r} is not {keys.what}{hint}{whose}"
            )
        return
    if key in keys.absent:
        why = keys.absent[key]
        report.add(site.file, site.line, "warning", f"{root}.{key} is always absent here: {why}{whose}")
        return
    if key in keys.known:
        return
    hint = did_you_mean(key, keys.known, _OPEN_CUTOFF if keys.unknown == "hint" else 0.6)
    if keys.unknown != "hint" or hint:
        severity: Severity = "error" if keys.unknown == "error" else "warning"
        report.add(site.file, site.line, severity, f"{root}.{key}: {key!r} is not {keys.what}{hint}{whose}")


def check_reads(reads: Reads, report: Report) -> None:
    """Lookups into open-ended payloads (upstream answers and events): a key read at one place only,
    close to a sibling key the mapping reads at several, is most likely a misspelling of it."""
    counts: dict[tuple[str, ...], int] = {}
    for path, places in reads.items():
        for end in range(3, len(path) + 1):
            counts[path[:end]] = counts.get(path[:end], 0) + len(places)
    siblings: dict[tuple[str, ...], set[str]] = {}
    for prefix in counts:
        siblings.setdefault(prefix[:-1], set()).add(prefix[-1])
    for path, places in reads.items():
        for end in range(3, len(path) + 1):
            step, parent = path[end - 1], path[: end - 1]
            if step == INDEX or counts[path[:end]] > 1:
                continue
            common = [s for s in siblings[parent] if s != step and s != INDEX and counts[(*parent, s)] >= 2]
            hint = did_you_mean(step, common, _OPEN_CUTOFF)
            if hint:
                shown = path[1] + "".join("[…]" if s == INDEX else f".{s}" for s in path[2:end])
                for file, line in places:
                    report.add(
                        file, line, "warning", f"{shown}: {step!r} is read only here{hint} (read elsewhere)"
                    )
                break
