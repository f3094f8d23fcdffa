"""`turnout record` as a command: choose the cases, refuse to overwrite, record, write, report."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from engine.record.backend_file import backend_yaml
from engine.record.cases import PADDING, Case, case_for, expected_status
from engine.record.fixtures import CREDENTIAL_NAME, Scrubber, answer_fixture, request_record
from engine.record.scenarios import load_scenarios
from engine.record.session import WRONG_KEY, Backend, Outcome, record_cases

__all__ = ["RecordOptions", "default_out", "run_record"]

_CHECKOUT_FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "golden" / "fixtures"
_KINDS = ("response.json", "stream.txt", "error.json")
_FILE_NAME = re.compile(r"^[\w-][\w.-]{0,99}$")  # no separators, no leading dot: it stays inside --out


@dataclass
class RecordOptions:
    model: str  # LiteLLM-style: <provider>/<model>
    base_url: str
    api_key_env: str
    mappings_dir: Path
    name: str | None = None  # the fixture folder's provider name (default: the model's prefix)
    out: Path | None = None
    force: bool = False
    scenarios: list[str] = field(default_factory=list)  # empty: every golden scenario
    request: str | None = None  # one exchange instead: JSON text, or @FILE
    save_as: str = "exchange"
    route: str = "/v1/chat/completions"
    params: dict[str, Any] = field(default_factory=dict)
    timeout: float = 120.0
    image_url: str | None = None
    context_chars: int = 4_000_000


def default_out(name: str) -> Path | None:
    """tests/golden/fixtures/<name>/ in a checkout; None when Turnout runs from an installed wheel."""
    return _CHECKOUT_FIXTURES / name if _CHECKOUT_FIXTURES.is_dir() else None


def run_record(options: RecordOptions) -> int:
    """Record, write the fixtures and print what was done; the exit status."""
    name = options.name or options.model.partition("/")[0]
    for what, value in (("--name", name), ("--save-as", options.save_as)):
        if not _FILE_NAME.match(value):
            return _fail(f"{what} must be a plain file name (letters, digits, _ . -), not {value!r}")
    if not options.route.startswith("/"):
        return _fail(
            f"--route must be a path on the gateway, such as /v1/chat/completions, not {options.route!r}"
        )
    base = urlsplit(options.base_url)
    if base.scheme not in ("http", "https") or not base.hostname:
        return _fail(f"--base-url must be an http(s) URL, not {options.base_url!r}")
    out = options.out or default_out(name)
    if out is None:
        return _fail("outside a checkout there is no tests/golden/fixtures: pass --out DIR")
    planned = _plan(options)
    if isinstance(planned, str):
        return _fail(planned)
    cases, unsent = planned
    names = [case.name for case in cases] + list(unsent)
    existing = _existing(out, names, scenario_mode=options.request is None)
    if existing and not options.force:
        listed = ", ".join(str(path) for path in existing[:5]) + (" ..." if len(existing) > 5 else "")
        return _fail(f"{listed} already exist; pass --force to replace them")
    api_key = os.environ.get(options.api_key_env) or None
    if api_key is None:
        print(f"turnout: {options.api_key_env} is not set: recording without an api key", file=sys.stderr)
    backend = Backend(options.model, options.base_url, api_key, options.params)
    recording = asyncio.run(
        record_cases(
            backend,
            cases,
            mappings_dir=options.mappings_dir,
            timeout=options.timeout,
            image_url=options.image_url,
        )
    )
    secrets = [v for k, v in options.params.items() if isinstance(v, str) and CREDENTIAL_NAME.search(k)]
    scrub = Scrubber([api_key or "", WRONG_KEY, *secrets], recording.proxy_url)
    return _write(out, options, backend, recording.outcomes, unsent, existing, scrub)


def _plan(options: RecordOptions) -> tuple[list[Case], dict[str, str]] | str:
    """The cases to send, and the scenarios not sent with why; or the usage error."""
    if options.request is not None:
        request = _read_request(options.request)
        if isinstance(request, str):
            return request
        return [Case(options.save_as, options.route, request)], {}
    scenarios = load_scenarios()
    known = {s.name: s for s in scenarios}
    unknown = [n for n in options.scenarios if n not in known]
    if unknown:
        return f"no golden scenario named {', '.join(unknown)}; known: {', '.join(known)}"
    chosen = [known[n] for n in dict.fromkeys(options.scenarios)] if options.scenarios else scenarios
    cases, unsent = [], {}
    for scenario in chosen:
        case = case_for(scenario, options.context_chars)
        if isinstance(case, str):
            unsent[scenario.name] = case
        else:
            cases.append(case)
    return cases, unsent


def _read_request(given: str) -> dict[str, Any] | str:
    try:
        text = Path(given[1:]).read_text() if given.startswith("@") else given
        request = json.loads(text)
    except (OSError, ValueError) as exc:
        return f"--request: {exc}"
    if not isinstance(request, dict):
        return "--request must be a JSON object (the body a client would send)"
    return request


def _existing(out: Path, names: list[str], *, scenario_mode: bool) -> list[Path]:
    found = [out / "backend.yaml"] if scenario_mode and (out / "backend.yaml").exists() else []
    for name in names:
        found += [out / f"{name}.{kind}" for kind in _KINDS if (out / f"{name}.{kind}").exists()]
        if (out / "recorded" / f"{name}.request.json").exists():
            found.append(out / "recorded" / f"{name}.request.json")
    return found


def _write(
    out: Path,
    options: RecordOptions,
    backend: Backend,
    outcomes: list[Outcome],
    unsent: dict[str, str],
    existing: list[Path],
    scrub: Scrubber,
) -> int:
    for path in existing:  # --force: a scenario's fixture may change kind (an answer, now an error)
        path.unlink()
    (out / "recorded").mkdir(parents=True, exist_ok=True)
    not_recorded = {n: f"not recorded: {why}" for n, why in unsent.items()}
    refused: dict[str, str] = {}
    written = 0
    for outcome in outcomes:
        why = _unusable(outcome, scrub, exchange_mode=options.request is not None)
        if why and not outcome.exchanges and outcome.status == 400:  # the mapping refuses it: a finding
            refused[outcome.case.name] = why
            print(f"{outcome.case.name}: refused: {why}")
            continue
        if why:
            not_recorded[outcome.case.name] = f"not recorded: {why}"
            print(f"{outcome.case.name}: not recorded: {why}")
            continue
        exchange = outcome.exchanges[-1]
        stream = bool(outcome.case.request.get("stream"))
        fixture = answer_fixture(outcome.case.name, exchange, scrub, stream=stream)
        (out / fixture.file).write_text(fixture.content)
        shorten = PADDING * (options.context_chars // len(PADDING) + 1) if outcome.case.padded else None
        request = request_record(exchange, scrub, shorten=shorten)
        (out / "recorded" / f"{outcome.case.name}.request.json").write_text(request)
        written += 1
        print(f"{outcome.case.name}: {fixture.file} (HTTP {exchange.status})")
    for scenario, why in unsent.items():
        print(f"{scenario}: {why}")
    if options.request is None or not (out / "backend.yaml").exists():
        (out / "backend.yaml").write_text(
            backend_yaml(backend, outcomes, not_recorded, refused, options.params)
        )
    print(
        f"wrote {written} fixtures to {out} (and backend.yaml); "
        f"{len(refused)} refused by Turnout, {len(not_recorded)} not recorded"
    )
    return 0 if written else 1


def _unusable(outcome: Outcome, scrub: Scrubber, *, exchange_mode: bool) -> str | None:
    """Why this outcome makes no fixture for its scenario, or None when it does."""
    if not outcome.exchanges:
        answer = scrub.text(outcome.answer)[:200]
        return f"Turnout answered HTTP {outcome.status} before any upstream call: {answer}"
    exchange = outcome.exchanges[-1]
    if exchange.failure is not None:
        return f"the backend could not be reached or broke off ({scrub.text(exchange.failure)[:200]})"
    low, high = expected_status(outcome.case.name)
    if exchange_mode or low <= exchange.status <= high:
        return None
    wanted = str(low) if low == high else f"{low}-{high}"
    answer = scrub.text(exchange.answer.decode("utf-8", "replace"))[:200]
    return f"the backend answered HTTP {exchange.status}, not {wanted}: {answer}"


def _fail(message: str) -> int:
    print(f"turnout record: {message}", file=sys.stderr)
    return 2
