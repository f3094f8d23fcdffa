"""Credentials out of text that leaves the gateway or is kept: errors, stream error events, views, logs.

A backend told a wrong key often answers with it ("Incorrect API key provided: sk-..."), whole, masked
("sk-proj-****abcd") or cut short. A `Redactor` knows every credential the gateway holds (each
deployment's api key and the credentials in its api_base, the master key, the salt key) and replaces
with `***`:

- a known credential, whole or cut short (its first `PARTIAL` characters or more);
- a masked echo of a known credential: a run ending in its last 4 characters after `**`, `...` or `…`;
- credential shapes, known or not: `Bearer <token>`, `key=` / `token=` ... values, `sk-...` strings,
  `user:password@` in URLs, runs of `***`.

It is built again with each routing table (keys change without a restart) and is only ever run on
error paths: an error's text, or a stream's bytes from its first in-band error on, never an answer.
Replacements keep JSON text valid (no quote or backslash is ever taken out).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote, urlsplit

from engine.errors import TurnoutError
from engine.routing.table import RoutingTable

__all__ = ["GENERIC", "MASK", "MAX_MESSAGE", "Redactor", "credentials_of"]

MASK = "***"
# Shorter "keys" (`none`, `EMPTY`, `dummy`) are placeholders: replacing them would garble every text.
MIN_SECRET = 8
# An echo cut short counts from this many leading characters; shorter heads ("sk-proj-") are public.
PARTIAL = 12
_TAIL = 4  # the characters a masked echo shows at its end
# An error message longer than this (a backend's whole HTML page) is cut before it is scanned: scanning
# costs time in proportion, on the event loop, and no client reads further.
MAX_MESSAGE = 16 * 1024

# a run of word characters, tried only from its start: from every position, a long run without the
# mask after it would cost quadratic time (a backend's error text is anyone's to write)
_RUN = r"(?<![\w-])[\w-]*"
# credential shapes, whoever's they are (value classes stop at quotes and backslashes: JSON stays valid)
_SHAPES = (
    # a token has a digit somewhere: "Basic authentication failed" is prose
    (re.compile(r"(?i)\b(bearer|basic)\s+(?=[\w.~+/=-]*\d)[\w.~+/=-]{8,}"), rf"\1 {MASK}"),
    (
        re.compile(r"(?i)\b((?:api[_-]?)?key|access_token|token|secret|password|sig)=[^&#\s\"'<>\\]+"),
        rf"\1={MASK}",
    ),
    (re.compile(r"(?i)(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*://)[^/@\s\"'<>\\]+@"), rf"\1{MASK}@"),
    (re.compile(rf"{_RUN}\*{{3,}}[\w-]*"), MASK),  # masked by someone else: its visible ends go too
    (re.compile(r"\bsk-[\w*-]{6,}"), f"sk-{MASK}"),
)
# query parameters of an api_base whose values are credentials
_SECRET_NAME = re.compile(r"(?i)key|token|secret|passw|sig|auth|credential|code")


class Redactor:
    """Rewrites text that may hold a credential; build one with `Redactor(credentials)`."""

    __slots__ = ("_heads", "_known", "_masked")

    def __init__(self, credentials: Iterable[str | None] = ()) -> None:
        secrets = sorted({c for c in credentials if c and len(c) >= MIN_SECRET}, key=len, reverse=True)
        self._heads: dict[str, list[str]] = {}
        for secret in secrets:
            self._heads.setdefault(secret[:PARTIAL], []).append(secret)
        self._known = _alternation(self._heads)
        tails = _alternation(secret[-_TAIL:] for secret in secrets if len(secret) >= PARTIAL)
        self._masked = None
        if tails is not None:  # "sk-proj-****abcd", "sk-...abcd": whatever stands before the mask goes too
            mask = r"(?<![*•])[*•]{2,}+|\.\.\.|…"  # a run of stars from its start, taken whole
            self._masked = re.compile(rf"{_RUN}(?:{mask})(?:{tails.pattern})(?!\w)")

    def text(self, text: str) -> str:
        if self._known is not None:
            text = self._without_known(text, self._known)
        if self._masked is not None:
            text = self._masked.sub(MASK, text)
        for pattern, replacement in _SHAPES:
            text = pattern.sub(replacement, text)
        return text

    def data(self, data: bytes) -> bytes:
        """`text` for bytes (an SSE event); bytes that are not UTF-8 go through unchanged."""
        return self.text(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")

    def error(self, error: TurnoutError) -> TurnoutError:
        """The error with its message (cut at MAX_MESSAGE), code, param and header values rewritten
        (in place)."""
        message = error.message
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + " [cut]"
        error.message = self.text(message)
        error.args = (error.message,)
        if error.code is not None:
            error.code = self.text(error.code)
        if error.param is not None:
            error.param = self.text(error.param)
        error.headers = {name: self.text(value) for name, value in error.headers.items()}
        return error

    def _without_known(self, text: str, known: re.Pattern[str]) -> str:
        """Each known credential's occurrences, and runs of its leading characters, as MASK."""
        out: list[str] = []
        done = 0
        for found in known.finditer(text):
            start = found.start()
            if start < done:  # inside a run already replaced
                continue
            end = max(start + _shared(text, start, secret) for secret in self._heads[found.group()])
            out += (text[done:start], MASK)
            done = end
        if not out:
            return text
        out.append(text[done:])
        return "".join(out)


def _alternation(pieces: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern for any of `pieces`, the longest tried first; None for none."""
    ordered = sorted(set(pieces), key=len, reverse=True)
    return re.compile("|".join(map(re.escape, ordered))) if ordered else None


def _shared(text: str, start: int, secret: str) -> int:
    """How many characters of `text` from `start` are the start of `secret`."""
    n = 0
    limit = min(len(secret), len(text) - start)
    while n < limit and text[start + n] == secret[n]:
        n += 1
    return n


def _url_credentials(url: str | None) -> list[str]:
    """The user, password and credential-like query values written into a URL."""
    if not url:
        return []
    try:
        parts = urlsplit(url)
        found = [unquote(parts.username or ""), unquote(parts.password or "")]
    except ValueError:  # a malformed URL (bad port): nothing to take out of it
        return []
    found += [value for name, value in parse_qsl(parts.query) if _SECRET_NAME.search(name)]
    return found


def credentials_of(table: RoutingTable, *others: str | None) -> list[str]:
    """Every credential in the routing table (keys, credentials in api_base URLs and in per-model
    parameters with a credential's name), and `others` (the master key, the salt key)."""
    found: list[str | None] = list(others)
    for alias in table.aliases.values():
        for deployment in alias.deployments:
            found.append(deployment.api_key)
            found += _url_credentials(deployment.api_base)
            found += [
                value
                for name, value in deployment.params.items()
                if isinstance(value, str) and _SECRET_NAME.search(name)
            ]
    return [item for item in found if item]


GENERIC = Redactor()  # credential shapes only: for tools and tests that hold no credentials
