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

from tests.e2e.conftest import OLLAMA, OPENAI, golden_json, golden_stream
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
            time.sleep(1.5)  # load, with requests in flight
            with lock:
                before = len(answered)
            status = server.stop()
            stop.set()
            for thread in threads:
                thread.join(timeout=30)

    assert before > 20, f"the load did not get going ({before} answers)"
    assert status in (0, -15), server.stderr[-3000:]
    assert "Traceback" not in server.stderr, server.stderr[-3000:]
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        logged = {row[0] for row in connection.execute(text("SELECT request_id FROM request_log"))}
    engine.dispose()
    missing = set(answered) - logged
    assert not missing, f"{len(missing)} of {len(answered)} answered requests have no row"
    assert len(answered) >= before
