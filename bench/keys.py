"""`make bench-keys`: what authentication, per-key limits and usage recording add to a request.

Starts bench/mock_upstream.py once, then, one after another, a fresh `turnout serve` per setup:

    sqlite, master key                     TURNOUT_DATABASE_URL=sqlite+aiosqlite:///<tmp>/turnout.db
    sqlite, virtual key + limits           the same, loaded with a key from POST /key/generate
    postgres+redis, master key             --pg-url, --redis-url, a random TURNOUT_REDIS_PREFIX
    postgres+redis, virtual key + limits   the same, loaded with a key from POST /key/generate
    <REV>, sqlite, master key              with --baseline REV: setup 1 serving the code at REV
                                           (with --baseline-all: every setup, each at REV too)

For each it measures the OpenAI pass-through alias (`gpt-3.5-turbo`, non-streaming): direct-to-mock
c=1 p50 as the reference, through Turnout c=1 (p50, p99) and c=32 (requests/s, gateway CPU ms per
request); then the gateway's RSS, and the request_log rows the run left against the requests sent.
Prints a markdown table and writes JSON to bench/results/keys-<time>.json.

    .venv/bin/python -m bench.keys                    # 6 s per measurement
    .venv/bin/python -m bench.keys --quick            # 1.5 s per measurement
    .venv/bin/python -m bench.keys --baseline ceb3b3d # plus the code at ceb3b3d, same run
    .venv/bin/python -m bench.keys --store postgres --baseline ceb3b3d --baseline-all
                                                      # the Redis setups, each also at ceb3b3d
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.procs import Pinning, Process, free_port, tree_rss_mb, wait_healthy
from bench.run import API_KEY, DEPLOYMENTS, OPENAI, bench_config, start_mock, turnout_executable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379"
# limits far above what the load reaches, so every one is checked and counted but none refuses
KEY_LIMITS = {
    "rpm_limit": 10_000_000,
    "tpm_limit": 1_000_000_000,
    "max_parallel_requests": 10_000,
    "max_budget": 1_000_000,
}
# settings the caller's environment must not leak into a setup
CLEARED_ENV = ("TURNOUT_DATABASE_URL", "TURNOUT_REDIS_URL", "TURNOUT_REDIS_PREFIX", "TURNOUT_MASTER_KEY")


@dataclass(frozen=True)
class Setup:
    name: str
    store: str  # "sqlite" or "postgres" (with Redis)
    virtual_key: bool = False
    baseline: str = ""  # a git revision, served from a worktree instead of this checkout

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.name).strip("-")


SETUPS = (
    Setup("sqlite, master key", "sqlite"),
    Setup("sqlite, virtual key + limits", "sqlite", virtual_key=True),
    Setup("postgres+redis, master key", "postgres"),
    Setup("postgres+redis, virtual key + limits", "postgres", virtual_key=True),
)


@dataclass
class Outcome:
    """What one setup measured."""

    setup: Setup
    start_s: float = 0.0
    loads: dict[str, dict[str, Any]] = field(default_factory=dict)  # direct_c1, turnout_c1, turnout_c32
    sent: int = 0  # every request sent to the gateway's chat route, warm-ups included
    rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    rows: int | None = None  # request_log rows this setup's run left; None: no request_log
    rows_by_status: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    error: str = ""  # why the setup stopped short (its gateway did not start, a load client failed)

    def record(self) -> dict[str, Any]:
        return {
            "setup": self.setup.name,
            "store": self.setup.store,
            "virtual_key": self.setup.virtual_key,
            "baseline": self.setup.baseline or None,
            "start_s": round(self.start_s, 2),
            "requests_sent": self.sent,
            "rows_logged": self.rows,
            "rows_by_status": self.rows_by_status,
            "rss_mb": round(self.rss_mb, 1),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "failures": self.failures,
            "error": self.error or None,
            "loads": self.loads,
        }


class Runner:
    def __init__(self, args: argparse.Namespace, pinning: Pinning, tmp: Path, mock_url: str) -> None:
        self.args = args
        self.pinning = pinning
        self.tmp = tmp
        self.mock_url = mock_url
        timings: tuple[float, float, float] = (1.5, 0.3, 0.5) if args.quick else (args.duration, 1.0, 2.0)
        self.duration, self.warmup, self.gateway_warmup = timings

    # -- load ---------------------------------------------------------------------------------------

    def load(
        self, outcome: Outcome, label: str, argv: list[str], duration: float, warmup: float
    ) -> dict[str, Any]:
        """bench/load.py pinned beside the mock; its JSON result. Failures are noted on the outcome."""
        argv = [*argv, "--duration", str(duration), "--warmup", str(warmup)]
        command = self.pinning.wrap(self.pinning.load_cpus, [sys.executable, str(HERE / "load.py"), *argv])
        done = subprocess.run(command, capture_output=True, text=True, timeout=duration + warmup + 120)
        lines = done.stdout.strip().splitlines()
        if not lines:
            sys.exit(f"bench: load client failed for {outcome.setup.name} {label}:\n{done.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(lines[-1])
        if result["failures"] or not result["requests"]:
            note = f"{label}: {result['failures']} failures; {result.get('first_failure', '')}"
            outcome.failures.append(note)
            print(f"  ! {outcome.setup.name} {note}", file=sys.stderr)
        return result

    def direct(self, outcome: Outcome) -> dict[str, Any]:
        argv = [
            "--url",
            self.mock_url + OPENAI.direct_path,
            "--model",
            OPENAI.direct_model,
            "--concurrency",
            "1",
        ]
        result = self.load(outcome, "direct c=1", argv, self.duration, self.warmup)
        _progress(outcome.setup, "direct  c=1 ", result)
        return result

    def through(
        self, outcome: Outcome, url: str, key: str, gateway: Process, concurrency: int, duration: float
    ) -> dict[str, Any]:
        """A load on the gateway with no unmeasured phase, so every request sent is counted."""
        argv = [
            "--url",
            url + "/v1/chat/completions",
            "--model",
            OPENAI.alias,
            "--api-key",
            key,
            "--concurrency",
            str(concurrency),
            "--cpu-pid",
            str(gateway.pid),
        ]
        result = self.load(outcome, f"through c={concurrency}", argv, duration, 0)
        outcome.sent += result["requests"] + result["failures"]
        return result

    # -- one setup ----------------------------------------------------------------------------------

    def gateway_argv(self, setup: Setup, config: Path, port: int, worktree: Path | None) -> list[str]:
        where = ["--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
        if worktree is not None:
            return [sys.executable, "-m", "engine", "serve", *where]
        return [turnout_executable(self.args.turnout), "serve", *where]

    def gateway_env(self, setup: Setup, folder: Path, worktree: Path | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
        if setup.store == "postgres":
            env["TURNOUT_DATABASE_URL"] = self.args.pg_url
            env["TURNOUT_REDIS_URL"] = self.args.redis_url
            env["TURNOUT_REDIS_PREFIX"] = f"bench-{secrets.token_hex(4)}:"
        else:
            env["TURNOUT_DATABASE_URL"] = f"sqlite+aiosqlite:///{folder / 'turnout.db'}"
        if worktree is not None:
            env["PYTHONPATH"] = str(worktree)
        return env

    def run(self, setup: Setup, worktree: Path | None = None) -> Outcome:
        """Measure one setup; when it stops short (SystemExit), the outcome says why and the run goes on."""
        outcome = Outcome(setup)
        try:
            self._measure(outcome, worktree)
        except SystemExit as exc:
            outcome.error = str(exc.code)
            print(f"  ! {setup.name} stopped: {outcome.error}", file=sys.stderr, flush=True)
        return outcome

    def _measure(self, outcome: Outcome, worktree: Path | None) -> None:
        setup = outcome.setup
        folder = self.tmp / setup.slug
        folder.mkdir()
        config = folder / "config.yaml"
        others = {d.alias for d in DEPLOYMENTS if d is not OPENAI}
        config.write_text(bench_config(self.mock_url, others))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = self.gateway_env(setup, folder, worktree)
        argv = self.pinning.wrap(self.pinning.gateway_cpus, self.gateway_argv(setup, config, port, worktree))
        print(f"bench: {setup.name}", file=sys.stderr, flush=True)
        started_at = datetime.now(UTC)
        gateway = Process(argv, folder / "turnout.log", cwd=folder, env=env)
        key_prefix = ""
        try:
            outcome.start_s = wait_healthy(url + "/health", gateway)
            key = API_KEY
            if setup.virtual_key:
                created = admin(url, "/key/generate", KEY_LIMITS)
                key, key_prefix = created["key"], created["key_name"].removesuffix("...")
            self.through(outcome, url, key, gateway, 4, self.gateway_warmup)  # pools, caches, imports
            outcome.loads["direct_c1"] = self.direct(outcome)
            self.through(outcome, url, key, gateway, 1, self.warmup)
            outcome.loads["turnout_c1"] = result = self.through(outcome, url, key, gateway, 1, self.duration)
            _progress(setup, "through c=1 ", result)
            self.through(outcome, url, key, gateway, 32, self.warmup)
            outcome.loads["turnout_c32"] = result = self.through(
                outcome, url, key, gateway, 32, self.duration
            )
            _progress(setup, "through c=32", result)
            outcome.rss_mb, outcome.peak_rss_mb = tree_rss_mb(gateway.pid)
            if setup.virtual_key and setup.store == "postgres":
                admin(url, "/key/delete", {"keys": [key]})  # revoked: the shared database keeps no live key
        finally:
            gateway.stop()  # SIGTERM: the usage recorder writes what it still holds
            if setup.store == "postgres":
                forget_redis(self.args.redis_url, env["TURNOUT_REDIS_PREFIX"])
        if setup.store == "postgres":
            outcome.rows, outcome.rows_by_status = asyncio.run(
                pg_rows(self.args.pg_url, started_at, datetime.now(UTC), key_prefix)
            )
        else:
            outcome.rows, outcome.rows_by_status = sqlite_rows(folder / "turnout.db")


def _progress(setup: Setup, what: str, result: dict[str, Any]) -> None:
    latency = result.get("latency_ms") or {}
    cpu = f"  cpu/req {result['cpu_ms_per_request']:.3f} ms" if "cpu_ms_per_request" in result else ""
    print(
        f"  {setup.name:40} {what} {result['rps']:>9,.0f} req/s  p50 {latency.get('p50', 0):.3f} ms  "
        f"p99 {latency.get('p99', 0):.3f} ms{cpu}",
        file=sys.stderr,
        flush=True,
    )


# -- the gateway's admin API and stores --------------------------------------------------------------


def admin(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST an admin route with the master key; exits with the error body when it does not answer 200."""
    request = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except urllib.error.HTTPError as exc:
        sys.exit(f"bench: POST {path} answered {exc.code}: {exc.read().decode(errors='replace')}")


