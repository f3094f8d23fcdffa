"""Closed-loop HTTP load client for `make bench` (aiohttp; loopback targets only).

--concurrency workers each send requests back to back on their own keep-alive connection for
--warmup seconds (not measured), then for --duration seconds. Prints one JSON object: requests/s,
latency percentiles (send -> end of body), and for streams the time to the first chunk (the first
SSE `data:` event, or the first NDJSON line for Ollama). --dialect picks the request body and headers:
OpenAI Chat Completions, Ollama /api/chat, Anthropic /v1/messages or Gemini generateContent (for
Gemini, --url is the whole models/<model>:generateContent or :streamGenerateContent?alt=sse URL).
With --cpu-pid, the CPU time (utime + stime from /proc) that process tree spent during the measured
phase, per request.

    python bench/load.py --url http://127.0.0.1:4000/v1/chat/completions --model gpt-3.5-turbo \\
        --api-key sk-... --concurrency 32 --duration 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import aiohttp

LOOPBACK = ("127.0.0.1", "localhost", "::1")
PROMPT = "Hello, how are you today? Please answer briefly."


@dataclass
class Tally:
    """What the measured phase saw."""

    latencies_ms: list[float] = field(default_factory=list)
    first_chunk_ms: list[float] = field(default_factory=list)
    failures: int = 0
    first_failure: str = ""

    def fail(self, what: str) -> None:
        self.failures += 1
        self.first_failure = self.first_failure or what[:300]


def percentile(values: list[float], p: float) -> float:
    """Linear-interpolated percentile of values (0 <= p <= 100); values need not be sorted."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "p50": round(percentile(values, 50), 3),
        "p90": round(percentile(values, 90), 3),
        "p99": round(percentile(values, 99), 3),
        "mean": round(sum(values) / len(values), 3),
        "max": round(max(values), 3),
    }


DIALECTS = ("openai", "ollama", "anthropic", "gemini")


def request_body(dialect: str, model: str, stream: bool) -> bytes:
    """The chat request in a dialect. Ollama's "stream" is always explicit; Gemini names the model and
    the streaming in the URL, not the body."""
    if dialect == "gemini":
        gemini = {
            "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
            "generationConfig": {"maxOutputTokens": 64},
        }
        return json.dumps(gemini).encode()
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": PROMPT}]}
    if dialect == "ollama":
        body["stream"] = stream
        body["options"] = {"num_predict": 64}
    elif dialect == "anthropic":
        body["max_tokens"] = 64
        if stream:
            body["stream"] = True
    else:
        body["max_tokens"] = 64
        if stream:
            body["stream"] = True
    return json.dumps(body).encode()


def request_headers(dialect: str, api_key: str) -> dict[str, str]:
    """Content type plus the dialect's own authentication (and, for Anthropic, its version header)."""
    headers = {"Content-Type": "application/json"}
    if dialect == "anthropic":
        headers["anthropic-version"] = "2023-06-01"
        if api_key:
            headers["x-api-key"] = api_key
    elif dialect == "gemini":
        if api_key:
            headers["x-goog-api-key"] = api_key
    elif api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def first_chunk_marker(dialect: str) -> bytes:
    """What marks a stream's first chunk: a newline ends Ollama's first NDJSON line; the SSE dialects'
    first event starts with `data:` (for Anthropic that is message_start's data line)."""
    return b"\n" if dialect == "ollama" else b"data:"


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of pid and its descendants, in seconds (0 when pid is gone)."""
    ticks = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", "rb") as fh:
                    pending.extend(int(child) for child in fh.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


async def one_request(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str], marker: bytes | None
) -> tuple[float, float]:
    """Send one request and read the whole body: (total ms, ms until marker first seen in a stream)."""
    start = time.perf_counter()
    first = 0.0
    async with session.post(url, data=body, headers=headers) as response:
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {(await response.read())[:200]!r}")
        if marker:
            seen = b""
            keep = len(marker) - 1  # enough of the previous read to catch a marker split across two
            async for data in response.content.iter_any():
                if not first:
                    seen = seen[-keep:] + data if keep else data
                    if marker in seen:
                        first = time.perf_counter()
        else:
            await response.read()
    end = time.perf_counter()
    return (end - start) * 1e3, ((first or end) - start) * 1e3


async def run_load(args: argparse.Namespace) -> dict[str, Any]:
    headers = request_headers(args.dialect, args.api_key)
    marker = first_chunk_marker(args.dialect) if args.stream else None
    body = request_body(args.dialect, args.model, args.stream)
    connector = aiohttp.TCPConnector(limit=args.concurrency, force_close=False)
    tally = Tally()
    phase = {"measuring": False}
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=args.timeout)
    ) as session:

        async def worker(until: float) -> None:
            while time.perf_counter() < until:
                try:
                    total_ms, first_ms = await one_request(session, args.url, body, headers, marker)
                except (aiohttp.ClientError, RuntimeError, TimeoutError) as exc:
                    if phase["measuring"]:
                        tally.fail(repr(exc))
                    await asyncio.sleep(0.01)
                    continue
                if phase["measuring"]:
                    tally.latencies_ms.append(total_ms)
                    tally.first_chunk_ms.append(first_ms)

        if args.warmup > 0:
            until = time.perf_counter() + args.warmup
            await asyncio.gather(*(worker(until) for _ in range(args.concurrency)))
        phase["measuring"] = True
        cpu_before = tree_cpu_seconds(args.cpu_pid) if args.cpu_pid else 0.0
        started = time.perf_counter()
        until = started + args.duration
        await asyncio.gather(*(worker(until) for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - started
        cpu_after = tree_cpu_seconds(args.cpu_pid) if args.cpu_pid else 0.0
    count = len(tally.latencies_ms)
    result: dict[str, Any] = {
        "url": args.url,
        "dialect": args.dialect,
        "stream": args.stream,
        "concurrency": args.concurrency,
        "elapsed_s": round(elapsed, 3),
        "requests": count,
        "failures": tally.failures,
        "rps": round(count / elapsed, 1) if elapsed > 0 else 0.0,
        "latency_ms": summary(tally.latencies_ms),
        "first_chunk_ms": summary(tally.first_chunk_ms) if args.stream else None,
    }
    if tally.first_failure:
        result["first_failure"] = tally.first_failure
    if args.cpu_pid and count:
        result["cpu_s"] = round(cpu_after - cpu_before, 3)
        result["cpu_ms_per_request"] = round(1e3 * (cpu_after - cpu_before) / count, 4)
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True, help="full endpoint URL (loopback only)")
    parser.add_argument(
        "--dialect",
        choices=DIALECTS,
        default="openai",
        help="request body, headers and stream framing: OpenAI, Anthropic, Gemini (SSE) or Ollama (NDJSON)",
    )
    parser.add_argument("--model", default="gpt-3.5-turbo")
    parser.add_argument(
        "--api-key", default="", help="sent the dialect's way (Bearer, x-api-key, x-goog-api-key)"
    )
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--concurrency", "-c", type=int, default=1)
    parser.add_argument("--duration", "-d", type=float, default=8.0, help="measured seconds (default 8)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first (default 1)")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request timeout in seconds")
    parser.add_argument("--cpu-pid", type=int, default=0, help="report this process tree's CPU per request")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if urlparse(args.url).hostname not in LOOPBACK:
        print(f"load: refusing non-loopback target {args.url}", file=sys.stderr)
        return 2
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run_load(args))
    else:
        result = uvloop.run(run_load(args))
    print(json.dumps(result))
    return 0 if result["requests"] else 1


if __name__ == "__main__":
    sys.exit(main())
