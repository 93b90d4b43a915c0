"""Mailbox passwords at rest (Fernet) and API keys (shown once, stored as SHA-256)."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_FILE_NAME = "secret.key"
API_KEY_PREFIX = "mg_"


class SecretKeyError(RuntimeError):
    """MAILGATE_SECRET_KEY or the key file is not a usable Fernet key."""


class PasswordBox:
    """Encrypts and decrypts mailbox passwords. The first key encrypts; all decrypt."""

    def __init__(self, keys: list[bytes]) -> None:
        try:
            self._fernet = MultiFernet([Fernet(key) for key in keys])
        except (ValueError, TypeError) as exc:
            raise SecretKeyError(
                "MAILGATE_SECRET_KEY must be Fernet keys (32 url-safe base64 bytes), "
                "comma-separated; make one with `mailgate keys secret`"
            ) from exc

    def encrypt(self, password: str) -> str:
        return self._fernet.encrypt(password.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise SecretKeyError("a stored password does not decrypt with the secret key") from exc


def load_password_box(secret_key: str | None, data_dir: Path) -> PasswordBox:
    """Keys from the setting, else from ``data_dir/secret.key`` (created 0600 if missing)."""
    if secret_key:
        return PasswordBox([k.strip().encode("ascii") for k in secret_key.split(",") if k.strip()])
    return PasswordBox([_read_or_create_key_file(data_dir / KEY_FILE_NAME)])


def _read_or_create_key_file(path: Path) -> bytes:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        key = Fernet.generate_key()
        handle.write(key + b"\n")
    return key


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """SHA-256 is enough here: keys carry 256 random bits, so no stretching is needed."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