_STATUS_SQL = (
    "SELECT status, error_type, error_code, count(*) FROM request_log {where} GROUP BY 1, 2, 3 ORDER BY 1"
)


def _by_status(found: list[Any]) -> tuple[int, list[dict[str, Any]]]:
    groups = [{"status": s, "error_type": t, "error_code": c, "rows": n} for s, t, c, n in found]
    return sum(g["rows"] for g in groups), groups


def sqlite_rows(path: Path) -> tuple[int | None, list[dict[str, Any]]]:
    """Every request_log row of a setup's own SQLite file; None when the table does not exist."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        if not db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'request_log'"
        ).fetchone():
            return None, []
        return _by_status(db.execute(_STATUS_SQL.format(where="")).fetchall())


async def pg_rows(
    url: str, start: datetime, end: datetime, key_prefix: str
) -> tuple[int, list[dict[str, Any]]]:
    """request_log rows created while the setup ran, for the bench alias and the key it used (others may
    share the database)."""
    import asyncpg

    where = "WHERE created_at >= $1 AND created_at <= $2 AND alias = $3 AND "
    if key_prefix:
        where += "key_id IN (SELECT id FROM api_keys WHERE key_prefix = $4)"
        params: tuple[Any, ...] = (start, end, OPENAI.alias, key_prefix)
    else:
        where += "key_id IS NULL"
        params = (start, end, OPENAI.alias)
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        found = await conn.fetch(_STATUS_SQL.format(where=where), *params)
    finally:
        await conn.close()
    return _by_status([tuple(row) for row in found])


def forget_redis(url: str, prefix: str) -> None:
    """Delete the counters this setup left under its own random prefix (budget counters never expire)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def reachable(pg_url: str, redis_url: str) -> str:
    """'' when PostgreSQL and Redis answer, else why not."""
    import asyncpg
    import redis

    async def pg() -> None:
        conn = await asyncpg.connect(pg_url.replace("+asyncpg", ""), timeout=5)
        await conn.close()

    try:
        asyncio.run(pg())
    except Exception as exc:
        return f"PostgreSQL at {pg_url}: {exc!r}"
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        client.ping()
    except Exception as exc:
        return f"Redis at {redis_url}: {exc!r}"
    finally:
        client.close()
    return ""


