"""Stream framing speed: one huge event without a boundary, and the golden streams' ordinary events.

    .venv/bin/python -m bench.framing                   # this checkout
    .venv/bin/python -m bench.framing --baseline main   # and engine/mapping/framing.py at `main`

The huge event is fed in 64 KB pieces, as the network delivers it (before the fix every piece copied
all that came before it). The golden streams (tests/golden/fixtures/*/*.stream.txt) are fed one event
per piece, as upstreams send them, and timed per piece: the cost every streamed answer pays.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "golden" / "fixtures"
PIECE = 64 * 1024


def load_framing(baseline: str | None, tmp: Path) -> ModuleType:
    """engine/mapping/framing.py of this checkout, or of `baseline` (read with git show)."""
    path = ROOT / "engine" / "mapping" / "framing.py"
    if baseline:
        text = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{baseline}:engine/mapping/framing.py"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        path = tmp / f"framing_{baseline.replace('/', '_')}.py"
        path.write_text(text)
    spec = importlib.util.spec_from_file_location(f"framing_{abs(hash(str(path)))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def huge_event(framing: ModuleType, kind: str, megabytes: int) -> float:
    """Seconds to feed one event of `megabytes` MB in 64 KB pieces and get it back."""
    head = b"data: " if kind == "sse" else b""
    payload = head + b'{"x": "' + b"a" * (megabytes * 1_000_000) + b'"}'
    pieces = [payload[i : i + PIECE] for i in range(0, len(payload), PIECE)]
    pieces.append(b"\n\n" if kind == "sse" else b"\n")
    decoder = framing.decoder_for(kind)
    started = time.perf_counter()
    events = [event for piece in pieces for event in decoder.feed(piece)]
    seconds = time.perf_counter() - started
    assert len(events) == 1 and len(events[0].data) == len(payload) - len(head)
    return seconds


def golden_streams() -> list[tuple[str, list[bytes]]]:
    streams = []
    for path in sorted(FIXTURES.glob("*/*.stream.txt")):
        text = path.read_bytes()
        kind = "ndjson" if path.parent.name == "ollama" else "sse"
        if kind == "ndjson":
            pieces = [line + b"\n" for line in text.splitlines() if line.strip()]
        else:
            events = text.replace(b"\r\n", b"\n").split(b"\n\n")
            pieces = [event + b"\n\n" for event in events if event.strip()]
        streams.append((kind, pieces))
    return streams


def per_piece(framing: ModuleType, streams: list[tuple[str, list[bytes]]]) -> float:
    """Microseconds per piece over every golden stream (fed 20 times)."""
    count = sum(len(pieces) for _kind, pieces in streams)
    started = time.perf_counter()
    for _ in range(20):
        for kind, pieces in streams:
            decoder = framing.decoder_for(kind)
            for piece in pieces:
                for _event in decoder.feed(piece):
                    pass
            for _event in decoder.close():
                pass
    return (time.perf_counter() - started) / (20 * count) * 1e6


def compare(framings: dict[str, ModuleType], megabytes: int, rounds: int) -> None:
    """The golden streams timed in alternating rounds (the minimum: the machine's noise only adds),
    then the huge event once each."""
    streams = golden_streams()
    timings: dict[str, list[float]] = {label: [] for label in framings}
    for _ in range(rounds):
        for label, framing in framings.items():
            timings[label].append(per_piece(framing, streams))
    for label, framing in framings.items():
        result = {
            "golden_us_per_piece_min": round(min(timings[label]), 3),
            "golden_us_per_piece_median": round(statistics.median(timings[label]), 3),
            "golden_pieces": sum(len(p) for _k, p in streams),
            f"sse_{megabytes}MB_event_s": round(huge_event(framing, "sse", megabytes), 3),
            f"ndjson_{megabytes}MB_line_s": round(huge_event(framing, "ndjson", megabytes), 3),
        }
        print(f"{label}: {result}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--baseline", metavar="REV", help="also time engine/mapping/framing.py at REV")
    parser.add_argument("--megabytes", type=int, default=50, help="size of the huge event (default 50)")
    parser.add_argument("--rounds", type=int, default=15, help="timings of the golden streams")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="turnout-framing-") as name:
        framings = {"this checkout": load_framing(None, Path(name))}
        if args.baseline:
            framings = {args.baseline: load_framing(args.baseline, Path(name)), **framings}
        compare(framings, args.megabytes, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
