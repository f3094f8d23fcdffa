"""Instructions per request, counted by callgrind: a figure the machine's noise does not move.

Wall-clock figures on a shared two-core machine drift by 10-30% between runs; an instruction count
of the same build, inputs and environment repeats to a few percent whatever else the machine does.
This runs `turnout serve` (from a checkout, or several) under `valgrind --tool=callgrind
--instr-atstart=no` against the bench's mock, warms each scenario up uninstrumented, then switches
instrumentation on with `callgrind_control` for N sequential requests and reads the count from the
dump. Start-up is never counted.

    .venv/bin/python -m bench.instructions                       # this checkout, every scenario
    .venv/bin/python -m bench.instructions --root /tmp/old .     # an older checkout beside this one
    .venv/bin/python -m bench.instructions --only ollama,anthropic-stream --requests 200
    .venv/bin/python -m bench.instructions --only openai-paced --requests 30   # the per-chunk cost
    .venv/bin/python -m bench.instructions --steady /tmp/old .   # the request path alone (see STEADY)

Each --root runs with PYTHONPATH=ROOT and this environment's packages, so compare checkouts whose
dependencies match. Needs valgrind (Debian's package). Counts include the usage writer's batches
(unless --steady), which at one request at a time hold few rows each: the figure is c=1's cost, the
worst case per request. A stream's count is also given per event the client got (`data:` lines): for the paced
stream, whose events reach the gateway one per wake-up, that is the per-chunk cost `make bench`'s
"paced stream c=1" row measures in CPU time, start and end of the request included.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.procs import Process, free_port, wait_healthy

HERE = Path(__file__).resolve().parent
SCENARIOS = {  # name -> (alias in bench/config.yaml, stream)
    "openai": ("gpt-3.5-turbo", False),
    "openai-stream": ("gpt-3.5-turbo", True),
    # the mock writes this stream one event at a time (--paced-ms apart): each chunk is a wake-up of its own
    "openai-paced": ("gpt-3.5-turbo-paced", True),
    "ollama": ("ollama-chat", False),
    "ollama-stream": ("ollama-chat", True),
    "anthropic": ("anthropic-chat", False),
    "anthropic-stream": ("anthropic-chat", True),
    "gemini": ("gemini-chat", False),
    "gemini-stream": ("gemini-chat", True),
}
KEY = "sk-bench-master-key"
# always: no periodic reloads (files, keys, routes, discovery). Under callgrind they cost ~4M
# instructions a second of wall time, which a slow request (a paced stream) would count as its own.
NO_RELOADS = {
    f"TURNOUT_{name}_INTERVAL": "0" for name in ("RELOAD", "KEY_REFRESH", "ROUTES_REFRESH", "DISCOVERY")
}
# --steady: the request-log batches off too. Under valgrind a request takes ~50x longer, so a batch's
# fixed cost (one per flush interval) is spread over far fewer requests than when served at speed, and
# by how many depends on how loaded the machine is: counts of one build then differ by 10-20% between
# runs. Steady counts the request path alone (the rows are built and queued, not written: ~20 us of CPU
# per row on the 2-core machine, in batches of hundreds when served at speed).
STEADY = {"TURNOUT_USAGE_FLUSH_INTERVAL": "86400"}  # and fewer rows than a batch (500) wait: none written
WARM_UP = 30
PACED_MS = 20.0


def _post(connection: http.client.HTTPConnection, alias: str, stream: bool) -> int:
    """One chat request on a kept-alive connection (what a client pool does): the count is the
    request's, not a TCP handshake's. The number of SSE events it got (0 for an answer)."""
    body = b'{"model": "%s", "messages": [{"role": "user", "content": "Say hello."}]%s}' % (
        alias.encode(),
        b', "stream": true' if stream else b"",
    )
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    connection.request("POST", "/v1/chat/completions", body=body, headers=headers)
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        sys.exit(f"bench: {alias} answered {response.status}")
    return body.count(b"data:") if stream else 0


def _control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True)


def _total(dump: Path) -> int:
    # `totals:` is what was counted; `summary:` may say 0 when instrumentation was switched on late
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    sys.exit(f"bench: no totals in {dump}")


def count(
    root: Path,
    mock_url: str,
    names: list[str],
    requests: int,
    tmp: Path,
    *,
    steady: bool = False,
    keep: Path | None = None,
) -> dict[str, tuple[float, float]]:
    """Instructions per request of each scenario, and per event a stream sent, for the checkout at
    `root` (see STEADY)."""
    config = tmp / "config.yaml"
    config.write_text((HERE / "config.yaml").read_text().replace("${MOCK_URL}", mock_url))
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "TURNOUT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'bench.db'}",
        **NO_RELOADS,
        **(STEADY if steady else {}),
    }
    env.pop("TURNOUT_MAPPINGS_DIR", None)
    argv = [sys.executable, "-m", "engine", "serve", "--config", str(config), "--port", str(port)]
    return count_server(argv, port, names, requests, tmp, env, keep=keep)


def count_server(
    argv: list[str],
    port: int,
    names: list[str],
    requests: int,
    tmp: Path,
    env: dict[str, str],
    *,
    keep: Path | None = None,
) -> dict[str, tuple[float, float]]:
    """Instructions per request of each scenario, and per event a stream sent, for any server `argv`
    listening on `port` (a gateway, or one of bench/floor.py's floors) started under callgrind with
    `tmp` as cwd."""
    out = tmp / "callgrind.out"
    grind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    gateway = Process([*grind, *argv], tmp / "server.log", cwd=tmp, env=env)
    url = f"http://127.0.0.1:{port}"
    figures: dict[str, tuple[float, float]] = {}
    try:
        wait_healthy(url + "/health", gateway, timeout=600)  # start-up is ~50x slower under valgrind
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for name in names:
            alias, stream = SCENARIOS[name]
            for _ in range(WARM_UP):
                _post(connection, alias, stream)
            before = set(tmp.glob("callgrind.out*"))
            _control("-i", "on", str(gateway.pid))
            events = sum(_post(connection, alias, stream) for _ in range(requests))
            _control("-i", "off", str(gateway.pid))
            _control("-d", name, str(gateway.pid))
            [dump] = set(tmp.glob("callgrind.out*")) - before
            total = _total(dump)
            if keep is not None:  # for callgrind_annotate: where the instructions went
                shutil.copy(dump, keep / f"{tmp.name}-{name}.callgrind")
            figures[name] = (total / requests, total / events if events else 0.0)
    finally:
        gateway.stop(grace=60)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", action="append", type=Path, help="a checkout to count (repeatable)")
    parser.add_argument("roots", nargs="*", type=Path, help="more checkouts (`--root /tmp/old .`)")
    parser.add_argument("--only", help="comma-separated scenarios: " + ", ".join(SCENARIOS))
    parser.add_argument("--requests", type=int, default=100, help="counted requests per scenario")
    parser.add_argument("--steady", action="store_true", help="timed background work off (see STEADY)")
    parser.add_argument(
        "--paced-ms",
        type=float,
        default=PACED_MS,
        help=f"the paced stream's gap between events (default {PACED_MS:g}: under callgrind a chunk takes"
        " milliseconds, and events that arrive together would be read in one wake-up)",
    )
    parser.add_argument("--chunks", type=int, default=20, help="content chunks per stream the mock sends")
    parser.add_argument("--keep", type=Path, help="a folder to copy each callgrind dump to")
    args = parser.parse_args(argv)
    roots = [root.resolve() for root in [*(args.root or []), *args.roots] or [HERE.parent]]
    names = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    with tempfile.TemporaryDirectory(prefix="turnout-instructions-") as folder:
        tmp = Path(folder)
        port = free_port()
        mock = Process(
            [
                sys.executable,
                str(HERE / "mock_upstream.py"),
                "--port",
                str(port),
                "--paced-ms",
                str(args.paced_ms),
                "--chunks",
                str(args.chunks),
            ],
            tmp / "mock.log",
        )
        try:
            mock_url = f"http://127.0.0.1:{port}"
            wait_healthy(mock_url + "/health", mock, timeout=15)
            results = []
            for number, root in enumerate(roots):
                own = tmp / f"root{number}"
                own.mkdir()
                results.append(
                    count(root, mock_url, names, args.requests, own, steady=args.steady, keep=args.keep)
                )
        finally:
            mock.stop()
    print("| scenario | " + " | ".join(str(root) for root in roots) + " |")
    print("|---|" + "---:|" * len(roots))
    for name in names:
        cells = " | ".join(f"{figures[name][0] / 1e6:.3f} M" for figures in results)
        print(f"| {name} | {cells} |")
    steady = "; steady (timed background work off)" if args.steady else ""
    print(f"\ninstructions per request (callgrind), {args.requests} sequential requests per scenario{steady}")
    streams = [name for name in names if SCENARIOS[name][1]]
    if streams:
        print("\n| per event sent | " + " | ".join(str(root) for root in roots) + " |")
        print("|---|" + "---:|" * len(roots))
        for name in streams:
            cells = " | ".join(f"{figures[name][1] / 1e3:.1f} k" for figures in results)
            print(f"| {name} | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
