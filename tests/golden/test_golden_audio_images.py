"""Audio and image operations x the backends that offer them: the exact upstream request and the answer.

Scenarios are `operations/<operation>/<scenario>.yaml` (the client's request; `file` describes the
upload of multipart operations). Each provider's `fixtures/<provider>/operations/audio_images.backend.yaml`
says how to route to it, and `fixtures/<provider>/operations/<operation>/<scenario>.response.<ext>` is the
upstream's answer, shaped as that provider documents it. A scenario the provider cannot serve is
listed under `refused` with the reason; its snapshot pins Turnout's own 400 and shows that nothing was
sent upstream. Snapshots: `snapshots/<provider>/operations/<operation>/<scenario>.{request,response}.json`,
with multipart bodies parsed into fields (files as name, type, size and digest; no random boundaries).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import yaml
from syrupy.assertion import SnapshotAssertion

from tests.fakes import FakeUpstream
from tests.golden.support import SNAPSHOTS, snapshot_extension, turnout_headers
from tests.support import GatewayServer, running_gateway
from tests.support.sdk_types import problems as sdk_problems

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
PROVIDERS = ("openai", "azure", "mistral")
SCENARIOS = sorted(f"{p.parent.name}/{p.stem}" for p in (HERE / "operations").glob("*/*.yaml"))
ROUTES = {
    "transcriptions": "/audio/transcriptions",
    "translations": "/audio/translations",
    "speech": "/audio/speech",
    "images": "/images/generations",
}
MULTIPART = {"transcriptions", "translations"}
CONTENT_TYPES = {".json": "application/json", ".txt": "text/plain", ".mp3": "audio/mpeg"}


def _backend(provider: str) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(
        (FIXTURES / provider / "operations" / "audio_images.backend.yaml").read_text()
    )
    return spec


# snapshots/<provider>/operations/<operation>/<scenario>.<kind>.json, for parameter `case` = "<op>/<scenario>"
OperationSnapshot = snapshot_extension(
    lambda p: (
        str(SNAPSHOTS / p["provider"] / "operations" / p["case"].split("/")[0]) if "case" in p else None
    ),
    lambda p: p["case"].split("/")[1] if "case" in p else None,
)


@dataclass
class Harness:
    fake: FakeUpstream
    gateway: GatewayServer


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """One gateway with an alias `golden-<provider>-<operation>` per provider and operation."""
    with FakeUpstream() as fake:
        model_list = []
        for provider in PROVIDERS:
            spec = _backend(provider)
            for operation, route in spec["operations"].items():
                params = {
                    **(spec.get("litellm_params") or {}),
                    "model": route["model"],
                    "api_base": fake.url + spec.get("api_base_suffix", ""),
                    "api_key": "sk-upstream-secret",
                }
                model_list.append({"model_name": f"golden-{provider}-{operation}", "litellm_params": params})
        with running_gateway(tmp_path_factory.mktemp("golden-ops"), {"model_list": model_list}) as gateway:
            yield Harness(fake, gateway)


def upload_bytes(size: int) -> bytes:
    """Deterministic stand-in audio of `size` bytes (the gateway forwards it unread)."""
    return bytes((i * 7 + 3) % 256 for i in range(size))


def parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """The fields of a multipart/form-data body: text as text, files as name/type/size/digest;
    a field sent more than once (`name[]`) as a list."""
    boundary = re.search(r'boundary="?([^";]+)"?', content_type)
    assert boundary, content_type
    fields: dict[str, Any] = {}
    for part in body.split(b"--" + boundary.group(1).encode())[1:]:
        if part.startswith(b"--"):
            break
        head, _, payload = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        payload = payload.removesuffix(b"\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n") if ": " in line)
        disposition = headers["Content-Disposition"]
        name = re.search(r'name="([^"]*)"', disposition)
        filename = re.search(r'filename="([^"]*)"', disposition)
        assert name, disposition
        value: Any = (
            payload.decode()
            if not filename
            else {
                "filename": filename.group(1),
                "content_type": headers.get("Content-Type"),
                "size": len(payload),
                "sha256": hashlib.sha256(payload).hexdigest()[:16],
            }
        )
        key = name.group(1)
        if key.endswith("[]"):
            fields.setdefault(key, []).append(value)
        else:
            assert key not in fields, f"field {key} sent twice"
            fields[key] = value
    return fields


def _upstream_request(fake: FakeUpstream) -> dict[str, Any] | None:
    sent = [r for r in fake.requests if r.method == "POST"]
    if not sent:
        return None
    last = sent[-1]
    content_type = last.headers.get("content-type", "")
    headers = {
        k: re.sub(r"sk-[\w-]+", "<upstream key>", v)
        for k, v in last.headers.items()
        if k in {"authorization", "api-key"}
    }
    headers["content-type"] = re.sub(r"boundary=[\w-]+", "boundary=<boundary>", content_type)
    snapshot: dict[str, Any] = {"method": last.method, "path": last.path, "headers": headers}
    if last.query:
        snapshot["query"] = last.query
    if content_type.startswith("multipart/form-data"):
        snapshot["form"] = parse_multipart(content_type, last.body)
    else:
        snapshot["body"] = last.json
    return snapshot


def _answer(response: httpx.Response) -> dict[str, Any]:
    headers = turnout_headers(response)
    content_type = response.headers.get("content-type", "")
    result: dict[str, Any] = {
        "status": response.status_code,
        "headers": headers,
        "content_type": content_type,
    }
    if content_type.startswith("application/json"):
        result["body"] = response.json()
    elif content_type.startswith("text/"):
        result["text"] = response.text
    else:
        result["audio"] = {
            "size": len(response.content),
            "sha256": hashlib.sha256(response.content).hexdigest()[:16],
        }
    return result


def _script(fake: FakeUpstream, path: str, fixture: Path) -> None:
    content_type = CONTENT_TYPES[fixture.suffix]
    if fixture.suffix == ".json":
        fake.add("POST", path, json=msgspec.json.decode(fixture.read_bytes()), times=1)
    elif fixture.suffix == ".mp3":  # audio arrives in pieces, as a TTS backend sends it while it speaks
        data = fixture.read_bytes()
        chunks = [data[i : i + 1024] for i in range(0, len(data), 1024)]
        fake.add("POST", path, stream=chunks, content_type=content_type, times=1)
    else:
        fake.add("POST", path, body=fixture.read_bytes(), content_type=content_type, times=1)


def _send(gateway: GatewayServer, operation: str, scenario: dict[str, Any], alias: str) -> httpx.Response:
    url = f"{gateway.v1}{ROUTES[operation]}"
    request = {**scenario["request"], "model": alias}
    if operation not in MULTIPART:
        return httpx.post(url, json=request, timeout=10)
    upload = scenario["file"]
    files = {"file": (upload["name"], upload_bytes(upload["size"]), upload["content_type"])}
    return httpx.post(url, data=request, files=files, timeout=10)


@pytest.fixture
def operation_snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(OperationSnapshot)


@pytest.mark.parametrize("case", SCENARIOS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_operation(provider: str, case: str, harness: Harness, operation_snapshot: SnapshotAssertion) -> None:
    operation, name = case.split("/")
    backend = _backend(provider)
    scenario = yaml.safe_load((HERE / "operations" / operation / f"{name}.yaml").read_text())
    refused = (backend.get("refused") or {}).get(case)
    fake = harness.fake
    fake.clear()
    if not refused:
        found = list((FIXTURES / provider / "operations" / operation).glob(f"{name}.response.*"))
        assert len(found) == 1, f"{provider}/{case}: expected one fixture, found {found}"
        _script(fake, backend["operations"][operation]["path"], found[0])

    answer = _send(harness.gateway, operation, scenario, f"golden-{provider}-{operation}")

    sent = _upstream_request(fake)
    if refused:
        assert sent is None, "a refused request must not reach the upstream"
        assert answer.status_code == 400, answer.text
    else:
        assert answer.status_code == 200, answer.text
    assert sent == operation_snapshot(name="request")
    assert _answer(answer) == operation_snapshot(name="response")
    assert sdk_problems(answer) == []  # JSON transcripts, images and errors are the openai SDK's types
