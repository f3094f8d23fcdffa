"""Console sessions and CSRF tokens: values signed with HMAC-SHA256, kept by the browser in a cookie.

Nothing is stored server-side, so every worker and replica accepts the same cookie: the signing key
is derived from the salt key (or the generated key file) that every replica shares. A session names
its actor and a fingerprint of the credential that opened it; when the master key or the password
changes, the fingerprint no longer matches and the session ends (see engine/console/credentials.py).

The CSRF token is an HMAC of the session's nonce, sent back in every form (`_csrf`) or htmx request
(`X-CSRF-Token`); the sign-in form, before any session exists, carries a signed, expiring token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

__all__ = ["COOKIE_NAME", "ConsoleSession", "Signer"]

COOKIE_NAME = "turnout_console"
_SIGN_IN_FORM_TTL = 3600.0  # seconds a sign-in form may wait before it is posted


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    actor: str  # "master key" or "user:<name>", as the audit log names it
    credential: str  # fingerprint of the credential that opened the session
    expires: float  # epoch seconds
    nonce: str


class Signer:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, purpose: str, payload: bytes) -> bytes:
        return hmac.new(self._key, purpose.encode() + b"\x00" + payload, hashlib.sha256).digest()

    def sign(self, purpose: str, data: dict[str, Any]) -> str:
        payload = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
        return f"{_b64(payload)}.{_b64(self._mac(purpose, payload))}"

    def verify(self, purpose: str, token: str) -> dict[str, Any] | None:
        """The signed data, or None for anything forged, truncated or malformed."""
        if not isinstance(token, str) or len(token) > 4096:
            return None
        payload_text, _, mac_text = token.partition(".")
        try:
            payload, mac = _unb64(payload_text), _unb64(mac_text)
        except (ValueError, TypeError):
            return None
        if not hmac.compare_digest(mac, self._mac(purpose, payload)):
            return None
        try:
            data = json.loads(payload)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def fingerprint(self, credential: str) -> str:
        """Identifies a credential in a cookie without revealing it."""
        return _b64(self._mac("credential", credential.encode()))[:22]

    # sessions
    def new_session(self, actor: str, credential: str, now: float, ttl: float) -> ConsoleSession:
        return ConsoleSession(actor, self.fingerprint(credential), now + ttl, secrets.token_urlsafe(16))

    def session_cookie(self, session: ConsoleSession) -> str:
        return self.sign(
            "session", {"a": session.actor, "c": session.credential, "e": session.expires, "n": session.nonce}
        )

    def read_session(self, cookie: str | None, now: float) -> ConsoleSession | None:
        data = self.verify("session", cookie) if cookie else None
        if data is None:
            return None
        try:
            session = ConsoleSession(str(data["a"]), str(data["c"]), float(data["e"]), str(data["n"]))
        except (KeyError, TypeError, ValueError):
            return None
        return session if session.expires > now else None

    # CSRF
    def csrf_token(self, session: ConsoleSession) -> str:
        return _b64(self._mac("csrf", session.nonce.encode()))

    def csrf_ok(self, session: ConsoleSession, token: str | None) -> bool:
        return isinstance(token, str) and hmac.compare_digest(
            token.encode(), self.csrf_token(session).encode()
        )

    def sign_in_token(self, now: float) -> str:
        return self.sign("sign-in", {"e": now + _SIGN_IN_FORM_TTL})

    def sign_in_token_ok(self, token: str | None, now: float) -> bool:
        data = self.verify("sign-in", token) if token else None
        return data is not None and isinstance(data.get("e"), int | float) and data["e"] > now
