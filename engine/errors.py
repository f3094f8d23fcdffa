"""Every error Turnout answers with, rendered in OpenAI's shape: {"error": {message, type, param, code}}.

    TurnoutError                      500 api_error
    ├── InvalidRequest                400 invalid_request_error   bad JSON, bad fields, unsupported parameters
    │                                                             or JSON nested too deep (json_too_deep)
    │   └── PayloadTooLarge           413 invalid_request_error
    ├── AuthenticationFailed          401 authentication_error    missing or wrong key
    ├── PermissionDenied              403 permission_error
    ├── NotFound                      404 not_found_error         unknown route
    │   └── ModelNotFound             404 invalid_request_error   unknown alias (model_not_found)
    ├── RateLimited                   429 rate_limit_error        a key's rpm/tpm/parallel limit or budget
    ├── MappingFailed                 502 api_error               a mapping failed while translating: names
    │                                                             the provider (or dialect) and the request
    │                                                             id; file:line and the cause go to the log
    ├── ServerShuttingDown            503 api_error               streams still running when the grace ends
    ├── GatewayBusy                   503 api_error               too many large request bodies in memory now
    └── UpstreamError                 502 upstream_error          anything the backend did wrong
        ├── UpstreamUnavailable       502                         connection refused / reset before an answer
        ├── UpstreamTimeout           504 timeout_error
        ├── UpstreamBadResponse       502                         malformed JSON or events, HTML, broken off,
        │                                                         truncated, or larger than allowed
        └── UpstreamStatus            the backend's status        the backend answered 4xx/5xx

Messages never contain credentials or upstream URLs (query strings can hold keys), server paths or
exception text: a 500 the gateway causes itself says so and leaves the rest to its log. What a
backend's own error text echoes is taken out by engine.redact before an error leaves the pipeline. An
UpstreamError that is `retryable` (nothing has reached the client yet) hands the request to the next
deployment.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "AuthenticationFailed",
    "GatewayBusy",
    "InvalidRequest",
    "MappingFailed",
    "ModelNotFound",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "ServerShuttingDown",
    "TurnoutError",
    "UpstreamBadResponse",
    "UpstreamError",
    "UpstreamStatus",
    "UpstreamTimeout",
    "UpstreamUnavailable",
]

_encode = msgspec.json.Encoder().encode


class TurnoutError(Exception):
    status = 500
    type = "api_error"
    code: str | None = None
    request_id: str | None = None  # set once the request it ended is recorded (never recorded twice)

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def to_json(self) -> bytes:
        return _encode(self.body())


class InvalidRequest(TurnoutError):
    status = 400
    type = "invalid_request_error"


class PayloadTooLarge(InvalidRequest):
    status = 413
    code = "payload_too_large"


class AuthenticationFailed(TurnoutError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(TurnoutError):
    status = 403
    type = "permission_error"


class NotFound(TurnoutError):
    status = 404
    type = "not_found_error"


class ModelNotFound(NotFound):
    type = "invalid_request_error"
    code = "model_not_found"


class RateLimited(TurnoutError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class MappingFailed(TurnoutError):
    """A mapping raised while translating a request or its answer. The client learns whose mapping
    failed and the request id; where (file:line) and why go to the gateway's log under that id
    (engine.pipeline.translate.report_mapping_failure). The same request would fail the same way, so
    the client's SDK is told not to retry."""

    status = 502
    code = "mapping_error"

    def __init__(self, owner: str, where: str, detail: str) -> None:
        self.owner = owner  # "<provider> (<upstream model>)", "the <name> dialect"
        self.where = where  # file:line: for the log only
        self.detail = detail  # the exception: for the log only
        self.failed_request: str | None = None
        self.logged = False
        super().__init__(self._text(), headers={"x-should-retry": "false"})

    def blame(self, owner: str) -> None:
        """Name the owner the caller knows better (the deployment, rather than the file's name)."""
        self.owner = owner
        self.message = self._text()
        self.args = (self.message,)

    def name_request(self, request_id: str | None) -> None:
        self.failed_request = request_id
        self.message = self._text()
        self.args = (self.message,)

    def _text(self) -> str:
        request = f" (request {self.failed_request})" if self.failed_request else ""
        return f"the mapping for {self.owner} failed while translating{request}; see the gateway's log"


class ServerShuttingDown(TurnoutError):
    status = 503
    code = "server_shutting_down"


class GatewayBusy(TurnoutError):
    """The process holds as many request-body bytes as it may (request_body_budget_bytes): retry soon."""

    status = 503
    code = "gateway_busy"


class UpstreamError(TurnoutError):
    status = 502
    type = "upstream_error"
    # whether another try may succeed (nothing has reached the client yet): this deployment again, or
    # another one
    retryable = False
    # whether this deployment, as configured, cannot serve (its credentials or model were refused):
    # another deployment is tried, this one not again
    misconfigured = False


class UpstreamUnavailable(UpstreamError):
    code = "upstream_unavailable"
    retryable = True


class UpstreamTimeout(UpstreamError):
    status = 504
    type = "timeout_error"
    code = "upstream_timeout"
    retryable = True


class UpstreamBadResponse(UpstreamError):
    code = "upstream_bad_response"
    # raised only before anything reached the client (later it is an error event): another deployment
    # may answer properly
    retryable = True


# The backend's status, passed on; types as OpenAI names them. 529 (overloaded) is not an HTTP status
# clients know, so it becomes 503.
_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


class UpstreamStatus(UpstreamError):
    def __init__(self, upstream_status: int, message: str, **kwargs: Any) -> None:
        status = 503 if upstream_status == 529 else upstream_status
        if not 400 <= status <= 599:
            status = 502
        kwargs.setdefault(
            "type", _STATUS_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        )
        super().__init__(message, status=status, **kwargs)
        self.upstream_status = upstream_status
        self.retryable = upstream_status in (408, 429, 500, 502, 503, 504, 529)
        # the gateway's key or the deployment's model refused: the operator's fault, not the client's
        self.misconfigured = upstream_status in (401, 403, 404)
