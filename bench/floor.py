"""The floor under Turnout: what the fixed stack alone adds to a pass-through chat request.

Turnout's design fixes the server (uvicorn with uvloop and httptools), the framework (Litestar) and
the upstream client (one pooled aiohttp session). This serves three minimal proxies on that stack,
with the options `turnout serve` uses (engine/serve.py `serve`), and measures them beside Turnout
against the bench's mock, so what is left between Turnout and its floor is Turnout's own work:

    fixed     uvicorn + a raw ASGI app answering the mock's chat JSON from memory (the server alone)
    asgi      uvicorn + a raw ASGI app: read the body, POST it upstream with aiohttp, return the
              answer's bytes (server + client)
    litestar  the same as one Litestar POST handler (server + framework + client)

    .venv/bin/python -m bench.floor                  # wall clock: c=1 added p50, c=32 req/s, CPU/req
    .venv/bin/python -m bench.floor --rounds 3       # medians of three rounds, order rotated
    .venv/bin/python -m bench.floor --instructions   # callgrind: instructions per request, each one

The wall-clock run pins every server on --gateway-cpus and the mock and load client on --load-cpus,
as bench/run.py does, and measures one server at a time. `serve VARIANT --port P --upstream URL`
runs one floor in the foreground (what the runs above start).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from litestar import Litestar, Request, Response, get, post
from litestar.response import Stream

from bench import instructions
from bench.mock_upstream import build_responses
from bench.procs import Pinning, Process, free_port, wait_healthy
from bench.run import OPENAI, Bench, Scenario, bench_config, start_mock

HERE = Path(__file__).resolve().parent
VARIANTS = ("fixed", "asgi", "litestar")
UPSTREAM_HEADERS = {"Authorization": "Bearer sk-mock-upstream", "Content-Type": "application/json"}
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


# --- the floors -------------------------------------------------------------------------------------


def _session() -> Any:
    """One pooled session, configured as engine/upstream.py configures Turnout's."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=1000, limit_per_host=1000, ttl_dns_cache=300, keepalive_timeout=60)
    return aiohttp.ClientSession(
        connector=connector, skip_auto_headers=("User-Agent",), cookie_jar=aiohttp.DummyCookieJar()
    )


async def _read_body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


