"""Audio and images end to end, through the official openai SDK and raw multipart over httpx.

The fake upstream plays OpenAI (answers from the golden fixtures) and records what it was sent;
multipart bodies are read back with the golden suite's parser.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.e2e.conftest import FIXTURES, assert_error
from tests.fakes import FakeUpstream
from tests.golden.test_golden_audio_images import parse_multipart, upload_bytes
from tests.support import GatewayServer, running_gateway, sdk_types

OPS = FIXTURES / "openai" / "operations"
AUDIO = upload_bytes(2048)


def _entry(alias: str, upstream_url: str, model: str = "openai/test-model") -> dict[str, object]:
    return {"model_name": alias, "litellm_params": {"model": model, "api_base": upstream_url + "/v1"}}


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    config = {
        "model_list": [
            _entry("whisper-1", fake.url),
            _entry("tts-1", fake.url),
            _entry("dall-e-3", fake.url),
            _entry("local-chat", fake.url, "ollama/qwen3:8b"),  # Ollama offers no audio or images
        ]
    }
    with running_gateway(tmp_path_factory.mktemp("audio"), config) as server:
        yield server


def _sent_form(fake: FakeUpstream) -> dict[str, object]:
    return parse_multipart(fake.last.headers["content-type"], fake.last.body)


# ---- transcriptions and translations through the SDK -------------------------------------------


def test_transcription_json(client: openai.OpenAI, fake: FakeUpstream, tmp_path: Path) -> None:
    fake.add(
        "POST",
        "/v1/audio/transcriptions",
        body=(OPS / "transcriptions/json.response.json").read_bytes(),
        content_type="application/json",
    )
    audio = tmp_path / "speech.mp3"
    audio.write_bytes(AUDIO)
    with audio.open("rb") as handle:
        result = client.audio.transcriptions.create(file=handle, model="whisper-1", response_format="json")
    assert result.text.startswith("The forecast for Barcelona")
    form = _sent_form(fake)
    assert form["model"] == "test-model"
    assert form["file"]["filename"] == "speech.mp3"  # type: ignore[index]
    assert form["file"]["size"] == len(AUDIO)  # type: ignore[index]


def test_transcription_text(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add("POST", "/v1/audio/transcriptions", body="Hello there.\n", content_type="text/plain")
    text = client.audio.transcriptions.create(
        file=("a.mp3", AUDIO, "audio/mpeg"), model="whisper-1", response_format="text"
    )
    assert text.strip() == "Hello there."
    assert _sent_form(fake)["response_format"] == "text"


def test_transcription_verbose_json_words(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add(
        "POST",
        "/v1/audio/transcriptions",
        body=(OPS / "transcriptions/verbose_json_words.response.json").read_bytes(),
        content_type="application/json",
    )
    result = client.audio.transcriptions.create(
        file=("a.wav", AUDIO, "audio/wav"),
        model="whisper-1",
        response_format="verbose_json",
        timestamp_granularities=["word"],
    )
    assert result.words is not None and result.words[0].word == "The"
    form = _sent_form(fake)
    assert form["timestamp_granularities[]"] == ["word"]
    assert form["response_format"] == "verbose_json"


def test_translation(client: openai.OpenAI, fake: FakeUpstream) -> None:
    fake.add(
        "POST",
        "/v1/audio/translations",
        body=(OPS / "translations/json.response.json").read_bytes(),
        content_type="application/json",
    )
    result = client.audio.translations.create(file=("de.m4a", AUDIO, "audio/mp4"), model="whisper-1")
    assert result.text.startswith("Hello, my name is Wolfgang")
    assert fake.last.path == "/v1/audio/translations"
    assert _sent_form(fake)["model"] == "test-model"


# ---- speech: audio streams back as it arrives --------------------------------------------------


def test_speech_streams_audio(client: openai.OpenAI, fake: FakeUpstream) -> None:
    audio = (OPS / "speech/mp3.response.mp3").read_bytes()
    chunks = [audio[i : i + 512] for i in range(0, len(audio), 512)]
    fake.add("POST", "/v1/audio/speech", stream=chunks, content_type="audio/mpeg", chunk_delay=0.05)
    received = []
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input="The quick brown fox."
    ) as response:
        assert response.headers["content-type"] == "audio/mpeg"
        for piece in response.iter_bytes():
            received.append(piece)
    assert b"".join(received) == audio
    assert len(received) > 1  # forwarded piece by piece, not collected first
    assert fake.last.json == {"model": "test-model", "voice": "alloy", "input": "The quick brown fox."}


# ---- images ------------------------------------------------------------------------------------


@pytest.mark.parametrize("response_format", ["url", "b64_json"])
def test_images(client: openai.OpenAI, fake: FakeUpstream, response_format: str) -> None:
    fixture = (OPS / f"images/{response_format}.response.json").read_bytes()
    fake.add("POST", "/v1/images/generations", body=fixture, content_type="application/json")
    result = client.images.generate(
        model="dall-e-3",
        prompt="A lighthouse",
        size="1024x1024",
        response_format=response_format,  # type: ignore[arg-type]
    )
    assert result.data is not None
    image = result.data[0]
    if response_format == "url":
        assert image.url and image.url.startswith("https://")
    else:
        assert image.b64_json and base64.b64decode(image.b64_json).startswith(b"\x89PNG")
    assert fake.last.json["response_format"] == response_format
    assert fake.last.json["model"] == "test-model"


# ---- multipart edge cases over httpx -----------------------------------------------------------


def _post(http: httpx.Client, **kwargs: object) -> httpx.Response:
    return http.post("/v1/audio/transcriptions", **kwargs)  # type: ignore[arg-type]


def test_missing_file(http: httpx.Client, fake: FakeUpstream) -> None:
    error = assert_error(_post(http, data={"model": "whisper-1"}, files={"other": ("x", b"1")}), 400)
    assert error["param"] == "file"
    assert not fake.requests


def test_wrong_file_type(http: httpx.Client, fake: FakeUpstream) -> None:
    files = {"file": ("cat.png", b"\x89PNG....", "image/png")}
    error = assert_error(_post(http, data={"model": "whisper-1"}, files=files), 400)
    assert "image/png" in error["message"]
    assert not fake.requests


def test_missing_model(http: httpx.Client, fake: FakeUpstream) -> None:
    error = assert_error(_post(http, files={"file": ("a.mp3", AUDIO, "audio/mpeg")}), 400)
    assert error["param"] == "model"


def test_empty_file(http: httpx.Client, fake: FakeUpstream) -> None:
    files = {"file": ("a.mp3", b"", "audio/mpeg")}
    error = assert_error(_post(http, data={"model": "whisper-1"}, files=files), 400)
    assert "empty" in error["message"]


def test_not_multipart(http: httpx.Client) -> None:
    assert_error(http.post("/v1/audio/transcriptions", json={"model": "whisper-1"}), 400)


def test_too_large(fake: FakeUpstream, tmp_path: Path) -> None:
    config = {"model_list": [_entry("whisper-1", fake.url)]}
    with running_gateway(tmp_path, config, audio_max_bytes=1000) as server:
        files = {"file": ("a.mp3", bytes(5000), "audio/mpeg")}
        answer = sdk_types.post(f"{server.v1}/audio/transcriptions", data={"model": "whisper-1"}, files=files)
    assert_error(answer, 413)
    assert not fake.requests


@pytest.mark.parametrize(
    ("route", "body", "operation"),
    [
        ("/v1/audio/speech", {"model": "local-chat", "input": "hi", "voice": "alloy"}, "speech"),
        ("/v1/images/generations", {"model": "local-chat", "prompt": "a cat"}, "image generation"),
    ],
)
def test_alias_without_the_operation(
    http: httpx.Client, fake: FakeUpstream, route: str, body: dict[str, str], operation: str
) -> None:
    error = assert_error(http.post(route, json=body), 400, code="unsupported_operation")
    assert "'local-chat'" in error["message"] and operation in error["message"]
    assert not fake.requests


def test_transcription_alias_without_the_operation(http: httpx.Client, fake: FakeUpstream) -> None:
    files = {"file": ("a.mp3", AUDIO, "audio/mpeg")}
    error = assert_error(
        _post(http, data={"model": "local-chat"}, files=files), 400, code="unsupported_operation"
    )
    assert "'local-chat'" in error["message"] and "audio transcriptions" in error["message"]
