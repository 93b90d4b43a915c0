"""Mailbox passwords at rest (Fernet), API keys (shown once, stored as SHA-256), and
short-lived signed tokens (Fernet under keys derived from the same secret keys)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_FILE_NAME = "secret.key"
API_KEY_PREFIX = "mg_"


class SecretKeyError(RuntimeError):
    """MAILGATE_SECRET_KEY or the key file is not a usable Fernet key."""


class PasswordBox:
    """Encrypts and decrypts mailbox passwords. The first key encrypts; all decrypt."""

    def __init__(self, keys: list[bytes]) -> None:
        self._keys = list(keys)
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

    def seal(self, data: bytes) -> bytes:
        """Bytes to keep at rest that may hold a secret (an answer kept for a retry)."""
        return self._fernet.encrypt(data)

    def unseal(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken as exc:
            raise SecretKeyError("stored data does not decrypt with the secret key") from exc

    def signer(self, purpose: str) -> TokenSigner:
        """Tokens for one ``purpose``, under keys derived from the secret keys (so a token
        is never a password ciphertext, nor one purpose's token another's)."""
        return TokenSigner([_derive(key, purpose) for key in self._keys], purpose)


def _derive(key: bytes, purpose: str) -> bytes:
    """A Fernet key for ``purpose`` from a Fernet key: HMAC-SHA256 keyed with its 32 bytes."""
    raw = base64.urlsafe_b64decode(key)
    derived = hmac.new(raw, b"mailgate token: " + purpose.encode("utf-8"), hashlib.sha256)
    return base64.urlsafe_b64encode(derived.digest())


class TokenSigner:
    """Seals claims into a URL-safe token (Fernet: AES-CBC and HMAC-SHA256, with its time of
    making) that expires; the first key seals, every key opens (key rotation)."""

    def __init__(self, keys: list[bytes], purpose: str) -> None:
        self._fernet = MultiFernet([Fernet(key) for key in keys])
        self.prefix = f"{purpose}_"

    def seal(self, claims: dict[str, Any], ttl_seconds: int) -> tuple[str, int]:
        """The token and when it expires (Unix seconds)."""
        expires = int(time.time()) + ttl_seconds
        body = json.dumps({**claims, "exp": expires}, separators=(",", ":")).encode("utf-8")
        return self.prefix + self._fernet.encrypt(body).decode("ascii"), expires

    def open(self, token: str, max_ttl_seconds: int) -> dict[str, Any] | None:
        """The claims of a token this signer sealed that has not expired; else None."""
        if not token.startswith(self.prefix) or len(token) > 4096:
            return None
        try:
            body = self._fernet.decrypt(token[len(self.prefix) :], ttl=max_ttl_seconds)
            claims = json.loads(body)
        except (InvalidToken, binascii.Error, ValueError, TypeError):
            return None
        if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int):
            return None
        return claims if claims["exp"] > time.time() else None


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