# -- the baseline worktree ----------------------------------------------------------------------------


def add_worktree(revision: str, where: Path) -> Path:
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(where), revision],
        check=True,
        capture_output=True,
    )
    return where


def remove_worktree(where: Path) -> None:
    subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(where)], capture_output=True)


# -- report ------------------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:.3f} ms"


def row_cells(outcome: Outcome) -> list[str]:
    if outcome.error:
        reason = outcome.error.splitlines()[0][:80].replace("|", "/")
        return [outcome.setup.name, f"failed: {reason} (below)", "", "", "", "", ""]
    direct = (outcome.loads.get("direct_c1", {}).get("latency_ms") or {}).get("p50")
    c1 = outcome.loads.get("turnout_c1", {}).get("latency_ms") or {}
    c32 = outcome.loads.get("turnout_c32", {})
    if direct is None or not c1:
        added = "—"
    else:
        added = f"{c1['p50'] - direct:+.3f} ms ({c1['p50']:.3f} - {direct:.3f})"
    rows = "— (no request_log)" if outcome.rows is None else f"{outcome.rows:,} / {outcome.sent:,}"
    return [
        outcome.setup.name,
        added,
        _ms(c1["p99"]) if c1 else "—",
        f"{c32['rps']:,.0f}" if c32 else "—",
        f"{c32['cpu_ms_per_request']:.3f}" if "cpu_ms_per_request" in c32 else "—",
        f"{outcome.rss_mb:.1f}",
        rows,
    ]


