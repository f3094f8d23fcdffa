"""`python -m bench.admission`: what the limiter costs a limited key on Redis, without HTTP around it.

Each request is `Limiter.admit` (with a budget reservation), the rate-limit headers, and
`Admission.release`, against `RedisCounters` at --redis-url under a random prefix, with the key the
keys bench uses (rpm, tpm, parallel and budget limits far above the load). It measures, for
concurrency 1 and 32 (workers in one event loop, uvloop): requests/s, the process's CPU per request
(Redis's own CPU excluded) and, at concurrency 1, the p50 time of one admission.

    .venv/bin/python -m bench.admission                      # this checkout
    .venv/bin/python -m bench.admission --baseline f64f5de   # and the code at f64f5de, alternating

Each measurement runs in its own process (pinned with taskset to --cpus), the code at REV from a
temporary git worktree; rounds alternate the two so that a machine's drift hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379"


async def measure(redis_url: str, concurrency: int, seconds: float, gap: float = 0.0) -> dict[str, Any]:
    """One measurement in this process, with the `engine` found on sys.path."""
    from engine.keys.ring import VirtualKey
    from engine.limits.admission import Limiter
    from engine.limits.redis_counters import RedisCounters

    prefix = f"bench-admission-{secrets.token_hex(4)}:"
    key = VirtualKey(
        id=1,
        key_hash="h",
        key_prefix="sk-bench",
        key_alias=None,
        models=frozenset(),
        privacy=None,
        expires_at=None,
        max_budget=Decimal(1_000_000),
        budget_duration=None,
        spend=Decimal(0),
        budget_reset_at=None,
        rpm_limit=10_000_000,
        tpm_limit=1_000_000_000,
        max_parallel_requests=10_000,
    )
    limiter = Limiter(RedisCounters(redis_url, prefix))
    done = 0
    admit_times: list[float] = []
    stop = False

    async def worker(number: int) -> None:
        nonlocal done
        while not stop:
            started = time.perf_counter()
            admission = await limiter.admit(key, f"{number}-{done}", Decimal("0.001"))
            admit_times.append(time.perf_counter() - started)
            assert admission is not None, "the counters were unreachable"
            admission.headers()
            admission.release(20, Decimal("0.0001"))
            done += 1
            await asyncio.sleep(gap)  # 0: an answer is written between admission and release

    warm = [asyncio.ensure_future(worker(n)) for n in range(concurrency)]
    await asyncio.sleep(min(1.0, seconds / 4))
    stop = True
    await asyncio.gather(*warm)
    stop, done, admit_times = False, 0, []
    cpu, wall = time.process_time(), time.perf_counter()
    workers = [asyncio.ensure_future(worker(n)) for n in range(concurrency)]
    await asyncio.sleep(seconds)
    stop = True
    await asyncio.gather(*workers)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await limiter.close()
    _forget(redis_url, prefix)
    return {
        "concurrency": concurrency,
        "requests": done,
        "rps": done / wall,
        "cpu_us_per_request": cpu / done * 1e6,
        "admit_p50_us": statistics.median(admit_times) * 1e6,
    }


def _forget(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def run_one(tree: Path, args: argparse.Namespace, concurrency: int) -> dict[str, Any]:
    # run as a file, so that `engine` comes from PYTHONPATH (`tree`), not from this checkout
    argv = [sys.executable, str(Path(__file__).resolve()), "--measure", str(concurrency)]
    argv += ["--redis-url", args.redis_url, "--duration", str(args.duration), "--gap-ms", str(args.gap_ms)]
    if shutil.which("taskset") and args.cpus:
        argv = ["taskset", "-c", args.cpus, *argv]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    if done.returncode != 0:
        sys.exit(f"bench.admission: the measurement failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", metavar="REV", help="also measure the code at REV")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per measurement (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, medians reported (default 3)")
    parser.add_argument("--redis-url", default=REDIS_URL, help=f"Redis to count in ({REDIS_URL})")
    parser.add_argument("--cpus", default="0", help="taskset CPU list of the measuring process (default 0)")
    parser.add_argument(
        "--gap-ms",
        type=float,
        default=0.0,
        help="idle ms after each release, as a client's turn between requests (default 0)",
    )
    parser.add_argument("--measure", type=int, metavar="C", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        import uvloop

        gap = args.gap_ms / 1000
        print(json.dumps(uvloop.run(measure(args.redis_url, args.measure, args.duration, gap))))
        return 0
    with tempfile.TemporaryDirectory(prefix="turnout-bench-admission-") as tmp:
        trees = {"this checkout": REPO}
        if args.baseline:
            where = Path(tmp) / "baseline"
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "add", "--detach", str(where), args.baseline],
                check=True,
                capture_output=True,
            )
            trees[args.baseline] = where
        results: dict[tuple[str, int], list[dict[str, Any]]] = {}
        try:
            for _ in range(args.rounds):
                for concurrency in (1, 32):
                    for name, tree in trees.items():
                        result = run_one(tree, args, concurrency)
                        results.setdefault((name, concurrency), []).append(result)
                        print(
                            f"  {name:16} c={concurrency:<3} {json.dumps(result)}",
                            file=sys.stderr,
                            flush=True,
                        )
        finally:
            if args.baseline:
                subprocess.run(
                    ["git", "-C", str(REPO), "worktree", "remove", "--force", str(trees[args.baseline])]
                )
    print("| code | c | requests/s | CPU µs/request | admit p50 µs |\n|---|---:|---:|---:|---:|")
    for (name, concurrency), runs in results.items():
        rps = statistics.median(r["rps"] for r in runs)
        cpu = statistics.median(r["cpu_us_per_request"] for r in runs)
        p50 = statistics.median(r["admit_p50_us"] for r in runs)
        print(f"| {name} | {concurrency} | {rps:,.0f} | {cpu:.1f} | {p50:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
