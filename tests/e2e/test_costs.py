"""`x-turnout-cost` end to end: LiteLLM cost keys in the config, priced answers through the openai SDK.

Each alias has prices imported from its `model_info` (`input_cost_per_token`, `output_cost_per_image`,
...); the fake upstream answers from the golden fixtures, and the header must be the exact product of
the usage in the answer and those prices. Streamed chat has no header (its usage comes at the end).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import FIXTURES, OLLAMA, OPENAI, golden_json, golden_stream
from tests.fakes import FakeUpstream
from tests.golden.test_golden_audio_images import upload_bytes
from tests.support import GatewayServer, running_gateway

OPS = FIXTURES / "openai" / "operations"
AUDIO = upload_bytes(2048)
TOKEN_PRICES = {"input_cost_per_token": 0.000002, "output_cost_per_token": 0.000008}


def _entry(alias: str, upstream: str, model: str = "openai/test-model", **prices: float) -> dict[str, Any]:
    base = upstream if model.startswith("ollama/") else upstream + "/v1"
    return {
        "model_name": alias,
        "litellm_params": {"model": model, "api_base": base},
        "model_info": prices,
    }


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    config = {
        "model_list": [
            _entry("priced-chat", fake.url, **TOKEN_PRICES),
            _entry("priced-ollama", fake.url, "ollama/test-model", **TOKEN_PRICES),
            _entry("unpriced-chat", fake.url),
            _entry("dall-e-3", fake.url, output_cost_per_image=0.04),
            _entry("tts-1", fake.url, input_cost_per_character=0.000015),
            _entry("whisper-1", fake.url, input_cost_per_second=0.0001),
        ]
    }
    with running_gateway(tmp_path_factory.mktemp("costs"), config) as server:
        yield server


def _transcript(fake: FakeUpstream, payload: dict[str, Any]) -> None:
    fake.add("POST", "/v1/audio/transcriptions", body=json.dumps(payload), content_type="application/json")


# ---- chat --------------------------------------------------------------------------------------


def test_chat_priced_from_usage(client: openai.OpenAI, fake: FakeUpstream) -> None:
    OPENAI.answer(fake, "simple")  # usage: 16 prompt tokens, 9 completion tokens
    raw = client.chat.completions.with_raw_response.create(
        model="priced-chat", messages=[{"role": "user", "content": "Hello"}]
    )
    # 16 x 0.000002 + 9 x 0.000008, in Decimals (floats would say 0.00010400000000000001)
    assert raw.headers["x-turnout-cost"] == "0.000104"
    assert raw.parse().choices[0].message.content


def test_translated_chat_priced_from_its_canonical_usage(client: openai.OpenAI, fake: FakeUpstream) -> None:
    OLLAMA.answer(fake, "simple")  # prompt_eval_count 16, eval_count 9 become prompt/completion tokens
    raw = client.chat.completions.with_raw_response.create(
        model="priced-ollama", messages=[{"role": "user", "content": "Hello"}]
    )
    usage = raw.parse().usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (16, 9)
    assert raw.headers["x-turnout-cost"] == "0.000104"


def test_no_prices_no_header(client: openai.OpenAI, fake: FakeUpstream) -> None:
    OPENAI.answer(fake, "simple")
    raw = client.chat.completions.with_raw_response.create(
        model="unpriced-chat", messages=[{"role": "user", "content": "Hello"}]
    )
    assert "x-turnout-cost" not in raw.headers


def test_answer_without_usage_has_no_header(client: openai.OpenAI, fake: FakeUpstream) -> None:
    answer = golden_json("openai", "simple.response.json")
    del answer["usage"]
    fake.add("POST", OPENAI.path, json=answer)
    raw = client.chat.completions.with_raw_response.create(
        model="priced-chat", messages=[{"role": "user", "content": "Hello"}]
    )
    assert "x-turnout-cost" not in raw.headers  # not known, so not guessed


def test_streamed_chat_has_no_header(http: httpx.Client, fake: FakeUpstream) -> None:
    fake.add("POST", OPENAI.path, stream=golden_stream("openai", "stream_text"))
    body = {"model": "priced-chat", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert b"[DONE]" in response.read()
    assert "x-turnout-cost" not in response.headers  # the usage log prices it once the stream ended


# ---- images, speech, transcription -------------------------------------------------------------


def test_images_priced_per_image(client: openai.OpenAI, fake: FakeUpstream) -> None:
    answer = json.loads((OPS / "images/url.response.json").read_bytes())
    answer["data"] = answer["data"] * 2
    fake.add("POST", "/v1/images/generations", json=answer)
    raw = client.images.with_raw_response.generate(model="dall-e-3", prompt="A lighthouse", n=2)
    assert raw.headers["x-turnout-cost"] == "0.08"  # 2 x 0.04
    assert len(raw.parse().data or []) == 2


def test_speech_priced_per_character_before_the_audio(client: openai.OpenAI, fake: FakeUpstream) -> None:
    audio = (OPS / "speech/mp3.response.mp3").read_bytes()
    chunks = [audio[i : i + 512] for i in range(0, len(audio), 512)]
    fake.add("POST", "/v1/audio/speech", stream=chunks, content_type="audio/mpeg", chunk_delay=0.02)
    text = "The quick brown fox."
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=text
    ) as answer:
        assert answer.headers["x-turnout-cost"] == "0.0003"  # 20 characters x 0.000015
        received = list(answer.iter_bytes())
    assert b"".join(received) == audio
    assert len(received) > 1  # still streamed


def test_verbose_json_transcription_priced_per_second(client: openai.OpenAI, fake: FakeUpstream) -> None:
    answer = json.loads((OPS / "transcriptions/verbose_json_words.response.json").read_bytes())
    del answer["usage"]  # an upstream that reports the duration only
    _transcript(fake, answer)
    raw = client.audio.transcriptions.with_raw_response.create(
        file=("a.wav", AUDIO, "audio/wav"), model="whisper-1", response_format="verbose_json"
    )
    assert answer["duration"] == 2.4700000286102295
    assert raw.headers["x-turnout-cost"] == "0.00024700000286102295"  # duration x 0.0001, exactly
    assert raw.parse().text == answer["text"]


def test_transcription_usage_seconds_win(http: httpx.Client, fake: FakeUpstream) -> None:
    """verbose_json with both: `usage.seconds` (what the upstream counts, whole seconds) is priced."""
    fixture = (OPS / "transcriptions/verbose_json_words.response.json").read_bytes()
    fake.add("POST", "/v1/audio/transcriptions", body=fixture, content_type="application/json")
    files = {"file": ("a.wav", AUDIO, "audio/wav")}
    data = {"model": "whisper-1", "response_format": "verbose_json"}
    answer = http.post("/v1/audio/transcriptions", data=data, files=files)
    assert answer.status_code == 200
    assert answer.content == fixture  # forwarded byte for byte
    assert answer.headers["x-turnout-cost"] == "0.0003"  # usage.seconds 3 x 0.0001


def test_text_transcription_is_not_priced(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", "/v1/audio/transcriptions", body="Hello there.\n", content_type="text/plain")
    raw = client.audio.transcriptions.with_raw_response.create(
        file=("a.mp3", AUDIO, "audio/mpeg"), model="whisper-1", response_format="text"
    )
    assert "x-turnout-cost" not in raw.headers  # a plain-text transcript says nothing of its duration
    assert raw.text.strip() == "Hello there."
