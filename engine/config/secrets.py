"""Provider credentials: LiteLLM's `os.environ/NAME` references and encryption of literal keys in SQL.

The Fernet key is derived (HKDF-SHA256) from `Settings.salt_key`; without one, from a random key
generated once into `.turnout/secret.key` (mode 0600). Plaintext never reaches logs or error messages.
Tokens are made by engine/config/fernet.py, without importing `cryptography` where it can.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from engine.config.fernet import InvalidToken, TokenCipher, hkdf_sha256, token_cipher
from engine.settings import Settings
from engine.store.db import sqlite_path

__all__ = ["ENV_PREFIX", "SecretBox", "SecretError", "env_ref_name", "resolve_env_ref"]

ENV_PREFIX = "os.environ/"
_HKDF_INFO = b"turnout provider credentials v1"


class SecretError(ValueError):
    """A stored credential cannot be decrypted (wrong salt key or damaged value); names no secret."""


def env_ref_name(value: object) -> str | None:
    """NAME of an `os.environ/NAME` reference, or None when the value is not one."""
    if isinstance(value, str) and value.startswith(ENV_PREFIX) and len(value) > len(ENV_PREFIX):
        return value[len(ENV_PREFIX) :]
    return None


def resolve_env_ref(value: str | None) -> str | None:
    """The environment value an `os.environ/NAME` reference points at (None when unset or empty);
    any other value is returned unchanged."""
    if value is None:
        return None
    name = env_ref_name(value)
    if name is None:
        return value
    return os.environ.get(name) or None


def _key_file_material(path: Path) -> bytes:
    """Read the generated key, creating it (0600, never overwritten) on first use."""
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    material = secrets.token_urlsafe(48).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(material + b"\n")
    return material


class SecretBox:
    """Encrypts and decrypts provider credentials for storage in SQL."""

    __slots__ = ("_fernet", "_mac_key", "_material")

    def __init__(self, key_material: bytes) -> None:
        # keys are derived on first use: the cipher may import `cryptography` (~8 MB of memory) where
        # the process's libcrypto cannot serve, and a gateway whose credentials are all environment
        # references never needs it
        self._material = key_material
        self._fernet: TokenCipher | None = None
        self._mac_key: bytes | None = None

    def _cipher(self) -> TokenCipher:
        if self._fernet is None:
            self._fernet = token_cipher(hkdf_sha256(self._material, _HKDF_INFO))
        return self._fernet

    def __repr__(self) -> str:
        return "SecretBox(<hidden>)"

    @classmethod
    def from_settings(cls, settings: Settings, key_dir: Path | None = None) -> SecretBox:
        """From the salt key, else from `.turnout/secret.key` generated once in `key_dir` (default:
        beside the SQLite database file, else the working directory)."""
        if settings.salt_key:
            return cls(settings.salt_key.encode())
        if key_dir is None:
            db_file = sqlite_path(settings.database_url)
            key_dir = db_file.parent if db_file is not None else Path.cwd()
        return cls(_key_file_material(key_dir / ".turnout" / "secret.key"))

    def fingerprint(self, plaintext: str) -> str:
        """A keyed digest that identifies a credential without revealing it (used to deduplicate)."""
        if self._mac_key is None:
            self._mac_key = hkdf_sha256(self._material, _HKDF_INFO + b" fingerprint")
        return hmac.new(self._mac_key, plaintext.encode(), hashlib.sha256).hexdigest()

    def derived_key(self, purpose: bytes) -> bytes:
        """A 32-byte key for another purpose (e.g. signing console sessions), independent of the others.

        HMAC-SHA256 of the purpose under the key material (HKDF's expand step with one block), from the
        standard library: a process that signs sessions need not import `cryptography` for it."""
        info = b"turnout derived key v1: " + purpose + b"\x01"
        return hmac.new(self._material, info, hashlib.sha256).digest()

    def encrypt(self, plaintext: str) -> str:
        return self._cipher().encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._cipher().decrypt(token.encode("ascii")).decode()
        except (InvalidToken, UnicodeError) as exc:
            message = "a stored provider credential cannot be decrypted (was the salt key changed?)"
            raise SecretError(message) from exc

    def matches(self, token: str, plaintext: str) -> bool:
        """Whether a stored token holds this plaintext (Fernet tokens differ on every encryption)."""
        try:
            return self.decrypt(token) == plaintext
        except SecretError:
            return False
