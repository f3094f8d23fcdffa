"""Peak memory of the gateway under concurrent large request bodies (issue 10: eight 60 MB bodies).

Starts a sink upstream (reads and drops what it is sent, answers a small chat completion), then
`turnout serve` with an OpenAI-compatible alias at the sink, sends N bodies of S MB at once (a chat
request whose one image is a base64 data URL, as clients send pictures) and reports the gateway's
resident memory before and its peak (VmHWM) after, with the statuses it answered.

    .venv/bin/python -m bench.memory                          # 8 x 60 MB against this checkout
    .venv/bin/python -m bench.memory --baseline main          # the code at `main` (git archive), same run
    .venv/bin/python -m bench.memory --env MAX_REQUEST_BODY_BYTES=67108864 --bodies 8 --size-mb 60
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.procs import Process, free_port, tree_rss_mb, wait_healthy

ROOT = Path(__file__).resolve().parent.parent
ANSWER = {
    "id": "chatcmpl-sink",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "sink",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
OLLAMA_ANSWER = {
    "model": "sink",
    "created_at": "2025-01-01T00:00:00Z",
    "message": {"role": "assistant", "content": "ok"},
    "done": True,
    "done_reason": "stop",
    "prompt_eval_count": 1,
    "eval_count": 1,
}


def start_sink() -> tuple[str, threading.Thread]:
    """An upstream that reads each body in pieces (keeping none) and answers a small chat answer."""
    port = free_port()
    ready = threading.Event()

    async def handle(request: web.Request) -> web.Response:
        async for _piece in request.content.iter_chunked(1 << 20):
            pass
        return web.json_response(OLLAMA_ANSWER if request.path == "/api/chat" else ANSWER)

    def serve() -> None:
        loop = asyncio.new_event_loop()
        app = web.Application(client_max_size=1 << 34)
        app.router.add_post("/v1/chat/completions", handle)
        app.router.add_post("/api/chat", handle)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    return f"http://127.0.0.1:{port}", thread


def body_of(megabytes: float) -> bytes:
    """A chat request whose image is a data URL of about `megabytes` MB."""
    raw = os.urandom(int(megabytes * 1_000_000 * 3 / 4))
    url = "data:image/png;base64," + base64.b64encode(raw).decode()
    content = [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": url}}]
    return json.dumps({"model": "big", "messages": [{"role": "user", "content": content}]}).encode()


async def fire(url: str, body: bytes, count: int) -> collections.Counter[int]:
    async def one(session: aiohttp.ClientSession) -> int:
        headers = {"content-type": "application/json", "authorization": "Bearer sk-memory"}
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                return response.status
        except aiohttp.ClientError:
            return 0  # refused mid-upload: the connection was closed

    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        statuses = await asyncio.gather(*(one(session) for _ in range(count)))
    return collections.Counter(statuses)


def source_of(baseline: str | None, tmp: Path) -> Path:
    """This checkout, or the files of `baseline` exported with git archive (no worktree is created)."""
    if not baseline:
        return ROOT
    target = tmp / "baseline"
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", baseline], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def measure(source: Path, sink: str, body: bytes, args: argparse.Namespace, tmp: Path) -> Any:
    folder = Path(tempfile.mkdtemp(dir=tmp))
    config = folder / "config.yaml"
    base = sink if args.provider == "ollama" else sink + "/v1"
    config.write_text(
        "model_list:\n  - model_name: big\n    litellm_params:\n"
        f"      model: {args.provider}/sink\n      api_base: {base}\n      api_key: sk-sink\n"
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TURNOUT_", "LITELLM_"))}
    env.update({f"TURNOUT_{k.upper()}": v for k, v in (item.split("=", 1) for item in args.env)})
    env.update(
        {
            "TURNOUT_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'turnout.db'}",
            "TURNOUT_DISCOVERY_INTERVAL": "0",
            "TURNOUT_MASTER_KEY": "sk-memory",
            "TURNOUT_MAPPINGS_DIR": str(source / "mappings"),
            "PYTHONPATH": str(source),
        }
    )
    argv = [sys.executable, "-m", "engine", "serve", "--config", str(config), "--port", str(port)]
    gateway = Process(argv, folder / "gateway.log", cwd=folder, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url + "/health", gateway)
        asyncio.run(fire(url + "/v1/chat/completions", body_of(0.001), 4))  # warm up
        idle, _ = tree_rss_mb(gateway.pid)
        started = time.perf_counter()
        statuses = asyncio.run(fire(url + "/v1/chat/completions", body, args.bodies))
        seconds = time.perf_counter() - started
        after, peak = tree_rss_mb(gateway.pid)
    finally:
        gateway.stop()
    return {
        "idle_rss_mb": round(idle),
        "peak_rss_mb": round(peak),
        "rss_after_mb": round(after),
        "seconds": round(seconds, 2),
        "statuses": dict(statuses),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--bodies", type=int, default=8, help="concurrent requests (default 8)")
    parser.add_argument("--size-mb", type=float, default=60, help="size of each body in MB (default 60)")
    parser.add_argument(
        "--provider", choices=["openai", "ollama"], default="openai", help="pass-through or translated"
    )
    parser.add_argument("--baseline", metavar="REV", help="also measure the code at REV (git archive)")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="a TURNOUT_ setting, repeatable"
    )
    args = parser.parse_args(argv)
    sink, _thread = start_sink()
    body = body_of(args.size_mb)
    settings = ", ".join(args.env) or "defaults"
    print(f"{args.bodies} x {len(body) / 1e6:.1f} MB bodies to {args.provider}, settings: {settings}")
    with tempfile.TemporaryDirectory(prefix="turnout-memory-") as name:
        tmp = Path(name)
        runs = [("this checkout", ROOT)]
        if args.baseline:
            runs.insert(0, (args.baseline, source_of(args.baseline, tmp)))
        for label, source in runs:
            result = measure(source, sink, body, args, tmp)
            print(f"{label}: {json.dumps(result)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
