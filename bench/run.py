"""`make bench`: direct-to-mock vs through Turnout, back to back, on one machine.

Starts bench/mock_upstream.py, starts Turnout as users do (`turnout serve --config ...`) with a
temporary SQLite database, warms both up, then measures every scenario against the mock directly and
through Turnout, prints a markdown table and writes JSON to bench/results/. A translated deployment
whose mapping (mappings/providers/<name>.yaml) is absent is skipped with a note, and its alias is left
out of the config Turnout is given.

    python bench/run.py            # 8 s per measurement, one round
    python bench/run.py --quick    # smoke run, ~1.5 s per measurement
    python -m bench.run --rounds 3 --profile 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import spy
from bench.procs import Pinning, Process, free_port, tree_rss_mb, wait_healthy
from bench.report import build_rows, markdown

HERE = Path(__file__).resolve().parent
# what `turnout serve` loads from a checkout; TURNOUT_MAPPINGS_DIR overrides it, here as there
MAPPINGS = HERE.parent / "mappings"
API_KEY = "sk-bench-master-key"  # general_settings.master_key in bench/config.yaml


@dataclass(frozen=True)
class Deployment:
    """One alias: how to reach the mock directly, and the alias Turnout routes to it."""

    key: str
    direct_path: str
    direct_dialect: str
    direct_model: str
    alias: str
    mapping: str  # mappings/providers/<mapping>.yaml translates this alias
    direct_stream_path: str = ""  # when streams have an endpoint of their own (Gemini)
    direct_key: str = ""  # sent direct in the dialect's auth header, as Turnout sends the configured key

    def direct_url(self, mock_url: str, stream: bool) -> str:
        path = self.direct_stream_path if stream and self.direct_stream_path else self.direct_path
        return mock_url + path


@dataclass(frozen=True)
class Scenario:
    deployment: Deployment
    stream: bool
    concurrency: int

    @property
    def name(self) -> str:
        kind = "stream" if self.stream else "chat"
        return f"{self.deployment.key}_{kind}_c{self.concurrency}"


OPENAI = Deployment(
    "openai", "/v1/chat/completions", "openai", "gpt-3.5-turbo-mock", "gpt-3.5-turbo", "openai"
)
OLLAMA = Deployment("ollama", "/api/chat", "ollama", "llama3.2-mock", "ollama-chat", "ollama")
ANTHROPIC = Deployment(
    "anthropic",
    "/v1/messages",
    "anthropic",
    "claude-bench",
    "anthropic-chat",
    "anthropic",
    direct_key="sk-ant-mock-upstream",
)
GEMINI = Deployment(
    "gemini",
    "/v1beta/models/gemini-bench:generateContent",
    "gemini",
    "gemini-bench",
    "gemini-chat",
    "gemini",
    direct_stream_path="/v1beta/models/gemini-bench:streamGenerateContent?alt=sse",
    direct_key="mock-gemini-key",
)
# the pass-through path again, with the mock pacing its stream (one event per 5 ms): each chunk then
# arrives on a wake-up of its own, the per-chunk cost a real token stream pays
PACED = Deployment(
    "paced", "/v1/chat/completions", "openai", "gpt-3.5-turbo-paced", "gpt-3.5-turbo-paced", "openai"
)
DEPLOYMENTS = (OPENAI, OLLAMA, ANTHROPIC, GEMINI, PACED)
STREAM_ONLY = ("paced",)


def scenarios(deployments: tuple[Deployment, ...]) -> list[Scenario]:
    return [
        Scenario(deployment, stream, concurrency)
        for deployment in deployments
        for stream, concurrency in ((False, 1), (False, 32), (True, 1))
        if stream or deployment.key not in STREAM_ONLY
    ]


def mappings_dir() -> Path:
    return Path(os.environ.get("TURNOUT_MAPPINGS_DIR") or MAPPINGS)


def available(deployments: tuple[Deployment, ...]) -> tuple[Deployment, ...]:
    """The deployments whose mapping file exists; a note on stderr for each one skipped."""
    providers = mappings_dir() / "providers"
    kept = []
    for deployment in deployments:
        if (providers / f"{deployment.mapping}.yaml").is_file():
            kept.append(deployment)
        else:
            print(
                f"bench: note: {providers / deployment.mapping}.yaml is absent; "
                f"skipping {deployment.key} (alias {deployment.alias})",
                file=sys.stderr,
            )
    return tuple(kept)


@dataclass
class Bench:
    args: argparse.Namespace
    pinning: Pinning
    mock_url: str
    gateway_url: str
    gateway: Process
    deployments: tuple[Deployment, ...]

    def load(self, scenario: Scenario, target: str, duration: float, warmup: float) -> dict[str, Any]:
        """Run bench/load.py (pinned beside the mock) and return its JSON result."""
        dep = scenario.deployment
        if target == "direct":
            argv = [
                "--url",
                dep.direct_url(self.mock_url, scenario.stream),
                "--dialect",
                dep.direct_dialect,
                "--model",
                dep.direct_model,
                "--api-key",
                dep.direct_key,
            ]
        else:
            argv = [
                "--url",
                self.gateway_url + "/v1/chat/completions",
                "--model",
                dep.alias,
                "--api-key",
                API_KEY,
                "--cpu-pid",
                str(self.gateway.pid),
            ]
        argv += [
            "--concurrency",
            str(scenario.concurrency),
            "--duration",
            str(duration),
            "--warmup",
            str(warmup),
        ]
        if scenario.stream:
            argv.append("--stream")
        command = self.pinning.wrap(self.pinning.load_cpus, [sys.executable, str(HERE / "load.py"), *argv])
        done = subprocess.run(command, capture_output=True, text=True, timeout=duration + warmup + 120)
        lines = done.stdout.strip().splitlines()
        if not lines:
            sys.exit(f"bench: load client failed for {scenario.name} {target}:\n{done.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(lines[-1])
        if result["failures"] or not result["requests"]:
            print(
                f"  ! {scenario.name} {target}: {result['failures']} failures; "
                f"{result.get('first_failure', '')}",
                file=sys.stderr,
            )
        return result


def start_mock(pinning: Pinning, tmp: Path) -> tuple[Process, str]:
    port = free_port()
    argv = [sys.executable, str(HERE / "mock_upstream.py"), "--port", str(port)]
    mock = Process(pinning.wrap(pinning.load_cpus, argv), tmp / "mock.log")
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url + "/health", mock, timeout=15)
    return mock, url


def turnout_executable(given: str | None) -> str:
    if given:
        return given
    beside = Path(sys.executable).parent / "turnout"
    found = str(beside) if beside.exists() else shutil.which("turnout")
    if not found:
        sys.exit("bench: no `turnout` executable beside this Python or on PATH (pip install -e .)")
    return found


def bench_config(mock_url: str, skipped: set[str]) -> str:
    """bench/config.yaml with ${MOCK_URL} filled in, less the aliases in skipped."""
    text = (HERE / "config.yaml").read_text().replace("${MOCK_URL}", mock_url)
    if not skipped:
        return text
    config = yaml.safe_load(text)
    config["model_list"] = [m for m in config["model_list"] if m.get("model_name") not in skipped]
    return str(yaml.safe_dump(config, sort_keys=False))


def start_turnout(
    args: argparse.Namespace, pinning: Pinning, tmp: Path, mock_url: str, skipped: set[str]
) -> tuple[Process, str]:
    """`turnout serve` as a user runs it: a config file, a fresh SQLite database, a temp working dir."""
    config = tmp / "config.yaml"
    config.write_text(bench_config(mock_url, skipped))
    port = free_port()
    env = {**os.environ, "TURNOUT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'bench.db'}"}
    argv = [
        turnout_executable(args.turnout),
        "serve",
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    gateway = Process(pinning.wrap(pinning.gateway_cpus, argv), tmp / "turnout.log", cwd=tmp, env=env)
    return gateway, f"http://127.0.0.1:{port}"


def warm_up(bench: Bench, seconds: float) -> None:
    """Open pools, fill caches, let lazy imports happen: every deployment, plain and streamed."""
    for deployment in bench.deployments:
        for stream in (False, True):
            bench.load(Scenario(deployment, stream, 4), "turnout", seconds, 0)


def measure(bench: Bench, rounds: int, duration: float, warmup: float) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for round_no in range(1, rounds + 1):
        for scenario in scenarios(bench.deployments):
            targets = ("direct", "turnout") if round_no % 2 else ("turnout", "direct")
            for target in targets:
                result = bench.load(scenario, target, duration, warmup)
                records.append(
                    {"round": round_no, "scenario": scenario.name, "target": target, "result": result}
                )
                _progress(round_no, scenario, target, result)
    return records


def _progress(round_no: int, scenario: Scenario, target: str, result: dict[str, Any]) -> None:
    latency = result.get("latency_ms") or {}
    first = result.get("first_chunk_ms") or {}
    extra = f" first-chunk p50 {first['p50']:.3f} ms" if first else ""
    cpu = f" cpu/req {result['cpu_ms_per_request']:.3f} ms" if "cpu_ms_per_request" in result else ""
    print(
        f"  round {round_no} {scenario.name:20} {target:8} {result['rps']:>9,.0f} req/s  "
        f"p50 {latency.get('p50', 0):.3f} ms  p99 {latency.get('p99', 0):.3f} ms{extra}{cpu}",
        file=sys.stderr,
        flush=True,
    )


def run_profile(bench: Bench, seconds: float, out_dir: Path, stamp: str) -> dict[str, Any]:
    """py-spy the gateway during a c=32 load on each deployment (paced streams: c=4)."""
    executable = spy.py_spy()
    if not executable:
        print("  (py-spy not found: pip install py-spy; profile skipped)", file=sys.stderr)
        return {}
    summaries: dict[str, Any] = {}
    for deployment in bench.deployments:
        out = out_dir / f"profile-{stamp}-{deployment.key}.txt"
        recorder = spy.record(executable, bench.gateway.pid, seconds, out)
        time.sleep(0.5)
        paced = deployment.key in STREAM_ONLY  # streams at c=4: chunks still arrive one per wake-up
        bench.load(Scenario(deployment, paced, 4 if paced else 32), "turnout", seconds, 0)
        _, err = recorder.communicate(timeout=seconds + 60)
        if recorder.returncode != 0 or not out.exists():
            print(f"  (py-spy failed: {err.decode(errors='replace')[-500:]})", file=sys.stderr)
            continue
        summaries[deployment.key] = {"collapsed_stacks": str(out), **spy.top_frames(out)}
    return summaries


def _print_profile(summaries: dict[str, Any]) -> None:
    for key, summary in summaries.items():
        print(f"\nProfile, {key} chat c=32 (% of samples; stacks in {summary['collapsed_stacks']})")
        for kind in ("threads", "packages", "self", "engine_inclusive"):
            print(f"  top {kind}:")
            for frame, share in summary[kind][:12]:
                print(f"    {share:5.1f}%  {frame}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement (default 8)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of all scenarios; medians when > 1")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1.5 s per measurement")
    parser.add_argument(
        "--profile",
        type=float,
        default=0,
        metavar="SECONDS",
        help="afterwards, py-spy the gateway under c=32 load for SECONDS per deployment",
    )
    parser.add_argument("--turnout", help="turnout executable (default: beside this Python, or on PATH)")
    parser.add_argument("--gateway-cpus", default="0", help="taskset CPU list for Turnout (default 0)")
    parser.add_argument("--load-cpus", default="1", help="taskset CPU list for mock and load (default 1)")
    parser.add_argument(
        "--only", help="comma-separated deployments to measure (openai, ollama, anthropic, gemini, paced)"
    )
    parser.add_argument("--results", type=Path, default=HERE / "results", help="folder for JSON results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    duration, warmup, gateway_warmup = (1.5, 0.3, 0.5) if args.quick else (args.duration, 1.0, 2.0)
    pinning = Pinning(args.gateway_cpus, args.load_cpus)
    chosen = tuple(d for d in DEPLOYMENTS if not args.only or d.key in args.only.split(","))
    deployments = available(chosen)
    skipped = [d for d in DEPLOYMENTS if d not in deployments]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    args.results.mkdir(parents=True, exist_ok=True)
    print(
        f"bench: {pinning.describe()}; {duration:g} s per measurement, {args.rounds} round(s)",
        file=sys.stderr,
    )
    with tempfile.TemporaryDirectory(prefix="turnout-bench-") as tmp_name:
        tmp = Path(tmp_name)
        mock, mock_url = start_mock(pinning, tmp)
        gateway: Process | None = None
        try:
            gateway, gateway_url = start_turnout(args, pinning, tmp, mock_url, {d.alias for d in skipped})
            start_s = wait_healthy(gateway_url + "/health", gateway)
            bench = Bench(args, pinning, mock_url, gateway_url, gateway, deployments)
            warm_up(bench, gateway_warmup)
            records = measure(bench, max(args.rounds, 1), duration, warmup)
            rss_mb, peak_mb = tree_rss_mb(gateway.pid)
            summaries = run_profile(bench, args.profile, args.results, stamp) if args.profile else {}
        finally:
            if gateway is not None:
                gateway.stop()
            mock.stop()
    process = {"rss_mb": round(rss_mb, 1), "peak_rss_mb": round(peak_mb, 1), "start_s": round(start_s, 2)}
    rows = build_rows(records, process)
    table = markdown(rows)
    print(table)
    if summaries:
        _print_profile(summaries)
    out = args.results / f"bench-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "machine": platform.platform(),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "pinning": pinning.describe(),
                "duration_s": duration,
                "rounds": args.rounds,
                "quick": args.quick,
                "process": process,
                "deployments": [d.key for d in deployments],
                "skipped": [d.key for d in skipped],
                "rows": [{**row.__dict__, "ratio": row.ratio} for row in rows],
                "table_markdown": table,
                "profile": summaries,
                "records": records,
            },
            indent=2,
        )
    )
    print(f"\nresults: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
