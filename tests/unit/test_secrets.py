"""Provider credentials: env references and encryption at rest."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from engine.config.secrets import SecretBox, SecretError, resolve_env_ref
from engine.settings import Settings


def _settings(salt_key: str) -> Settings:
    # salt_key is read by its alias (TURNOUT_SALT_KEY / LITELLM_SALT_KEY) only, not by field name.
    return Settings.model_validate({"TURNOUT_SALT_KEY": salt_key})


def test_resolve_env_ref(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_TEST_REF", "value")
    monkeypatch.delenv("TURNOUT_TEST_UNSET", raising=False)
    assert resolve_env_ref("os.environ/TURNOUT_TEST_REF") == "value"
    assert resolve_env_ref("os.environ/TURNOUT_TEST_UNSET") is None
    assert resolve_env_ref("literal") == "literal"
    assert resolve_env_ref(None) is None


def test_salt_key_round_trip_and_wrong_key() -> None:
    box = SecretBox.from_settings(_settings("salt one"))
    token = box.encrypt("sk-secret")
    assert "sk-secret" not in token
    assert SecretBox.from_settings(_settings("salt one")).decrypt(token) == "sk-secret"
    with pytest.raises(SecretError) as caught:
        SecretBox.from_settings(_settings("salt two")).decrypt(token)
    assert "sk-secret" not in str(caught.value)
    assert box.fingerprint("sk-secret") == box.fingerprint("sk-secret") != box.fingerprint("other")
    assert "salt" not in repr(box)


def test_generated_key_file_beside_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TURNOUT_SALT_KEY", raising=False)
    monkeypatch.delenv("LITELLM_SALT_KEY", raising=False)
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'db' / 'turnout.db'}")
    token = SecretBox.from_settings(settings).encrypt("sk-secret")
    key_file = tmp_path / "db" / ".turnout" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert SecretBox.from_settings(settings).decrypt(token) == "sk-secret"  # the same key, read back


def test_derived_keys_differ_by_purpose_and_material() -> None:
    box = SecretBox(b"material")
    assert len(box.derived_key(b"console sessions")) == 32
    assert box.derived_key(b"console sessions") == SecretBox(b"material").derived_key(b"console sessions")
    assert box.derived_key(b"console sessions") != box.derived_key(b"other")
    assert box.derived_key(b"console sessions") != SecretBox(b"other").derived_key(b"console sessions")
