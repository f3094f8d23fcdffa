"""Console passwords: scrypt hashes (standard library), compared in constant time.

Format: `scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`, so the cost can rise later without breaking the
hashes already stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["MIN_PASSWORD_LENGTH", "hash_password", "verify_password"]

MIN_PASSWORD_LENGTH = 12
_N, _R, _P = 2**14, 8, 1  # ~16 MB and ~50 ms per check: slow for a guesser, fine for a sign-in


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):  # a malformed stored hash opens nothing
        return False
    return hmac.compare_digest(actual, expected)
