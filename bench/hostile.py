"""`make bench-hostile`: issue 10's attacks and careless clients, measured against a real `turnout serve`.

Each probe starts a fresh `turnout serve` (PostgreSQL, as in production; a clean schema each time) in
front of an attack upstream that runs in this process, does one thing a hostile or careless client
(or upstream) does, and reports what it cost. Nothing here asserts: the tests do that. This gives the
figures, so that the same attacks can be measured on two versions in one run:

    .venv/bin/python -m bench.hostile                          # this checkout's turnout
    .venv/bin/python -m bench.hostile --turnout OTHER/.venv/bin/turnout --label before
    .venv/bin/python -m bench.hostile --only metrics,memory    # some probes

Probes: usage (a bad model name and the rows after it), metrics (huge and random model names, the
scrape, chat throughput while scraping), abandoned (clients that leave before the first byte),
ssrf (image URLs that point inside), echo (an upstream that echoes its key), responses (another key
continuing a stored response), budget (concurrent streams against a one-request budget), fuzz
(malformed dialect bodies and admin queries), memory (huge bodies, answers, error bodies and events).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import string
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import yaml

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.hostile_upstream import SECRET_KEY, AttackUpstream
from bench.procs import Process, free_port, tree_rss_mb, wait_healthy
from bench.run import turnout_executable

MASTER = "sk-hostile-master"
ADMIN = {"authorization": f"Bearer {MASTER}"}
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/hostile"
HI = [{"role": "user", "content": "Hi"}]
PRICE = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}  # one answer: 0.034 USD


def config(upstream: str) -> dict[str, Any]:
    def openai(alias: str, path: str, **extra: Any) -> dict[str, Any]:
        params = {"model": "openai/test-model", "api_base": f"{upstream}{path}/v1", **extra}
        return {"model_name": alias, "litellm_params": params, "model_info": dict(PRICE)}

    return {
        "model_list": [
            openai("good", ""),
            openai("slow", "/hang"),
            openai("echo", "/echo", api_key=SECRET_KEY),
            openai("big", "/big"),
            openai("bigerr", "/bigerr"),
            openai("bigevent", "/bigevent"),
            {
                "model_name": "vision",
                "litellm_params": {"model": "ollama/llava", "api_base": upstream},
            },
        ],
        "general_settings": {"master_key": MASTER},
    }


class Gateway:
    """One `turnout serve` on a clean PostgreSQL schema."""

    def __init__(self, executable: str, workdir: Path, upstream: str) -> None:
        self.executable = executable
        self.workdir = workdir
        self.upstream = upstream
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: Process | None = None

    async def __aenter__(self) -> Gateway:
        await _reset_database()
        path = self.workdir / "config.yaml"
        path.write_text(yaml.safe_dump(config(self.upstream)))
        env = {
            "PATH": "/usr/bin:/bin",
            "TURNOUT_DATABASE_URL": PG_URL,
            "TURNOUT_LOG_LEVEL": "warning",
            "TURNOUT_DISCOVERY_INTERVAL": "0",
        }
        argv = [self.executable, "serve", "--config", str(path), "--port", str(self.port)]
        self.process = Process(argv, self.workdir / f"turnout-{self.port}.log", cwd=self.workdir, env=env)
        await asyncio.to_thread(wait_healthy, self.url + "/health", self.process, 60)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self.process is not None
        await asyncio.to_thread(self.process.stop, 40)

    def rss(self) -> tuple[float, float]:
        assert self.process is not None
        return tree_rss_mb(self.process.pid)

    def log(self) -> str:
        assert self.process is not None
        return self.process.log_path.read_text(errors="replace")


async def _reset_database() -> None:
    import asyncpg

    server = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        if not await server.fetchval("SELECT 1 FROM pg_database WHERE datname = 'hostile'"):
            await server.execute("CREATE DATABASE hostile")
    finally:
        await server.close()
    connection = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/hostile")
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()


async def _sql(query: str, *args: Any) -> list[Any]:
    import asyncpg

    connection = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/hostile")
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


async def _post(
    http: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str] | None = None, **kw: Any
) -> tuple[int, bytes, dict[str, str]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    hdrs = {"content-type": "application/json", **ADMIN, **(headers or {})}
    async with http.post(url, data=data, headers=hdrs, **kw) as response:
        return response.status, await response.read(), dict(response.headers)


async def _key(http: aiohttp.ClientSession, gw: Gateway, **fields: Any) -> str:
    status, raw, _ = await _post(http, gw.url + "/key/generate", fields)
    assert status == 200, raw
    return str(json.loads(raw)["key"])


def _chat(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": HI, **extra}


# --- probes -------------------------------------------------------------------------------------


async def probe_usage(gw: Gateway, http: aiohttp.ClientSession, _up: AttackUpstream) -> dict[str, Any]:
    """Issue item 1: a bad model name, then ordinary requests: are their rows and spend written?"""
    key = await _key(http, gw, models=["good"])
    as_key = {"authorization": f"Bearer {key}"}
    bad = [
        (_chat("x" * 300), as_key),
        (_chat("a\x00b"), as_key),
        (_chat("y" * 300), {}),
        (_chat("n\x00ul"), {}),
    ]
    statuses = [(await _post(http, gw.url + "/v1/chat/completions", b, h))[0] for b, h in bad]
    ids = []
    for n in range(25):
        _status, _, headers = await _post(
            http, gw.url + "/v1/chat/completions", _chat("good"), as_key if n % 5 == 0 else {}
        )
        ids.append(headers.get("x-turnout-request-id", ""))
    deadline = time.monotonic() + 5
    written = 0
    while time.monotonic() < deadline:
        try:
            rows = await _sql("SELECT count(*) FROM request_log WHERE request_id = ANY($1::text[])", ids)
            written = int(rows[0][0])
        except Exception:
            written = 0
        if written == len(ids):
            break
        await asyncio.sleep(0.2)
    spend = await _sql("SELECT spend FROM api_keys")
    return {
        "bad-name statuses": statuses,
        "later rows written within 5 s": f"{written}/{len(ids)}",
        "key spend in SQL": str(spend[0][0]) if spend else None,
    }


async def _throughput(gw: Gateway, seconds: float, workers: int = 16) -> float:
    done = 0
    stop = time.monotonic() + seconds
    body = json.dumps(_chat("good")).encode()
    headers = {"content-type": "application/json", **ADMIN}

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal done
        while time.monotonic() < stop:
            async with http.post(gw.url + "/v1/chat/completions", data=body, headers=headers) as response:
                await response.read()
                done += response.status == 200

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(worker(http) for _ in range(workers)))
    return done / seconds


async def probe_metrics(gw: Gateway, http: aiohttp.ClientSession, _up: AttackUpstream) -> dict[str, Any]:
    """Issue item 2: huge and random model names become labels; what a scrape then costs."""
    out: dict[str, Any] = {}
    rss0 = gw.rss()[0]
    for _ in range(5):
        await _post(http, gw.url + "/v1/chat/completions", _chat("m" * 4_000_000))
    out["RSS growth after 5 x 4 MB names, MB"] = round(gw.rss()[0] - rss0, 1)
    started = time.perf_counter()
    async with http.get(gw.url + "/metrics", timeout=aiohttp.ClientTimeout(total=120)) as response:
        size = len(await response.read())
    out["scrape after 4 MB names: bytes"] = size
    out["scrape after 4 MB names: s"] = round(time.perf_counter() - started, 3)
    out["peak RSS, MB"] = round(gw.rss()[1], 1)
    rng = random.Random(10)
    for _ in range(1000):
        name = "".join(rng.choices(string.ascii_lowercase, k=16))
        await _post(http, gw.url + "/v1/chat/completions", _chat(name))
    started = time.perf_counter()
    async with http.get(gw.url + "/metrics", timeout=aiohttp.ClientTimeout(total=120)) as response:
        size = len(await response.read())
    out["scrape after 1,000 random names: bytes"] = size
    out["scrape after 1,000 random names: s"] = round(time.perf_counter() - started, 3)
    out["chat req/s, no scraping"] = round(await _throughput(gw, 3), 0)
    scraping = True

    async def scrape_loop() -> None:
        async with aiohttp.ClientSession() as own:
            while scraping:
                async with own.get(gw.url + "/metrics") as response:
                    await response.read()

    scraper = asyncio.create_task(scrape_loop())
    out["chat req/s, scraping in a loop"] = round(await _throughput(gw, 3), 0)
    scraping = False
    await scraper
    return out


async def probe_abandoned(gw: Gateway, http: aiohttp.ClientSession, up: AttackUpstream) -> dict[str, Any]:
    """Issue item 3: 256 clients leave before the first byte; do their upstream calls go on, and do
    they starve a healthy alias on the same upstream host?"""
    body = json.dumps(_chat("slow")).encode()
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {MASTER}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body
    writers = []
    for _ in range(256):
        _reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(request)
        writers.append(writer)
    await up.wait_for(lambda: up.hanging >= 256, 15)
    held = up.hanging
    for writer in writers:
        writer.close()
    await asyncio.sleep(2)  # a bench may wait: how many upstream calls are still held after 2 s?
    still = up.hanging
    ok, latencies = 0, []
    for _ in range(10):
        started = time.perf_counter()
        try:
            status, _, _ = await _post(
                http, gw.url + "/v1/chat/completions", _chat("good"), timeout=aiohttp.ClientTimeout(total=3)
            )
            ok += status == 200
        except TimeoutError:
            pass
        latencies.append(time.perf_counter() - started)
    up.release_hanging()
    rows = await _sql("SELECT status, count(*) FROM request_log WHERE alias = 'slow' GROUP BY status")
    return {
        "upstream calls held by the gateway": held,
        "still held 2 s after the clients left": still,
        "healthy alias, same host: answered within 3 s": f"{ok}/10",
        "healthy alias p50, s": round(sorted(latencies)[len(latencies) // 2], 3),
        "request_log rows of the abandoned (status: count)": {int(s): int(c) for s, c in rows},
    }


def _ssrf_urls(port: int) -> dict[str, str]:
    path = f":{port}/secret.png"
    return {
        "127.0.0.1": f"http://127.0.0.1{path}",
        "localhost": f"http://localhost{path}",
        "[::1]": f"http://[::1]{path}",
        "0x7f000001": f"http://0x7f000001{path}",
        "2130706433": f"http://2130706433{path}",
        "[::ffff:127.0.0.1]": f"http://[::ffff:127.0.0.1]{path}",
        "user@127.0.0.1": f"http://user@127.0.0.1{path}",
    }


async def probe_ssrf(gw: Gateway, http: aiohttp.ClientSession, up: AttackUpstream) -> dict[str, Any]:
    """Issue item 4: image URLs that point inside the network, for a backend that needs inline images."""

    async def ask(url: str) -> tuple[int, str]:
        content = [{"type": "text", "text": "?"}, {"type": "image_url", "image_url": {"url": url}}]
        body = {"model": "vision", "messages": [{"role": "user", "content": content}]}
        status, raw, _ = await _post(http, gw.url + "/v1/chat/completions", body)
        try:
            message = str(json.loads(raw)["error"]["message"])
        except (ValueError, KeyError, TypeError):
            message = ""
        return status, message

    fetched = {}
    for name, url in _ssrf_urls(up.port).items():
        before = up.secret_hits
        status, _ = await ask(url)
        fetched[name] = f"{status}, {'FETCHED' if up.secret_hits > before else 'not fetched'}"
    closed_port = free_port()
    _, closed = await ask(f"http://127.0.0.1:{closed_port}/x.png")
    _, missing = await ask(f"http://127.0.0.1:{up.port}/missing.png")
    file_status, _ = await ask("file:///etc/passwd")
    return {
        "inside addresses": fetched,
        "closed port and open port answer alike": closed.replace(str(closed_port), "P")
        == missing.replace(str(up.port), "P"),
        "closed-port message": closed[:120],
        "file:// status": file_status,
    }


async def probe_echo(gw: Gateway, http: aiohttp.ClientSession, _up: AttackUpstream) -> dict[str, Any]:
    """Issue item 5: an upstream whose 401 echoes the key it was sent."""
    key = await _key(http, gw, models=["echo"])
    as_key = {"authorization": f"Bearer {key}"}
    _, answer, _ = await _post(http, gw.url + "/v1/chat/completions", _chat("echo"), as_key)
    _, streamed, _ = await _post(http, gw.url + "/v1/chat/completions", _chat("echo", stream=True), as_key)
    async with http.get(gw.url + "/turnout/deployments", headers=ADMIN) as response:
        operator = await response.read()
    await asyncio.sleep(1.5)  # the request log is written in batches
    rows = await _sql("SELECT error_type, error_code FROM request_log")
    secret = SECRET_KEY.encode()
    return {
        "key in the client's answer": secret in answer,
        "key in the client's stream": secret in streamed,
        "key in /turnout/deployments": secret in operator,
        "key in request_log": any(SECRET_KEY in str(tuple(row)) for row in rows),
        "key in the gateway's log": SECRET_KEY in gw.log(),
    }


async def probe_responses(gw: Gateway, http: aiohttp.ClientSession, up: AttackUpstream) -> dict[str, Any]:
    """Issue item 6: another key continues a stored response by id."""
    first = {"authorization": f"Bearer {await _key(http, gw, models=['good'])}"}
    other = {"authorization": f"Bearer {await _key(http, gw, models=['good'])}"}
    status, raw, _ = await _post(
        http, gw.url + "/v1/responses", {"model": "good", "input": "my secret is 4321"}, first
    )
    response_id = json.loads(raw).get("id") if status == 200 else None
    up.last_chat = None
    status, _, _ = await _post(
        http,
        gw.url + "/v1/responses",
        {"model": "good", "input": "what was my secret?", "previous_response_id": response_id},
        other,
    )
    leaked = up.last_chat is not None and "4321" in json.dumps(up.last_chat)
    expires = await _sql("SELECT expires_at FROM stored_exchanges")
    return {
        "other key continuing: status": status,
        "first key's turn sent on for the other key": leaked,
        "stored rows with an expiry": f"{sum(r[0] is not None for r in expires)}/{len(expires)}",
    }


async def probe_budget(gw: Gateway, http: aiohttp.ClientSession, _up: AttackUpstream) -> dict[str, Any]:
    """Issue item 7: 20 concurrent streams against a budget of one request."""
    budget = 0.034  # one golden answer: 10 x 0.001 + 12 x 0.002
    key = await _key(http, gw, models=["good"], max_budget=budget)
    as_key = {"authorization": f"Bearer {key}"}
    body = _chat("good", stream=True, stream_options={"include_usage": True})
    results = await asyncio.gather(
        *(_post(http, gw.url + "/v1/chat/completions", body, as_key) for _ in range(20))
    )
    await asyncio.sleep(1.5)  # spend is written with the request log
    async with http.get(gw.url + "/key/info", params={"key": key}, headers=ADMIN) as response:
        info = await response.json()
    spend = float(info.get("info", info).get("spend") or 0)
    return {
        "streams answered 200": sum(status == 200 for status, _, _ in results),
        "spend / budget": round(spend / budget, 2),
    }


def _mutate(rng: random.Random, value: Any, depth: int = 0) -> Any:
    """A random change to a JSON value: a wrong type, a strange scalar, a dropped or added field."""
    weird: list[Any] = [None, True, 5, -1, 2**70, 1e308, "", "\x00", "x" * 1000, [], {}, [None], {"a": 1}]
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(list(value))
        copy = dict(value)
        roll = rng.random()
        if roll < 0.2:
            del copy[key]
        elif roll < 0.3:
            copy[rng.choice(["type", "role", "content", "x"])] = rng.choice(weird)
        else:
            copy[key] = _mutate(rng, value[key], depth + 1)
        return copy
    if isinstance(value, list) and value and rng.random() < 0.8:
        items = list(value)
        index = rng.randrange(len(items))
        items[index] = _mutate(rng, items[index], depth + 1)
        return items
    return rng.choice(weird)


_MESSAGES_BODY = {
    "model": "good",
    "max_tokens": 64,
    "system": [{"type": "text", "text": "Be brief."}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]},
    ],
    "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "auto"},
    "metadata": {"user_id": "u"},
    "stop_sequences": ["END"],
    "temperature": 0.5,
    "thinking": {"type": "enabled", "budget_tokens": 1024},
}
_RESPONSES_BODY = {
    "model": "good",
    "instructions": "Be brief.",
    "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
    ],
    "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
    "tool_choice": "auto",
    "text": {"format": {"type": "json_object"}},
    "reasoning": {"effort": "low"},
    "max_output_tokens": 64,
    "store": False,
}


async def probe_fuzz(gw: Gateway, http: aiohttp.ClientSession, _up: AttackUpstream) -> dict[str, Any]:
    """Issue item 8: malformed dialect bodies, deep JSON, absurd durations and numbers: any 5xx?"""
    rng = random.Random(8)
    out: dict[str, Any] = {}
    cases = (("/v1/messages", _MESSAGES_BODY, 2000), ("/v1/responses", _RESPONSES_BODY, 1750))
    for route, base, count in cases:
        fives = 0
        for _ in range(count):
            body = _mutate(rng, base)
            status, _, _ = await _post(http, gw.url + route, body)
            fives += status >= 500
        out[f"{route}: 5xx of {count} mutated bodies"] = fives
    deep = b'{"model": "good", "messages": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    for route in ("/v1/chat/completions", "/v1/messages", "/v1/responses", "/key/generate"):
        status, _raw, _ = await _post(http, gw.url + route, deep)
        out[f"5,000-deep JSON on {route}"] = status
    status, _, _ = await _post(http, gw.url + "/key/generate", {"duration": "3000000d"})
    out["/key/generate duration 3000000d"] = status
    status, _, _ = await _post(http, gw.url + "/key/generate", {"max_budget": 10**30, "rpm_limit": 2**70})
    out["/key/generate numbers past 64 bits"] = status
    async with http.get(gw.url + "/turnout/requests", params={"limit": str(2**70)}, headers=ADMIN) as r:
        out["/turnout/requests?limit=2**70"] = r.status
    status, _, _ = await _post(http, gw.url + "/v1/chat/completions", _chat("good", max_tokens=1e30))
    out["chat max_tokens 1e30"] = status
    status, _, _ = await _post(http, gw.url + "/v1/messages", {**_MESSAGES_BODY, "system": 5})
    out["/v1/messages system: 5"] = status
    return out


async def probe_memory(gw: Gateway, http: aiohttp.ClientSession, _up: AttackUpstream) -> dict[str, Any]:
    """Issue item 9: huge bodies in, huge answers, error bodies and events out."""
    out: dict[str, Any] = {"RSS at start, MB": round(gw.rss()[0], 1)}
    for megabytes in (40, 60):  # under and over the default per-request limit (50 MiB)
        filler = "a" * (megabytes * 1024 * 1024)
        body = json.dumps(_chat("good", messages=[{"role": "user", "content": filler}])).encode()
        del filler
        results = await asyncio.gather(
            *(_post(http, gw.url + "/v1/chat/completions", body) for _ in range(8)), return_exceptions=True
        )
        del body
        statuses = sorted(str(r[0]) if isinstance(r, tuple) else "reset" for r in results)
        out[f"8 x {megabytes} MB bodies: statuses"] = " ".join(statuses)
        out[f"8 x {megabytes} MB bodies: peak RSS so far, MB"] = round(gw.rss()[1], 1)
    for alias, stream in (("big", False), ("bigerr", False), ("bigevent", True)):
        started = time.perf_counter()
        status, raw, _ = await _post(
            http,
            gw.url + "/v1/chat/completions",
            _chat(alias, stream=stream),
            timeout=aiohttp.ClientTimeout(total=300),
        )
        out[f"{alias}: status, answer bytes, s"] = (status, len(raw), round(time.perf_counter() - started, 2))
    out["peak RSS after all, MB"] = round(gw.rss()[1], 1)
    return out


PROBES: dict[str, Callable[[Gateway, aiohttp.ClientSession, AttackUpstream], Awaitable[dict[str, Any]]]] = {
    "usage": probe_usage,
    "metrics": probe_metrics,
    "abandoned": probe_abandoned,
    "ssrf": probe_ssrf,
    "echo": probe_echo,
    "responses": probe_responses,
    "budget": probe_budget,
    "fuzz": probe_fuzz,
    "memory": probe_memory,
}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    executable = turnout_executable(args.turnout)
    names = args.only.split(",") if args.only else list(PROBES)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, AttackUpstream() as upstream:
        for name in names:
            async with Gateway(executable, Path(tmp), upstream.url) as gw, aiohttp.ClientSession() as http:
                started = time.perf_counter()
                try:
                    results[name] = await PROBES[name](gw, http, upstream)
                except Exception as exc:  # a probe that breaks reports it and the others go on
                    results[name] = {"probe failed": f"{type(exc).__name__}: {exc}"}
                results[name]["probe seconds"] = round(time.perf_counter() - started, 1)
            print(f"## {name} ({args.label})\n{yaml.safe_dump(results[name], sort_keys=False)}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--turnout", help="the turnout executable (default: beside this Python)")
    parser.add_argument("--only", help="comma-separated probes: " + ", ".join(PROBES))
    parser.add_argument("--label", default="this checkout", help="a name for this run in the output")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        sys.exit("bench-hostile needs PostgreSQL at 127.0.0.1:5432 (it creates its database `hostile`)")
    results = asyncio.run(main_async(args))
    if args.json:
        args.json.write_text(json.dumps({"label": args.label, "results": results}, indent=2, default=str))


if __name__ == "__main__":
    main()
