"""The console's sign-in pieces on their own: signed values, sessions, CSRF tokens, password hashes
and the failed sign-in throttle."""

from __future__ import annotations

from engine.console.passwords import hash_password, verify_password
from engine.console.session import Signer
from engine.console.throttle import SignInThrottle
from tests.support import FakeClock

SIGNER = Signer(b"k" * 32)


def test_a_signed_value_is_read_back_and_any_change_is_refused() -> None:
    token = SIGNER.sign("session", {"a": "master key"})
    assert SIGNER.verify("session", token) == {"a": "master key"}
    payload, _, mac = token.partition(".")
    assert SIGNER.verify("csrf", token) is None  # signed for another purpose
    assert SIGNER.verify("session", payload + "x." + mac) is None
    assert SIGNER.verify("session", payload + "." + mac[:-1] + ("A" if mac[-1] != "A" else "B")) is None
    assert Signer(b"o" * 32).verify("session", token) is None
    for junk in ("", ".", "a.b", "é.ü", "x" * 5000, "e30.AAAA"):
        assert SIGNER.verify("session", junk) is None


def test_a_session_expires_and_its_csrf_token_is_its_own() -> None:
    first = SIGNER.new_session("master key", "master:sk-1", now=1000.0, ttl=60)
    second = SIGNER.new_session("master key", "master:sk-1", now=1000.0, ttl=60)
    cookie = SIGNER.session_cookie(first)
    assert SIGNER.read_session(cookie, now=1059.0) == first
    assert SIGNER.read_session(cookie, now=1060.0) is None
    assert SIGNER.csrf_ok(first, SIGNER.csrf_token(first))
    assert not SIGNER.csrf_ok(first, SIGNER.csrf_token(second))
    assert not SIGNER.csrf_ok(first, None)
    assert "sk-1" not in cookie and first.credential == SIGNER.fingerprint("master:sk-1")


def test_a_sign_in_form_token_expires() -> None:
    token = SIGNER.sign_in_token(now=0.0)
    assert SIGNER.sign_in_token_ok(token, now=3599.0)
    assert not SIGNER.sign_in_token_ok(token, now=3600.0)
    assert not SIGNER.sign_in_token_ok(None, now=0.0)


def test_passwords_are_salted_scrypt_hashes() -> None:
    stored = hash_password("a long enough password")
    assert stored.startswith("scrypt$") and "a long enough password" not in stored
    assert stored != hash_password("a long enough password")
    assert verify_password("a long enough password", stored)
    assert not verify_password("a long enough passwore", stored)
    for broken in ("", "scrypt$1$2", "bcrypt$x$y$z$a$b", "scrypt$x$8$1$AA==$AA=="):
        assert not verify_password("anything", broken)


def test_the_throttle_locks_an_address_out_for_the_rest_of_its_window() -> None:
    clock = FakeClock(0)
    throttle = SignInThrottle(clock, limit=3, window=100)
    for _ in range(3):
        assert throttle.locked_for("10.0.0.1") == 0
        throttle.failed("10.0.0.1")
        clock.advance(10)
    assert throttle.locked_for("10.0.0.1") == 100 - 30  # until the first failure leaves the window
    assert throttle.locked_for("10.0.0.2") == 0
    clock.advance(71)
    assert throttle.locked_for("10.0.0.1") == 0
    assert throttle.failed_total == 3


def test_a_success_clears_the_address_and_the_table_stays_bounded() -> None:
    clock = FakeClock(0)
    throttle = SignInThrottle(clock, limit=2, window=100)
    throttle.failed("a")
    throttle.succeeded("a")
    throttle.failed("a")
    assert throttle.locked_for("a") == 0
    for n in range(10_050):
        throttle.failed(f"10.{n}")
    assert len(throttle._failures) <= 10_000
