"""`turnout mappings check | show | eval`: what each prints, and its exit status."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["run_check", "run_explore"]


def run_check(folders: tuple[Path, ...]) -> int:
    """Every error and warning as file:line; exit 1 on errors (warnings alone pass)."""
    from engine.mapping.checks import check_mappings
    from engine.mapping.folders import mapping_files

    report = check_mappings(folders)
    for line in report.lines():
        print(line, file=sys.stderr)
    providers = len(mapping_files(folders, "providers"))
    dialects = len(mapping_files(folders, "dialects"))
    where = ", ".join(str(folder) for folder in folders)
    counts = f"{report.errors} error(s), {report.warnings} warning(s)"
    verdict = "all valid" if not report.errors and not report.warnings else counts
    if not report.errors and report.warnings:
        verdict = f"valid, with {report.warnings} warning(s)"
    print(f"{providers} provider mappings and {dialects} dialect mappings in {where}: {verdict}")
    return 1 if report.errors else 0


def run_explore(args: argparse.Namespace, folders: tuple[Path, ...]) -> int:
    """`mappings show` / `mappings eval`: the result on stdout, a failure as one line on stderr."""
    from engine.mapping.explore import (
        ExploreError,
        evaluate_section,
        find_section,
        read_input,
        read_stream,
        show_section,
        to_json,
    )

    try:
        found = find_section(folders, args.provider, args.operation, args.section)
        if args.mappings_command == "show":
            print(show_section(found, python=args.python), end="")
        else:
            if args.input is None and args.stream is None:
                raise ExploreError("eval needs --input FILE.json (or, for a stream, --stream FILE)")
            stream = read_stream(args.stream) if args.stream is not None else None
            print(to_json(evaluate_section(found, read_input(args.input), stream)))
    except ExploreError as exc:
        print(f"turnout: {exc}", file=sys.stderr)
        return 1
    return 0
