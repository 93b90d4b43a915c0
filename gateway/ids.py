"""Opaque, URL-safe ids: a short type prefix and 128 random bits in base32."""

from __future__ import annotations

import base64
import re
import secrets

_ID_BODY = re.compile(r"[a-z2-7]{26}")


def new_id(prefix: str) -> str:
    body = base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()
    return f"{prefix}_{body}"


def is_valid_id(value: str, prefix: str) -> bool:
    """True when ``value`` has the shape of an id made by :func:`new_id` with ``prefix``."""
    head, sep, body = value.partition("_")
    return sep == "_" and head == prefix and bool(_ID_BODY.fullmatch(body))
