"""An upstream exchange as golden files, with every credential taken out.

- The answer becomes the scenario's fixture, in the kind tests/golden names: `<name>.response.json`
  (a whole 200 body), `<name>.stream.txt` (the raw stream, as framed) or `<name>.error.json`
  (`{"status", "headers", "body"}`).
- The request becomes `recorded/<name>.request.json`, in the shape of the golden request snapshots
  (method, path, headers, body, query): the keys the gateway sent read `<upstream key>`, the proxy's
  address reads `http://upstream.test`, as in tests/golden/snapshots.

Known keys (the one recorded with, the deliberately wrong one) are replaced wherever they appear,
whole, cut short or masked; credential shapes nobody told us about (`Bearer ...`, `key=...`, `sk-...`)
go too (engine/redact.py). Headers and query parameters named like credentials never keep their value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from engine.record.proxy import Exchange
from engine.redact import Redactor

__all__ = [
    "CREDENTIAL_NAME",
    "KEY_PLACEHOLDER",
    "UPSTREAM",
    "Fixture",
    "Scrubber",
    "answer_fixture",
    "dump_json",
    "request_record",
]

KEY_PLACEHOLDER = "<upstream key>"
UPSTREAM = "http://upstream.test"  # the golden snapshots' name for the upstream's address
CREDENTIAL_NAME = re.compile(r"(?i)key|token|secret|passw|auth|cookie|sig|credential")
# the answer headers an error fixture keeps: its type, and what tells a client when to try again
_KEPT = re.compile(r"(?i)^(content-type|retry-after(-ms)?|.*ratelimit.*|x-should-retry)$")
# request headers that say nothing about the translation (the proxy's and the HTTP client's own)
_TRANSPORT = {"host", "content-length", "accept-encoding", "connection", "user-agent", "accept"}


def dump_json(value: Any) -> str:
    """JSON as the golden files hold it: two-space indents, keys sorted only for snapshots."""
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


class Scrubber:
    """Takes the known keys and every credential shape out of text, headers and query strings."""

    def __init__(self, keys: Iterable[str], proxy_url: str) -> None:
        self._keys = sorted({k for k in keys if k}, key=len, reverse=True)
        self._redactor = Redactor(self._keys)
        self._proxy_url = proxy_url

    def text(self, text: str) -> str:
        """Known keys as `<upstream key>` where whole, then anything else credential-like as `***`."""
        for key in self._keys:
            text = text.replace(key, KEY_PLACEHOLDER)
        if self._proxy_url:
            text = text.replace(self._proxy_url, UPSTREAM)
        return self._redactor.text(text)

    def named(self, name: str, value: str) -> str:
        """A header's or query parameter's value; one named like a credential keeps no secret at all."""
        value = self.text(value)
        if CREDENTIAL_NAME.search(name) and KEY_PLACEHOLDER not in value:
            return "<redacted>"
        return value


@dataclass(frozen=True)
class Fixture:
    file: str  # e.g. "simple.response.json"
    content: str


def answer_fixture(name: str, exchange: Exchange, scrub: Scrubber, *, stream: bool) -> Fixture:
    """The fixture the golden suite replays for scenario `name`."""
    text = scrub.text(exchange.answer.decode("utf-8", "replace"))
    if exchange.status != 200:
        headers = {
            k: scrub.named(k, v) for k, v in sorted(exchange.response_headers.items()) if _KEPT.match(k)
        }
        error = {"status": exchange.status, "headers": headers, "body": _json_or_text(text)}
        return Fixture(f"{name}.error.json", dump_json(error))
    if stream:
        return Fixture(f"{name}.stream.txt", text)
    return Fixture(f"{name}.response.json", dump_json(_json_or_text(text)))


def request_record(exchange: Exchange, scrub: Scrubber, *, shorten: str | None = None) -> str:
    """What the gateway sent upstream, in the golden request snapshots' shape (keys sorted); `shorten`
    is a run of padding to show as its length."""
    headers = {k: scrub.named(k, v) for k, v in exchange.headers.items() if k not in _TRANSPORT}
    text = scrub.text(exchange.body.decode("utf-8", "replace"))
    if shorten:
        text = text.replace(shorten, f"<{len(shorten)} characters of padding>")
    record: dict[str, Any] = {
        "method": exchange.method,
        "path": exchange.path,
        "headers": headers,
        "body": _json_or_text(text) if text else None,
    }
    if exchange.query:
        record["query"] = {k: scrub.named(k, v) for k, v in exchange.query}
    return json.dumps(record, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