def markdown(outcomes: list[Outcome]) -> str:
    header = [
        "setup",
        "added p50 c=1 (through - direct)",
        "p99 c=1",
        "req/s c=32",
        "CPU ms/request c=32",
        "RSS MB",
        "rows logged / requests",
    ]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(row_cells(o)) + " |" for o in outcomes]
    return "\n".join(lines)


def _added(o: Outcome) -> float:
    return float(o.loads["turnout_c1"]["latency_ms"]["p50"] - o.loads["direct_c1"]["latency_ms"]["p50"])


def _compare(o: Outcome, base: Outcome) -> str:
    """`o` against `base`: added p50 at c=1, CPU per request and requests/s at c=32."""
    cpu = o.loads["turnout_c32"].get("cpu_ms_per_request", 0) - base.loads["turnout_c32"].get(
        "cpu_ms_per_request", 0
    )
    base_rps = base.loads["turnout_c32"]["rps"]
    rps = o.loads["turnout_c32"]["rps"] / base_rps if base_rps else 0
    return (
        f"p50 c=1 {_added(o) - _added(base):+.3f} ms   CPU/request c=32 {cpu:+.3f} ms   req/s c=32 x{rps:.2f}"
    )


def against_baseline(outcomes: list[Outcome]) -> str:
    """Each setup minus its own setup at the baseline revision when that ran (--baseline-all), else
    minus the baseline's setup 1."""
    done = [o for o in outcomes if "turnout_c32" in o.loads and "turnout_c1" in o.loads]
    bases = [o for o in done if o.setup.baseline]
    if not bases:
        return ""
    lines = []
    for o in done:
        if o.setup.baseline:
            continue
        twin = next(
            (
                b
                for b in bases
                if (b.setup.store, b.setup.virtual_key) == (o.setup.store, o.setup.virtual_key)
            ),
            None,
        )
        base = twin or bases[0]
        lines.append(f"  {o.setup.name:40} vs {base.setup.name:48} {_compare(o, base)}")
    return f"\nCompared with {bases[0].setup.baseline}:\n" + "\n".join(lines)


def limited_against_unlimited(outcomes: list[Outcome]) -> str:
    """For each store and revision, the virtual key with limits against the master key (no limits)."""
    done = [o for o in outcomes if "turnout_c32" in o.loads and "turnout_c1" in o.loads]
    lines = []
    for limited in (o for o in done if o.setup.virtual_key):
        unlimited = next(
            (
                o
                for o in done
                if not o.setup.virtual_key
                and (o.setup.store, o.setup.baseline) == (limited.setup.store, limited.setup.baseline)
            ),
            None,
        )
        if unlimited is not None:
            lines.append(f"  {limited.setup.name:48} {_compare(limited, unlimited)}")
    return (
        "\nLimited key against the master key (no limits), same store and revision:\n" + "\n".join(lines)
        if lines
        else ""
    )


