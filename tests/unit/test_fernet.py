"""Fernet tokens from the standard library and the process's libcrypto (engine/config/fernet.py): the
same tokens as `cryptography`'s, both ways, and every damaged token refused alike."""

from __future__ import annotations

import _ssl
import base64
import hashlib
import hmac
import random
import sys
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from engine.config import fernet, libcrypto
from engine.config.fernet import InvalidToken, TokenCipher, hkdf_sha256, token_cipher
from engine.config.secrets import SecretBox, SecretError

KEY = bytes(range(32))
_rng = random.Random(12)
LENGTHS = sorted({0, 1, 15, 16, 17, 31, 32, 33, 1000, *(_rng.randrange(2000) for _ in range(20))})
TEXTS = ["", "sk-ascii", "clé-é", "日本語のキー", "🔑" * 50]


@pytest.fixture(autouse=True)
def _fresh_binding() -> Iterator[None]:
    """Tests below change what the binding finds: each starts, and leaves, with a fresh look."""
    libcrypto.aes_128_cbc.cache_clear()
    yield
    libcrypto.aes_128_cbc.cache_clear()


def _package(key: bytes = KEY) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(key))


def _native(key: bytes = KEY) -> TokenCipher:
    cipher = token_cipher(key)
    assert type(cipher).__name__ == "_Fernet", "this test needs the libcrypto path (Linux with OpenSSL)"
    return cipher


def test_the_libcrypto_path_is_taken_on_linux() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("the libcrypto binding is Linux-only")
    assert libcrypto.aes_128_cbc() is not None
    _native()


@pytest.mark.parametrize("length", LENGTHS)
def test_tokens_interoperate_with_cryptography_both_ways(length: int) -> None:
    data = _rng.randbytes(length)
    ours, theirs = _native(), _package()
    assert theirs.decrypt(ours.encrypt(data)) == data
    assert ours.decrypt(theirs.encrypt(data)) == data
    assert ours.decrypt(ours.encrypt(data)) == data


@pytest.mark.parametrize("length", [0, 15, 16, 17, 1000])
def test_the_same_parts_give_the_same_token_byte_for_byte(length: int) -> None:
    data, iv = _rng.randbytes(length), _rng.randbytes(16)
    ours = _native()
    assert isinstance(ours, fernet._Fernet)
    assert ours.encrypt_from_parts(data, 1_700_000_000, iv) == _package()._encrypt_from_parts(
        data, 1_700_000_000, iv
    )


def test_non_ascii_credentials_round_trip_through_either_implementation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    native = SecretBox(b"material")
    tokens = [native.encrypt(text) for text in TEXTS]
    monkeypatch.setattr(fernet, "_native_aes", lambda: None)
    package = SecretBox(b"material")
    assert [package.decrypt(token) for token in tokens] == TEXTS
    assert [native.decrypt(package.encrypt(text)) for text in TEXTS] == TEXTS


def test_hkdf_equals_cryptography() -> None:
    for material, info, length in [
        (b"", b"", 32),
        (b"salt key", b"turnout provider credentials v1", 32),
        (b"\x00" * 100, b"info" * 40, 33),
        (_rng.randbytes(64), b"x", 100),
        (b"m", b"", 255 * 32),
    ]:
        theirs = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(material)
        assert hkdf_sha256(material, info, length) == theirs


def test_hkdf_rfc5869_test_case_3() -> None:
    """No salt, no info (RFC 5869, A.3)."""
    okm = "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    assert hkdf_sha256(b"\x0b" * 22, b"", 42).hex() == okm
    with pytest.raises(ValueError):
        hkdf_sha256(b"m", b"", 255 * 32 + 1)


def test_tokens_stored_before_keep_decrypting_and_fingerprints_stay() -> None:
    """What SecretBox stored with cryptography's HKDF and Fernet opens the same with ours."""
    info = b"turnout provider credentials v1"
    old_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(b"salt one")
    stored = _package(old_key).encrypt(b"sk-secret")
    box = SecretBox(b"salt one")
    assert box.decrypt(stored.decode()) == "sk-secret"
    old_mac = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info + b" fingerprint").derive(
        b"salt one"
    )
    assert box.fingerprint("sk") == hmac.new(old_mac, b"sk", hashlib.sha256).hexdigest()


@pytest.mark.parametrize("native", [True, False], ids=["libcrypto", "package"])
def test_changing_any_byte_of_a_token_makes_it_invalid(native: bool) -> None:
    cipher = token_cipher(KEY, native=native)
    raw = base64.urlsafe_b64decode(cipher.encrypt(b"sk-0123456789abcdef-more-than-a-block"))
    for position in range(len(raw)):
        for flip in (0x01, 0x80):
            damaged = bytearray(raw)
            damaged[position] ^= flip
            with pytest.raises(InvalidToken):
                cipher.decrypt(base64.urlsafe_b64encode(damaged))
    for cut in (raw[:-1], raw[:-16], raw[:57], raw[1:], raw + b"\x00", raw + bytes(16)):
        with pytest.raises(InvalidToken):
            cipher.decrypt(base64.urlsafe_b64encode(cut))


