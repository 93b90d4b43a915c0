"""Pure helpers: opaque ids, API keys, the password box."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from mailgate.domain.ids import is_valid_id, new_id
from mailgate.gateway.crypto import (
    PasswordBox,
    SecretKeyError,
    hash_api_key,
    load_password_box,
    new_api_key,
)


def test_ids_are_opaque_url_safe_and_unique() -> None:
    ids = {new_id("acc") for _ in range(1000)}
    assert len(ids) == 1000
    for value in list(ids)[:20]:
        assert value.startswith("acc_") and len(value) == 30
        assert value.replace("_", "").isalnum() and value == value.lower()
        assert is_valid_id(value, "acc")
        assert not is_valid_id(value, "ten")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "acc_",
        "acc_123",
        "acc_" + "a" * 27,
        "acc-" + "a" * 26,
        "ACC_" + "a" * 26,
        "acc_" + "a" * 25 + "!",
        "../etc/passwd",
        "acc_" + "1" * 26,
    ],
)
def test_malformed_ids_are_recognised(bad: str) -> None:
    assert not is_valid_id(bad, "acc")


def test_api_keys_are_random_and_hash_stably() -> None:
    key = new_api_key()
    assert key.startswith("mg_") and len(key) > 40
    assert hash_api_key(key) == hash_api_key(key)
    assert hash_api_key(key) != hash_api_key(new_api_key())


def test_password_box_round_trip_and_rotation() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    token = PasswordBox([old]).encrypt("pässwörd")
    assert "pässwörd" not in token
    rotated = PasswordBox([new, old])
    assert rotated.decrypt(token) == "pässwörd"
    with pytest.raises(SecretKeyError):
        PasswordBox([new]).decrypt(token)


def test_bad_secret_key_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SecretKeyError, match="Fernet"):
        load_password_box("not-a-key", tmp_path)


def test_key_file_is_created_0600_once(tmp_path: Path) -> None:
    first = load_password_box(None, tmp_path / "data")
    key_file = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    token = first.encrypt("x")
    assert load_password_box(None, tmp_path / "data").decrypt(token) == "x"
