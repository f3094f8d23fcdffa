"""Fernet tokens for stored credentials, without importing the `cryptography` package when possible.

Why: `cryptography` costs a process ~8 MB of resident memory (its Rust extension, and cffi), and a
gateway with a literal api key in its config decrypts it at every start. The process already has
OpenSSL's libcrypto mapped (Python's `_ssl` links it); using that costs ~0.3 MB (ctypes).

What: the Fernet spec (github.com/fernet/spec). A key is 32 bytes: the first 16 sign, the last 16
encrypt. A token is urlsafe base64 of

    0x80 | timestamp (8 bytes, big-endian) | IV (16) | AES-128-CBC(PKCS7(plaintext)) | HMAC-SHA256 (32)

with the HMAC taken over everything before it, and checked (in constant time) before decrypting.
Tokens are interchangeable with `cryptography.fernet.Fernet`'s, both ways.

How: HMAC, HKDF and the comparison from the standard library; AES-128-CBC from the libcrypto Python's
`_ssl` has already mapped, through ctypes and OpenSSL's EVP API (engine/config/libcrypto.py).

Fallback: on another OS, without such a library, with a symbol missing or on any error, the
`cryptography` package's Fernet is used, as before.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from engine.config.libcrypto import Aes128Cbc

__all__ = ["InvalidToken", "TokenCipher", "hkdf_sha256", "token_cipher"]

_VERSION = 0x80
_BLOCK = 16
_HEADER = 1 + 8 + _BLOCK  # version, timestamp, IV
_MAC = 32
_URLSAFE = re.compile(rb"[A-Za-z0-9_-]*={0,2}")


class InvalidToken(ValueError):
    """Not a token made with this key: damaged, tampered with, or made with another key."""


class TokenCipher(Protocol):
    def encrypt(self, data: bytes) -> bytes: ...

    def decrypt(self, token: bytes) -> bytes:
        """The plaintext; InvalidToken when the token was not made with this key, or is damaged."""
        ...


def hkdf_sha256(material: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 (RFC 5869) without a salt (HashLen zero bytes), as `cryptography`'s HKDF."""
    if not 0 < length <= 255 * 32:
        raise ValueError("HKDF-SHA256 gives 1 to 8160 bytes")
    prk = hmac.new(bytes(32), material, hashlib.sha256).digest()
    okm, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
    return okm[:length]


def token_cipher(key: bytes, *, native: bool = True) -> TokenCipher:
    """Fernet with a 32-byte key: from the process's libcrypto, else (or when `native` is False) from
    the `cryptography` package."""
    if len(key) != 32:
        raise ValueError("a Fernet key is 32 bytes")
    aes = _native_aes() if native else None
    return _PackageFernet(key) if aes is None else _Fernet(key, aes)


def _native_aes() -> Aes128Cbc | None:
    try:
        from engine.config.libcrypto import aes_128_cbc
    except ImportError:  # a Python without ctypes
        return None
    return aes_128_cbc()


class _Fernet:
    __slots__ = ("_aes", "_encryption_key", "_signing_key")

    def __init__(self, key: bytes, aes: Aes128Cbc) -> None:
        self._signing_key, self._encryption_key, self._aes = key[:16], key[16:], aes

    def __repr__(self) -> str:
        return "_Fernet(<hidden>)"

    def encrypt(self, data: bytes) -> bytes:
        return self.encrypt_from_parts(data, int(time.time()), os.urandom(_BLOCK))

    def encrypt_from_parts(self, data: bytes, timestamp: int, iv: bytes) -> bytes:
        """The token for a given timestamp and IV (tests compare it byte for byte)."""
        ciphertext = self._aes.encrypt(self._encryption_key, iv, data)
        body = struct.pack(">BQ", _VERSION, timestamp) + iv + ciphertext
        return base64.urlsafe_b64encode(body + self._mac(body))

    def decrypt(self, token: bytes) -> bytes:
        data = _decode(token)
        size = len(data) - _HEADER - _MAC
        if size < _BLOCK or size % _BLOCK or data[0] != _VERSION:
            raise InvalidToken
        body, mac = data[:-_MAC], data[-_MAC:]
        if not hmac.compare_digest(self._mac(body), mac):
            raise InvalidToken
        plaintext = self._aes.decrypt(self._encryption_key, body[9:_HEADER], body[_HEADER:])
        if plaintext is None:  # bad padding under a valid HMAC: made with this key, but not a token
            raise InvalidToken
        return plaintext

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._signing_key, body, hashlib.sha256).digest()


def _decode(token: bytes) -> bytes:
    """urlsafe base64 as `cryptography` reads it: whitespace ignored, padding optional, nothing else."""
    token = token.translate(None, b" \t\n\r\v\f")
    if not _URLSAFE.fullmatch(token):
        raise InvalidToken
    try:
        return base64.urlsafe_b64decode(token + b"=" * (-len(token) % 4))
    except binascii.Error:
        raise InvalidToken from None


class _PackageFernet:
    """The fallback: `cryptography`'s Fernet, its errors as ours."""

    __slots__ = ("_fernet",)

    def __init__(self, key: bytes) -> None:
        from cryptography.fernet import Fernet

        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def __repr__(self) -> str:
        return "_PackageFernet(<hidden>)"

    def encrypt(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        from cryptography.fernet import InvalidToken as PackageInvalidToken

        try:
            return self._fernet.decrypt(token)
        except PackageInvalidToken:
            raise InvalidToken from None
