"""What tracing costs: the same requests through Turnout with tracing off and on, back to back.

Starts the bench's mock upstream, a local OTLP sink (answers every export with 200, keeps nothing), and
three `turnout serve` processes on the bench config: one as installed (tracing off), one with
TURNOUT_OTEL=true exporting over OTLP/http to the sink (the batch processor's thread included in its
CPU), and the same with a share of traces sampled (OTEL_TRACES_SAMPLER=traceidratio, --sampled).
All stay up; each scenario is measured on each in turn, the order reversed every other round.
Reports requests/s, p50 latency and the gateway's CPU per request (utime + stime of its process tree),
and each gateway's resident memory at the end.

    .venv/bin/python -m bench.tracing               # 2 rounds, 4 s per measurement
    .venv/bin/python -m bench.tracing --duration 8 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.procs import Pinning, Process, free_port, tree_rss_mb, wait_healthy
from bench.run import OLLAMA, OPENAI, Bench, Scenario, bench_config, start_mock, turnout_executable

SCENARIOS = (
    Scenario(OPENAI, False, 1),
    Scenario(OPENAI, False, 32),
    Scenario(OPENAI, True, 1),
    Scenario(OLLAMA, False, 32),
)


def start_sink() -> tuple[str, list[int]]:
    """An OTLP/http collector that reads each export and drops it; the count of exports received."""
    port = free_port()
    received = [0]
    ready = threading.Event()

    async def export(request: web.Request) -> web.Response:
        await request.read()
        received[0] += 1
        return web.Response(body=b"", content_type="application/x-protobuf")

    def serve() -> None:
        loop = asyncio.new_event_loop()
        app = web.Application(client_max_size=1 << 26)
        app.router.add_post("/v1/traces", export)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()

    threading.Thread(target=serve, daemon=True).start()
    ready.wait(10)
    return f"http://127.0.0.1:{port}", received


def start_gateway(
    args: argparse.Namespace, pinning: Pinning, tmp: Path, mock_url: str, name: str, extra: dict[str, str]
) -> tuple[Process, str]:
    folder = tmp / name
    folder.mkdir()
    config = folder / "config.yaml"
    config.write_text(bench_config(mock_url, set()))
    port = free_port()
    env = {**os.environ, "TURNOUT_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'bench.db'}", **extra}
    argv = [turnout_executable(args.turnout), "serve", "--config", str(config), "--port", str(port)]
    gateway = Process(pinning.wrap(pinning.gateway_cpus, argv), folder / "turnout.log", cwd=folder, env=env)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url + "/health", gateway)
    return gateway, url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per measurement (default 4)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, order alternating (default 2)")
    parser.add_argument("--sampled", type=float, default=0.1, help="the third gateway's sampling ratio")
    parser.add_argument("--turnout", help="turnout executable (default: beside this Python, or on PATH)")
    parser.add_argument("--gateway-cpus", default="0")
    parser.add_argument("--load-cpus", default="1")
    args = parser.parse_args(argv)
    pinning = Pinning(args.gateway_cpus, args.load_cpus)
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="turnout-bench-tracing-") as folder:
        tmp = Path(folder)
        mock, mock_url = start_mock(pinning, tmp)
        sink_url, exports = start_sink()
        started: list[Process] = [mock]
        exporting = {"TURNOUT_OTEL": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": sink_url}
        sampled = {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": str(args.sampled)}
        try:
            benches = {}
            for name, extra in (("off", {}), ("on", exporting), ("sampled", {**exporting, **sampled})):
                gateway, url = start_gateway(args, pinning, tmp, mock_url, name, extra)
                started.append(gateway)
                benches[name] = Bench(args, pinning, mock_url, url, gateway, (OPENAI, OLLAMA))
            for bench in benches.values():  # warm: pools, caches, lazy imports
                for scenario in SCENARIOS:
                    bench.load(scenario, "turnout", 1.0, 0)
            names = list(benches)
            for round_no in range(args.rounds):
                order = names if round_no % 2 == 0 else names[::-1]
                for scenario in SCENARIOS:
                    for name in order:
                        result = benches[name].load(scenario, "turnout", args.duration, 1.0)
                        results.setdefault((scenario.name, name), []).append(result)
            memory = {name: tree_rss_mb(bench.gateway.pid)[0] for name, bench in benches.items()}
        finally:
            for process in reversed(started):
                process.stop()
    _report(results, memory, exports[0], pinning, args)
    return 0


def _report(
    results: dict[tuple[str, str], list[dict[str, Any]]],
    memory: dict[str, float],
    exports: int,
    pinning: Pinning,
    args: argparse.Namespace,
) -> None:
    def median(scenario: str, name: str, key: str) -> float:
        values = []
        for result in results[(scenario, name)]:
            value = result.get(key)
            values.append(value["p50"] if isinstance(value, dict) else float(value or 0))
        return statistics.median(values)

    print(f"\nTracing off, on, and on with {args.sampled:g} of traces sampled ({pinning.describe()}; ")
    print(f"medians of {args.rounds} rounds of {args.duration:g} s; ratios are to off)\n")
    print("| scenario | req/s off | on | sampled | CPU ms/req off | on | sampled |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for scenario in dict.fromkeys(s for s, _ in results):
        rps = [median(scenario, n, "rps") for n in ("off", "on", "sampled")]
        cpu = [median(scenario, n, "cpu_ms_per_request") for n in ("off", "on", "sampled")]
        print(
            f"| {scenario} | {rps[0]:,.0f} | {rps[1] / rps[0]:.2f}x | {rps[2] / rps[0]:.2f}x "
            f"| {cpu[0]:.3f} | {cpu[1] / cpu[0]:.2f}x | {cpu[2] / cpu[0]:.2f}x |"
        )
    rss = ", ".join(f"{name} {mb:.1f} MB" for name, mb in memory.items())
    print(f"\nresident memory at the end: {rss}; OTLP exports the sink received: {exports}")


if __name__ == "__main__":
    sys.exit(main())
