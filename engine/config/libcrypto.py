"""AES-128-CBC from the libcrypto this process already has mapped, through ctypes and OpenSSL's EVP API.

Python's `_ssl` links OpenSSL's libcrypto; on Linux /proc/self/maps names the file. It is opened with
RTLD_NOLOAD, so this module never loads a library (an unversioned or foreign libcrypto can abort the
process), only reuses the one mapped, and only when its OpenSSL_version_num() is the one `_ssl` reports.
The binding must pass a known-answer test before use. Anything else (another OS, a Python with OpenSSL
linked statically, a missing symbol) gives None, and the caller falls back to the `cryptography` package.
Imported only when a credential is encrypted or decrypted (ctypes costs ~0.3 MB).
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["Aes128Cbc", "aes_128_cbc"]

_BLOCK = 16


class Aes128Cbc:
    """AES-128-CBC with PKCS7 padding (EVP's default) from libcrypto's EVP API."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        ptr, buf, length = ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)
        self._new = _declare(lib.EVP_CIPHER_CTX_new, ptr, [])
        self._free = _declare(lib.EVP_CIPHER_CTX_free, None, [ptr])
        self._clear_errors = _declare(lib.ERR_clear_error, None, [])
        self._cipher = _declare(lib.EVP_aes_128_cbc, ptr, [])()
        init = [ptr, ptr, ptr, buf, buf]  # ctx, cipher, engine (NULL), key, iv
        update = [ptr, buf, length, buf, ctypes.c_int]  # ctx, out, out length, in, in length
        final = [ptr, buf, length]  # ctx, out, out length
        self._steps = {
            mode: (
                _declare(getattr(lib, f"EVP_{mode}Init_ex"), ctypes.c_int, init),
                _declare(getattr(lib, f"EVP_{mode}Update"), ctypes.c_int, update),
                _declare(getattr(lib, f"EVP_{mode}Final_ex"), ctypes.c_int, final),
            )
            for mode in ("Encrypt", "Decrypt")
        }
        if not self._cipher:
            raise OSError("EVP_aes_128_cbc gave no cipher")

    def encrypt(self, key: bytes, iv: bytes, data: bytes) -> bytes:
        out = self._run("Encrypt", key, iv, data)
        if out is None:
            raise OSError("libcrypto could not encrypt")
        return out

    def decrypt(self, key: bytes, iv: bytes, data: bytes) -> bytes | None:
        """The plaintext, or None when the padding is wrong."""
        return self._run("Decrypt", key, iv, data)

    def _run(self, mode: str, key: bytes, iv: bytes, data: bytes) -> bytes | None:
        if len(key) != _BLOCK or len(iv) != _BLOCK:
            raise ValueError("AES-128-CBC takes a 16-byte key and IV")
        init, update, final = self._steps[mode]
        ctx = self._new()
        if not ctx:
            raise MemoryError("EVP_CIPHER_CTX_new")
        try:
            out, tail = ctypes.create_string_buffer(len(data) + _BLOCK), ctypes.create_string_buffer(_BLOCK)
            written, tail_written = ctypes.c_int(0), ctypes.c_int(0)
            ok = (
                init(ctx, self._cipher, None, key, iv) == 1
                and update(ctx, out, ctypes.byref(written), data, len(data)) == 1
                and final(ctx, tail, ctypes.byref(tail_written)) == 1
            )
            if ok:
                return out.raw[: written.value] + tail.raw[: tail_written.value]
            self._clear_errors()  # leave nothing on the thread's OpenSSL error queue for `_ssl` to find
            return None
        finally:
            self._free(ctx)


def _declare(function: Any, restype: Any, argtypes: list[Any]) -> Any:
    function.restype, function.argtypes = restype, argtypes
    return function


# NIST SP 800-38A, F.2.1 (CBC-AES128.Encrypt), first block
_KAT_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
_KAT_IV = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
_KAT_IN = bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")
_KAT_OUT = bytes.fromhex("7649abac8119b246cee98e9b12e9197d")


@functools.cache
def aes_128_cbc() -> Aes128Cbc | None:
    """AES-128-CBC from the libcrypto already in the process, if it can be found and passes the test."""
    try:
        lib = _mapped_libcrypto()
        if lib is None:
            return None
        aes = Aes128Cbc(lib)
        sealed = aes.encrypt(_KAT_KEY, _KAT_IV, _KAT_IN)
        if sealed[:_BLOCK] != _KAT_OUT or aes.decrypt(_KAT_KEY, _KAT_IV, sealed) != _KAT_IN:
            return None
        return aes
    except Exception:  # a missing symbol, a failed call: not this way
        return None


def _mapped_libcrypto() -> ctypes.CDLL | None:
    """The libcrypto Python's `_ssl` uses, as mapped into this process (Linux only): a versioned
    `libcrypto.so.N` whose OpenSSL_version_num() is `_ssl`'s."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import _ssl

        maps = Path("/proc/self/maps").read_text().splitlines()
    except (ImportError, OSError):
        return None
    version = _ssl.OPENSSL_VERSION_NUMBER  # at run time: OpenSSL_version_num() of the library it uses
    paths = dict.fromkeys(line.split(maxsplit=5)[-1] for line in maps if "/libcrypto.so." in line)
    for path in paths:
        if path.startswith("/") and Path(path).name.startswith("libcrypto.so."):
            lib = _already_loaded(path)
            if lib is not None and _declare(lib.OpenSSL_version_num, ctypes.c_ulong, [])() == version:
                return lib
    return None


def _already_loaded(path: str) -> ctypes.CDLL | None:
    try:
        # RTLD_NOLOAD: the handle of the library already mapped, or an error; never a new load
        return ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_NOW)
    except OSError:  # e.g. "libcrypto.so.3 (deleted)": replaced on disk since
        return None