# -- main --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per measurement (default 6)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1.5 s per measurement")
    parser.add_argument(
        "--baseline", metavar="REV", help="also serve the code at REV (a git worktree), setup 1"
    )
    parser.add_argument(
        "--baseline-all", action="store_true", help="serve every setup at REV too, not only setup 1"
    )
    parser.add_argument(
        "--store", choices=("sqlite", "postgres"), help="only the setups of this store (default: both)"
    )
    parser.add_argument("--results", type=Path, default=HERE / "results", help="folder for JSON results")
    parser.add_argument("--pg-url", default=PG_URL, help=f"TURNOUT_DATABASE_URL of the PG setups ({PG_URL})")
    parser.add_argument(
        "--redis-url", default=REDIS_URL, help=f"TURNOUT_REDIS_URL of the PG setups ({REDIS_URL})"
    )
    parser.add_argument("--turnout", help="turnout executable (default: beside this Python, or on PATH)")
    parser.add_argument("--gateway-cpus", default="0", help="taskset CPU list for Turnout (default 0)")
    parser.add_argument("--load-cpus", default="1", help="taskset CPU list for mock and load (default 1)")
    return parser.parse_args(argv)


def select_setups(args: argparse.Namespace) -> list[Setup]:
    """The setups this run measures, in order: --store's, those whose servers answer, and their twins at
    --baseline."""
    setups = list(SETUPS)
    why_not = reachable(args.pg_url, args.redis_url)
    if why_not:
        print(f"bench: note: skipping the postgres+redis setups; {why_not}", file=sys.stderr)
        setups = [s for s in setups if s.store != "postgres"]
    if args.store:
        setups = [s for s in setups if s.store == args.store]
    if not args.baseline or not setups:
        return setups

    def at_baseline(setup: Setup) -> Setup:
        return replace(setup, name=f"{args.baseline}, {setup.name}", baseline=args.baseline)

    if args.baseline_all:  # each setup just before its twin at REV: the machine drifts less between them
        return [twin for setup in setups for twin in (setup, at_baseline(setup))]
    return [*setups, at_baseline(setups[0])]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pinning = Pinning(args.gateway_cpus, args.load_cpus)
    setups = select_setups(args)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    load_before = os.getloadavg()  # others' work on this machine shows in every figure
    args.results.mkdir(parents=True, exist_ok=True)
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="turnout-bench-keys-") as tmp_name:
        tmp = Path(tmp_name)
        mock, mock_url = start_mock(pinning, tmp)
        runner = Runner(args, pinning, tmp, mock_url)
        print(f"bench: {pinning.describe()}; {runner.duration:g} s per measurement", file=sys.stderr)
        try:
            for setup in setups:
                if not setup.baseline:
                    outcomes.append(runner.run(setup))
                    continue
                worktree = add_worktree(setup.baseline, tmp / "baseline")
                try:
                    outcomes.append(runner.run(setup, worktree))
                finally:
                    remove_worktree(worktree)
        finally:
            mock.stop()
    table = markdown(outcomes)
    print(table)
    for compared in (against_baseline(outcomes), limited_against_unlimited(outcomes)):
        if compared:
            print(compared)
    for o in outcomes:
        if o.error:
            print(f"\n{o.setup.name} stopped short:\n{o.error}")
        for note in o.failures:
            print(f"\n{o.setup.name}: {note}")
        refused = [g for g in o.rows_by_status if g["status"] != 200]
        if refused:
            print(f"\n{o.setup.name}: request_log rows not 200: {refused}")
    out = args.results / f"keys-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "machine": platform.platform(),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "pinning": pinning.describe(),
                "duration_s": runner.duration,
                "quick": args.quick,
                "loadavg_before": load_before,
                "loadavg_after": os.getloadavg(),
                "baseline": args.baseline,
                "key_limits": KEY_LIMITS,
                "setups": [o.record() for o in outcomes],
                "table_markdown": table,
            },
            indent=2,
        )
    )
    print(f"\nresults: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
