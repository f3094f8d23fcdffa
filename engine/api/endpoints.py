"""The other OpenAI endpoints: embeddings, legacy completions, images, speech (JSON bodies) and audio
transcriptions / translations (multipart uploads). Each also answers without the /v1 prefix.
Also rerank, in the shape LiteLLM serves it, at its three paths (`/rerank`, `/v1/rerank`, `/v2/rerank`)."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.types import ASGIApp

from engine.api.auth import check_key
from engine.api.body_limits import read_body
from engine.api.respond import respond
from engine.api.state import gateway_of
from engine.errors import InvalidRequest, PayloadTooLarge
from engine.pipeline.multipart import UploadedFile
from engine.pipeline.schemas import decode_request

__all__ = ["completions", "embeddings", "images", "rerank", "speech", "transcriptions", "translations"]


async def _json_operation(request: Request[Any, Any, Any], operation: str) -> ASGIApp:
    key = check_key(request)  # see engine/api/chat.py: not a guard, on purpose
    canonical = decode_request(operation, await read_body(request))
    privacy = request.headers.get("x-turnout-privacy")
    pipeline = gateway_of(request).pipeline
    cache_control = request.headers.get("cache-control") if pipeline.caches else None
    return respond(
        await pipeline.run(operation, canonical, privacy=privacy, key=key, cache_control=cache_control)
    )


@post(["/v1/embeddings", "/embeddings"], status_code=200, opt={"operation": "embeddings"})
async def embeddings(request: Request[Any, Any, Any]) -> ASGIApp:
    return await _json_operation(request, "embeddings")


@post(
    ["/v1/completions", "/completions"],
    status_code=200,
    opt={"operation": "completions"},
)
async def completions(request: Request[Any, Any, Any]) -> ASGIApp:
    return await _json_operation(request, "completions")


@post(
    ["/v1/images/generations", "/images/generations"],
    status_code=200,
    opt={"operation": "images"},
)
async def images(request: Request[Any, Any, Any]) -> ASGIApp:
    return await _json_operation(request, "images")


@post(["/v1/rerank", "/v2/rerank", "/rerank"], status_code=200, opt={"operation": "rerank"})
async def rerank(request: Request[Any, Any, Any]) -> ASGIApp:
    return await _json_operation(request, "rerank")


@post(["/v1/audio/speech", "/audio/speech"], status_code=200, opt={"operation": "speech"})
async def speech(request: Request[Any, Any, Any]) -> ASGIApp:
    return await _json_operation(request, "speech")


# multipart fields that may repeat (OpenAI's SDKs send them as `name[]`)
_LIST_FIELDS = {"timestamp_granularities", "include"}
_NUMBER_FIELDS = {"temperature"}
_BOOLEAN_FIELDS = {"stream"}  # form fields are text: "true" / "false"


async def _upload_operation(request: Request[Any, Any, Any], operation: str) -> ASGIApp:
    api_key = check_key(request)  # before anything of the upload is read
    limit = gateway_of(request).settings.audio_max_bytes
    declared = int(request.headers.get("content-length") or 0)
    if declared > limit:
        raise PayloadTooLarge(f"the upload is {declared} bytes; the limit is {limit} bytes", param="file")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidRequest("send the audio as multipart/form-data with a `file` field", param="file")
    try:
        form = await request.form()
    except UnicodeDecodeError:  # Litestar reads a part without a filename as UTF-8 text
        raise InvalidRequest(
            "a form field is not UTF-8 text (send the audio as a file part, with a filename)", param="file"
        ) from None
    canonical: dict[str, Any] = {}
    for key, value in form.multi_items():
        name = key.removesuffix("[]")
        if hasattr(value, "read"):
            data = await value.read()
            if len(data) > limit:
                raise PayloadTooLarge(
                    f"the file is {len(data)} bytes; the limit is {limit} bytes", param=name
                )
            value = UploadedFile(
                value.filename or "upload", value.content_type or "application/octet-stream", data
            )
        if name in _LIST_FIELDS:
            canonical.setdefault(name, []).append(value)
        else:
            canonical[name] = value
    _check_upload(canonical)
    privacy = request.headers.get("x-turnout-privacy")
    pipeline = gateway_of(request).pipeline
    return respond(await pipeline.run(operation, canonical, privacy=privacy, key=api_key))


def _check_upload(canonical: dict[str, Any]) -> None:
    upload = canonical.get("file")
    if not isinstance(upload, UploadedFile):
        raise InvalidRequest("a `file` field with the audio is required", param="file")
    if not upload.data:
        raise InvalidRequest("the uploaded file is empty", param="file")
    if not (
        upload.content_type.startswith(("audio/", "video/"))
        or upload.content_type == "application/octet-stream"
    ):
        raise InvalidRequest(f"the uploaded file is {upload.content_type}, not audio", param="file")
    if not isinstance(canonical.get("model"), str) or not canonical["model"]:
        raise InvalidRequest("a `model` field is required", param="model")
    for name in _NUMBER_FIELDS & canonical.keys():
        try:
            canonical[name] = float(canonical[name])
        except (TypeError, ValueError):
            raise InvalidRequest(f"{name} must be a number", param=name) from None
    for name in _BOOLEAN_FIELDS & canonical.keys():
        flag = str(canonical[name]).lower()
        if flag not in ("true", "false"):
            raise InvalidRequest(f"{name} must be true or false", param=name)
        canonical[name] = flag == "true"


@post(
    ["/v1/audio/transcriptions", "/audio/transcriptions"],
    status_code=200,
    opt={"operation": "transcriptions", "upload": True},
)
async def transcriptions(request: Request[Any, Any, Any]) -> ASGIApp:
    return await _upload_operation(request, "transcriptions")


@post(
    ["/v1/audio/translations", "/audio/translations"],
    status_code=200,
    opt={"operation": "translations", "upload": True},
)
async def translations(request: Request[Any, Any, Any]) -> ASGIApp:
    return await _upload_operation(request, "translations")
