"""Opaque folder ids, message ids and cursors (pure codecs, shared by the adapters).

Folder ids carry the folder path; message ids carry (path, UIDVALIDITY, UID), the triple
that names one IMAP message forever (RFC 3501 section 2.3.1.1): after a UIDVALIDITY change
an old id no longer resolves, so it can never point at another message. Ids are URL-safe
base64 without padding; clients must treat them as opaque.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
import struct
from dataclasses import dataclass
from typing import Any

_RANDOM_BODY = re.compile(r"[a-z2-7]{26}")


def new_id(prefix: str) -> str:
    """A random opaque id: a short type prefix and 128 random bits in base32."""
    body = base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()
    return f"{prefix}_{body}"


def is_valid_id(value: str, prefix: str) -> bool:
    """True when ``value`` has the shape of an id made by :func:`new_id` with ``prefix``."""
    head, sep, body = value.partition("_")
    return sep == "_" and head == prefix and bool(_RANDOM_BODY.fullmatch(body))


MAX_NUMBER = 2**63 - 1  # the largest number a cursor or a change state may carry (BIGINT)
FOLDER_PREFIX = "fld_"
MESSAGE_PREFIX = "msg_"
_UID_PAIR = struct.Struct(">II")
MAX_ID_LENGTH = 2048
_CHECK = 6


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes | None:
    if len(text) > MAX_ID_LENGTH or not text.isascii():
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def folder_id(path: str) -> str:
    return FOLDER_PREFIX + _b64encode(path.encode("utf-8"))


def folder_path(value: str) -> str | None:
    """The path inside a folder id, or None when it is not a folder id."""
    if not value.startswith(FOLDER_PREFIX):
        return None
    raw = _b64decode(value[len(FOLDER_PREFIX) :])
    if not raw or folder_id(_utf8(raw) or "") != value:
        return None
    return _utf8(raw)


@dataclass(frozen=True)
class MessageLocation:
    path: str
    uidvalidity: int
    uid: int


def message_id(location: MessageLocation, scope: str) -> str:
    """``scope`` (the account id) is folded into a checksum, so an id never resolves in
    another account, even where the same folder, UIDVALIDITY and UID exist there."""
    packed = _UID_PAIR.pack(location.uidvalidity, location.uid) + location.path.encode("utf-8")
    return MESSAGE_PREFIX + _b64encode(_checksum(packed, scope) + packed)


def _checksum(packed: bytes, scope: str) -> bytes:
    return hashlib.sha256(scope.encode("utf-8") + b"\0" + packed).digest()[:_CHECK]


def message_location(value: str, scope: str) -> MessageLocation | None:
    """The location encoded in a message id, or None for anything forged or truncated."""
    if not value.startswith(MESSAGE_PREFIX):
        return None
    raw = _b64decode(value[len(MESSAGE_PREFIX) :])
    if raw is None or len(raw) <= _UID_PAIR.size + _CHECK:
        return None
    check, raw = raw[:_CHECK], raw[_CHECK:]
    if _checksum(raw, scope) != check:
        return None
    uidvalidity, uid = _UID_PAIR.unpack_from(raw)
    path = _utf8(raw[_UID_PAIR.size :])
    if path is None or uid == 0 or uidvalidity == 0:
        return None
    location = MessageLocation(path, uidvalidity, uid)
    return location if message_id(location, scope) == value else None


def _utf8(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def filter_fingerprint(filters: dict[str, Any]) -> str:
    """A short digest of the filters a cursor was made for."""
    canonical = json.dumps(filters, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: messages below ``before`` in the list order come next.

    Lists run newest first by UID (IMAP) or by store sequence (POP3); new mail only ever
    gets a higher number, so it can neither shift nor repeat the pages that follow.
    """

    folder: str
    epoch: int
    before: int
    filters: str

    def encode(self) -> str:
        payload = json.dumps(
            [self.folder, self.epoch, self.before, self.filters], separators=(",", ":")
        )
        return _b64encode(payload.encode("utf-8"))

    @classmethod
    def decode(cls, value: str) -> Cursor | None:
        raw = _b64decode(value)
        if raw is None:
            return None
        try:
            folder, epoch, before, filters = json.loads(raw)
        except (ValueError, TypeError, RecursionError):  # (a forged "[[[[..." nests deep)
            return None
        if not (
            isinstance(folder, str)
            and isinstance(epoch, int)
            and isinstance(before, int)
            and isinstance(filters, str)
            and 0 <= epoch <= MAX_NUMBER
            and 0 <= before <= MAX_NUMBER
        ):
            return None
        return cls(folder, epoch, before, filters)