def raw_app(variant: str, upstream: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """A raw ASGI app: `fixed` answers from memory, `asgi` forwards to the upstream."""
    openai_json = build_responses("gpt-3.5-turbo-mock", 20).openai_json
    fixed = openai_json.partition(b"\r\n\r\n")[2]
    json_headers = [(b"content-type", b"application/json")]
    state: dict[str, Any] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, state, variant == "asgi")
            return
        body = await _read_body(receive)
        if variant == "fixed" or scope["path"] == "/health":
            await send({"type": "http.response.start", "status": 200, "headers": json_headers})
            await send({"type": "http.response.body", "body": fixed})
            return
        async with state["session"].post(upstream, data=body, headers=UPSTREAM_HEADERS) as response:
            headers = [(b"content-type", response.headers["content-type"].encode())]
            await send({"type": "http.response.start", "status": response.status, "headers": headers})
            if response.content_type == "text/event-stream":
                async for data in response.content.iter_any():
                    await send({"type": "http.response.body", "body": data, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
            else:
                await send({"type": "http.response.body", "body": await response.read()})

    return app


async def _lifespan(receive: Receive, send: Send, state: dict[str, Any], client: bool) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if client:
                state["session"] = _session()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if "session" in state:
                await state["session"].close()
            await send({"type": "lifespan.shutdown.complete"})
            return


def litestar_app(upstream: str) -> Litestar:
    """One Litestar POST handler that forwards the body (and a GET /health for the harness)."""
    state: dict[str, Any] = {}

    async def start() -> None:
        state["session"] = _session()

    async def stop() -> None:
        await state["session"].close()

    @get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @post("/v1/chat/completions", status_code=200)
    async def chat(request: Request[Any, Any, Any]) -> Response[Any]:
        body = await request.body()
        response = await state["session"].post(upstream, data=body, headers=UPSTREAM_HEADERS)
        media_type = response.headers["content-type"]
        if response.content_type != "text/event-stream":
            async with response:
                return Response(await response.read(), status_code=response.status, media_type=media_type)

        async def chunks() -> AsyncIterator[bytes]:
            async with response:
                async for data in response.content.iter_any():
                    yield data

        return Stream(chunks(), status_code=response.status, media_type=media_type)

    return Litestar([health, chat], on_startup=[start], on_shutdown=[stop], openapi_config=None)


def serve(variant: str, port: int, upstream: str) -> None:
    import uvicorn

    app = litestar_app(upstream) if variant == "litestar" else raw_app(variant, upstream)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        ws="none",
        access_log=False,
        log_level="warning",
        log_config=None,
    )


def floor_argv(variant: str, port: int, mock_url: str) -> list[str]:
    upstream = mock_url + "/v1/chat/completions"
    return [
        sys.executable,
        "-m",
        "bench.floor",
        "serve",
        variant,
        "--port",
        str(port),
        "--upstream",
        upstream,
    ]


# --- the wall-clock run -----------------------------------------------------------------------------


def _turnouts(args: argparse.Namespace) -> dict[str, Path]:
    """The Turnout checkouts to measure beside the floors: this one, and each --root."""
    found = {"turnout": HERE.parent}
    for number, root in enumerate(args.root or (), start=1):
        found[f"turnout{number}"] = root.resolve()
    return found


def start_turnout(pinning: Pinning, tmp: Path, mock_url: str, root: Path) -> tuple[Process, str]:
    """`turnout serve` from the checkout at `root` (bench/run.py's way: the bench config, a fresh
    SQLite database, a temp folder as cwd)."""
    tmp.mkdir()
    config = tmp / "config.yaml"
    config.write_text(bench_config(mock_url, set()))
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "TURNOUT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'bench.db'}",
    }
    env.pop("TURNOUT_MAPPINGS_DIR", None)
    serve = ["serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    argv = pinning.wrap(pinning.gateway_cpus, [sys.executable, "-m", "engine", *serve])
    return Process(argv, tmp / "turnout.log", cwd=tmp, env=env), f"http://127.0.0.1:{port}"


def wall_clock(args: argparse.Namespace, tmp: Path) -> None:
    pinning = Pinning(args.gateway_cpus, args.load_cpus)
    mock, mock_url = start_mock(pinning, tmp)
    servers: dict[str, Process] = {}
    try:
        benches = {}
        for variant in VARIANTS:
            port = free_port()
            argv = pinning.wrap(pinning.gateway_cpus, floor_argv(variant, port, mock_url))
            servers[variant] = Process(argv, tmp / f"{variant}.log", env=_env())
            benches[variant] = f"http://127.0.0.1:{port}"
        for name, root in _turnouts(args).items():
            servers[name], benches[name] = start_turnout(pinning, tmp / name, mock_url, root)
        for name, url in benches.items():
            wait_healthy(url + "/health", servers[name])
        names = ["direct", *benches]
        bench = {
            name: Bench(args, pinning, mock_url, benches.get(name, ""), servers.get(name, mock), (OPENAI,))
            for name in names
        }
        for name in benches:  # warm-up: pools open, lazy imports done
            bench[name].load(Scenario(OPENAI, False, 4), "turnout", 1.0, 0)
        results = _measure(args, bench, names)
    finally:
        for process in servers.values():
            process.stop()
        mock.stop()
    _print(results, names, args)


def _measure(args: argparse.Namespace, bench: dict[str, Bench], names: list[str]) -> dict[str, Any]:
    results: dict[tuple[str, int, bool], list[dict[str, Any]]] = {}
    cases = [(False, 1), (False, 32)] + ([(True, 1)] if args.stream else [])
    for number in range(args.rounds):
        order = names[number % len(names) :] + names[: number % len(names)]
        for stream, concurrency in cases:
            for name in order:
                target = "direct" if name == "direct" else "turnout"
                scenario = Scenario(OPENAI, stream, concurrency)
                result = bench[name].load(scenario, target, args.duration, 1.0)
                results.setdefault((name, concurrency, stream), []).append(result)
                print(
                    f"  round {number + 1} {name:8} c={concurrency} stream={stream}: "
                    f"{result['rps']:,.0f} req/s p50 {result['latency_ms']['p50']:.3f} ms",
                    file=sys.stderr,
                )
    return results


def _median(results: list[dict[str, Any]], *path: str) -> float:
    values = []
    for result in results:
        value: Any = result
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            values.append(float(value))
    return statistics.median(values) if values else 0.0


def _print(results: dict[Any, list[dict[str, Any]]], names: list[str], args: argparse.Namespace) -> None:
    direct = _median(results[("direct", 1, False)], "latency_ms", "p50")
    columns = ["server", "c=1 p50", "added", "c=1 p99", "c=32 req/s", "c=32 CPU/req"]
    columns += ["stream c=1 p50"] if args.stream else []
    print("\n| " + " | ".join(columns) + " |\n|---|" + "---:|" * (len(columns) - 1))
    for name in names:
        c1, c32 = results[(name, 1, False)], results[(name, 32, False)]
        p50 = _median(c1, "latency_ms", "p50")
        cells = [name, f"{p50:.3f} ms", "", f"{_median(c1, 'latency_ms', 'p99'):.3f} ms"]
        cells += [f"{_median(c32, 'rps'):,.0f}", ""]
        if name != "direct":  # the server's own cost: latency over the mock's, its CPU
            cells[2] = f"+{p50 - direct:.3f} ms"
            cells[5] = f"{_median(c32, 'cpu_ms_per_request'):.3f} ms"
        if args.stream:
            cells.append(f"{_median(results[(name, 1, True)], 'latency_ms', 'p50'):.3f} ms")
        print("| " + " | ".join(cells) + " |")
    print(f"\n{args.rounds} round(s) of {args.duration:g} s, medians; CPU/req: the server's process tree")
    _legend(args)


# --- the instruction counts -------------------------------------------------------------------------


def count(args: argparse.Namespace, tmp: Path) -> None:
    port = free_port()
    mock = Process([sys.executable, str(HERE / "mock_upstream.py"), "--port", str(port)], tmp / "mock.log")
    names = ["openai", "openai-stream"]
    figures: dict[str, dict[str, float]] = {}
    try:
        mock_url = f"http://127.0.0.1:{port}"
        wait_healthy(mock_url + "/health", mock, timeout=15)
        for variant in VARIANTS:
            own = tmp / variant
            own.mkdir()
            server_port = free_port()
            argv = floor_argv(variant, server_port, mock_url)
            wanted = names[:1] if variant == "fixed" else names
            counted = instructions.count_server(argv, server_port, wanted, args.requests, own, _env())
            figures[variant] = {scenario: per_request for scenario, (per_request, _) in counted.items()}
        for name, root in _turnouts(args).items():
            own = tmp / name
            own.mkdir()
            counted = instructions.count(root, mock_url, names, args.requests, own, steady=args.steady)
            figures[name] = {scenario: per_request for scenario, (per_request, _) in counted.items()}
    finally:
        mock.stop()
    print("| server | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for name, counted in figures.items():
        cells = " | ".join(f"{counted[n] / 1e6:.3f} M" if n in counted else "" for n in names)
        print(f"| {name} | {cells} |")
    print(f"\ninstructions per request (callgrind), {args.requests} sequential requests each")
    _legend(args)


def _legend(args: argparse.Namespace) -> None:
    print("; ".join(f"{name}: {root}" for name, root in _turnouts(args).items()))


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(HERE.parent)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement (default 5)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--stream", action="store_true", help="also measure a stream at c=1")
    parser.add_argument("--instructions", action="store_true", help="count instructions (callgrind) instead")
    parser.add_argument("--requests", type=int, default=100, help="counted requests (--instructions)")
    parser.add_argument("--steady", action="store_true", help="Turnout's timed work off (instructions.py)")
    parser.add_argument(
        "--root", action="append", type=Path, help="another Turnout checkout to measure (repeatable)"
    )
    parser.add_argument("--gateway-cpus", default="0")
    parser.add_argument("--load-cpus", default="1")
    sub = parser.add_subparsers(dest="command")
    one = sub.add_parser("serve", help="serve one floor in the foreground")
    one.add_argument("variant", choices=VARIANTS)
    one.add_argument("--port", type=int, required=True)
    one.add_argument("--upstream", required=True, help="the mock's chat completions URL")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.variant, args.port, args.upstream)
        return 0
    with tempfile.TemporaryDirectory(prefix="turnout-floor-") as folder:
        if args.instructions:
            count(args, Path(folder))
        else:
            wall_clock(args, Path(folder))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
