"""Sample the gateway with py-spy while it is under load, and summarise where its time goes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

__all__ = ["py_spy", "record", "top_frames"]


def py_spy() -> str | None:
    """The py-spy executable: beside this interpreter (a venv), or on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record(executable: str, pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """Start py-spy recording collapsed stacks (one `frame;frame;... count` line per stack) into out."""
    argv = [
        executable,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(int(seconds)),
        "--rate",
        "250",
        "--format",
        "raw",
        "--output",
        str(out),
        "--nonblocking",
    ]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _short(frame: str) -> str:
    """`function (/long/path/pkg/module.py:line)` -> `function (pkg/module.py:line)`."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})" if where else name


def _package(frame: str) -> str:
    """The package a short frame belongs to: `litestar`, `engine`, `asyncio`, ... (`<module>` stays)."""
    where = frame.rpartition(" (")[2].rstrip(")")
    head = where.split("/", 1)[0] if "/" in where else where.split(".py", 1)[0]
    return head or frame


def top_frames(collapsed: Path, limit: int = 15) -> dict[str, list[tuple[str, float]]]:
    """Where the samples went, as % of all samples: self time per frame and per package, inclusive
    time per engine frame, and the share spent in a thread other than the event loop's."""
    self_time: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    engine: Counter[str] = Counter()
    total = threaded = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        threaded += count if frames[0].startswith("Thread._bootstrap") else 0
        self_time[frames[-1]] += count
        packages[_package(frames[-1])] += count
        for frame in {f for f in frames if f.rpartition(" (")[2].startswith("engine/") and "cli.py" not in f}:
            engine[frame] += count
    if not total:
        return {"self": [], "packages": [], "engine_inclusive": [], "threads": []}

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(f, round(100 * n / total, 1)) for f, n in counter.most_common(limit)]

    return {
        "self": share(self_time),
        "packages": share(packages),
        "engine_inclusive": share(engine),
        "threads": [("samples in worker threads (not the event loop)", round(100 * threaded / total, 1))],
    }
