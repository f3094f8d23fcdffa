"""SIGTERM under load: the server finishes what it has begun, and every answered request has its row.

The usage recorder is set to flush only every 30 s, so the rows of this test are all still in memory
when the signal arrives: they reach SQL only through the flush at shutdown.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import yaml
from sqlalchemy import create_engine, text

from tests.e2e.conftest import OLLAMA, OPENAI, golden_json, golden_stream, sse_events
from tests.fakes import FakeUpstream
from tests.support.process import turnout_process

CLIENTS = 8


def test_sigterm_under_load_loses_no_record(tmp_path: Path) -> None:
    database = tmp_path / "turnout.db"
    with FakeUpstream() as fake:
        fake.add("POST", OPENAI.path, json=golden_json("openai", "simple.response.json"), delay=0.02)
        fake.add("POST", OLLAMA.path, stream=golden_stream("ollama", "stream_text"), chunk_delay=0.02)
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({"model_list": [OLLAMA.entry(fake.url), OPENAI.entry(fake.url)]}))
        answered: list[str] = []
        refused = 0
        lock = threading.Lock()
        stop = threading.Event()

        def client(n: int, url: str) -> None:
            nonlocal refused
            stream = n % 4 == 0  # a quarter of the clients stream
            body = {"model": OLLAMA.alias if stream else OPENAI.alias, "stream": stream}
            body["messages"] = [{"role": "user", "content": "Hi"}]
            with httpx.Client(base_url=url, timeout=30) as http:
                while not stop.is_set():
                    try:
                        response = http.post("/v1/chat/completions", json=body)
                        response.read()
                    except httpx.TransportError:  # the server has stopped listening
                        with lock:
                            refused += 1
                        if stop.wait(0.01):
                            return
                        continue
                    if response.status_code == 200:
                        with lock:
                            answered.append(response.headers["x-turnout-request-id"])

        with turnout_process(
            tmp_path,
            config,
            database_url=f"sqlite+aiosqlite:///{database}",
            usage_flush_interval="30",
        ) as server:
            threads = [threading.Thread(target=client, args=(n, server.url)) for n in range(CLIENTS)]
            for thread in threads:
                thread.start()
            before = _wait_for_answers(answered, lock, 50)  # load, with requests in flight
            status = server.stop()
            stop.set()
            for thread in threads:
                thread.join(timeout=30)

    assert status in (0, -15), server.stderr[-3000:]
    assert "Traceback" not in server.stderr, server.stderr[-3000:]
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        logged = {row[0] for row in connection.execute(text("SELECT request_id FROM request_log"))}
    engine.dispose()
    missing = set(answered) - logged
    assert not missing, f"{len(missing)} of {len(answered)} answered requests have no row"
    assert len(answered) >= before


def _wait_for_answers(answered: list[str], lock: threading.Lock, count: int) -> int:
    """Wait (on the condition, not the clock) until `count` requests were answered; how many were."""
    deadline = time.monotonic() + 60
    while True:
        with lock:
            if len(answered) >= count:
                return len(answered)
        assert time.monotonic() < deadline, f"the load did not get going ({len(answered)} answers)"
        time.sleep(0.01)


def test_streams_still_running_when_the_grace_ends_get_an_error_event_and_a_row(tmp_path: Path) -> None:
    """A stream longer than `shutdown_grace` is not cut mid-event: an error event, then its end, and its
    row says why. Both wire formats: the OpenAI chat stream and a dialect's (Anthropic Messages)."""
    database = tmp_path / "turnout.db"
    with FakeUpstream() as fake:
        first, content = golden_stream("openai", "stream_text")[:2]
        fake.add("POST", OPENAI.path, stream=[first, *[content] * 100_000], chunk_delay=0.05)  # no end
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({"model_list": [OPENAI.entry(fake.url)]}))
        with turnout_process(
            tmp_path, config, database_url=f"sqlite+aiosqlite:///{database}", shutdown_grace="1"
        ) as server:
            clients = [
                _Streamer(server.url + "/v1/chat/completions", {"model": OPENAI.alias, "stream": True}),
                _Streamer(
                    server.url + "/v1/messages", {"model": OPENAI.alias, "max_tokens": 5, "stream": True}
                ),
            ]
            for streamer in clients:
                streamer.start()
            for streamer in clients:
                assert streamer.running.wait(20), "the stream did not start"
            status = server.stop()
            for streamer in clients:
                streamer.join(30)

    assert status in (0, -15), server.stderr[-3000:]
    assert "Traceback" not in server.stderr, server.stderr[-3000:]
    chat, messages = clients
    assert chat.problem is None, f"the chat stream was cut: {chat.problem!r}"
    events = sse_events(chat.body)
    assert events[-1]["error"]["code"] == "server_shutting_down", events[-3:]
    assert "shutting down" in events[-1]["error"]["message"]
    assert messages.problem is None, f"the messages stream was cut: {messages.problem!r}"
    last = sse_events(messages.body)[-1]
    assert last["type"] == "error" and "shutting down" in last["error"]["message"], last
    assert b"event: error" in messages.body
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        rows = {
            row[0]: row[1:]
            for row in connection.execute(text("SELECT request_id, status, error_code FROM request_log"))
        }
    engine.dispose()
    for streamer in clients:
        assert rows[streamer.request_id] == (503, "server_shutting_down")


class _Streamer(threading.Thread):
    """Reads one stream to its end in the background: its body, or what broke it."""

    def __init__(self, url: str, body: dict[str, object]) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.payload = {**body, "messages": [{"role": "user", "content": "Tell me a long story"}]}
        self.running = threading.Event()
        self.request_id = ""
        self.body = b""
        self.problem: Exception | None = None

    def run(self) -> None:
        try:
            with httpx.stream("POST", self.url, json=self.payload, timeout=30) as response:
                assert response.status_code == 200, response.read()
                self.request_id = response.headers["x-turnout-request-id"]
                for chunk in response.iter_bytes():
                    self.body += chunk
                    self.running.set()
        except Exception as exc:  # the test reports it
            self.problem = exc
        finally:
            self.running.set()