@pytest.mark.parametrize("native", [True, False], ids=["libcrypto", "package"])
def test_malformed_tokens_are_invalid(native: bool) -> None:
    cipher = token_cipher(KEY, native=native)
    for token in [b"", b"!!!!", b"gA", b"gAAAAA", b"=" * 10, base64.urlsafe_b64encode(bytes(200))]:
        with pytest.raises(InvalidToken):
            cipher.decrypt(token)
    with pytest.raises(InvalidToken):
        token_cipher(bytes(32), native=native).decrypt(cipher.encrypt(b"sk"))  # another key


def test_token_spellings_are_read_as_cryptography_reads_them() -> None:
    """Whitespace anywhere and missing padding are accepted by both; anything else by neither."""
    ours, theirs = _native(), _package()
    token = ours.encrypt(b"sk-secret")
    variants = {
        "as made": token,
        "no padding": token.rstrip(b"="),
        "one pad short": token[:-1],
        "newline after": token + b"\n",
        "spaces inside": token[:20] + b" \r\n\t" + token[20:],
        "data after padding": token + b"A",
        "extra padding": token + b"=",
        "standard alphabet": token[:30] + b"+/" + token[32:],
        "NUL": token + b"\x00",
        "dot": token[:20] + b"." + token[20:],
        "non-ASCII": token + "é".encode(),
    }
    for name, variant in variants.items():
        try:
            expected = theirs.decrypt(variant)
        except Exception:
            with pytest.raises(InvalidToken):
                ours.decrypt(variant)
        else:
            assert ours.decrypt(variant) == expected, name


def _signed(body: bytes, key: bytes = KEY) -> bytes:
    return base64.urlsafe_b64encode(body + hmac.new(key[:16], body, hashlib.sha256).digest())


def test_a_signed_token_with_a_bad_version_or_bad_padding_is_invalid() -> None:
    """Only a holder of the key can make these; they are refused all the same, after the HMAC."""
    cipher = _native()
    raw = base64.urlsafe_b64decode(cipher.encrypt(b"sk"))
    with pytest.raises(InvalidToken):
        cipher.decrypt(_signed(b"\x81" + raw[1:-32]))
    header = raw[:25]
    unpadded = Cipher(algorithms.AES(KEY[16:]), modes.CBC(header[9:])).encryptor()
    block = unpadded.update(b"sixteen bytes!!\x00") + unpadded.finalize()  # last byte 0: not PKCS7
    with pytest.raises(InvalidToken):
        cipher.decrypt(_signed(header + block))
    with pytest.raises(InvalidToken):
        token_cipher(KEY, native=False).decrypt(_signed(header + block))


def test_secret_box_reports_every_bad_token_alike_and_names_no_secret() -> None:
    box = SecretBox(b"salt one")
    token = box.encrypt("sk-secret")
    for bad in [
        token[:-4],
        token + "A",
        "é" + token,
        "",
        "not a token",
        SecretBox(b"salt two").encrypt("sk-x"),
    ]:
        with pytest.raises(SecretError) as caught:
            box.decrypt(bad)
        assert "sk-" not in str(caught.value) and "salt one" not in str(caught.value)
    assert "salt" not in repr(box._cipher()) and repr(KEY) not in repr(token_cipher(KEY))


def test_fallback_when_native_is_refused_by_the_caller() -> None:
    cipher = token_cipher(KEY, native=False)
    assert type(cipher).__name__ == "_PackageFernet"
    assert _package().decrypt(cipher.encrypt(b"sk")) == b"sk"


def test_fallback_on_another_os(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(libcrypto.sys, "platform", "darwin")
    assert libcrypto.aes_128_cbc() is None
    assert type(token_cipher(KEY)).__name__ == "_PackageFernet"


def test_fallback_when_the_mapped_library_is_not_the_one_ssl_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_ssl, "OPENSSL_VERSION_NUMBER", 0x1010107F)
    assert libcrypto.aes_128_cbc() is None


def test_fallback_when_the_known_answer_test_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(libcrypto, "_KAT_OUT", bytes(16))
    assert libcrypto.aes_128_cbc() is None
    cipher = token_cipher(KEY)
    assert _package().decrypt(cipher.encrypt(b"sk")) == b"sk"


def test_fallback_when_a_symbol_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    class Missing:
        def __init__(self, lib: object) -> None:
            raise AttributeError("EVP_aes_128_cbc")

    monkeypatch.setattr(libcrypto, "Aes128Cbc", Missing)
    assert libcrypto.aes_128_cbc() is None


def test_a_failed_decryption_leaves_no_openssl_error_behind() -> None:
    """`_ssl` reads the thread's OpenSSL error queue after a failed TLS call: a stale entry would be
    blamed on the connection."""
    aes = libcrypto.aes_128_cbc()
    lib = libcrypto._mapped_libcrypto()
    assert aes is not None and lib is not None
    peek = libcrypto._declare(lib.ERR_peek_error, libcrypto.ctypes.c_ulong, [])
    unpadded = Cipher(algorithms.AES(KEY[:16]), modes.CBC(KEY[16:])).encryptor()
    block = unpadded.update(b"sixteen bytes!!\x00") + unpadded.finalize()
    assert aes.decrypt(KEY[:16], KEY[16:], block) is None  # bad padding
    assert aes.decrypt(KEY[:16], KEY[16:], b"x" * 15) is None  # not a whole block
    assert peek() == 0
