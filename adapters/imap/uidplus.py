"""UIDPLUS (RFC 4315) COPYUID responses and MOVE (RFC 6851) with a fallback.

imaplib drops the response code of a tagged OK and imapclient returns nothing for COPY and
MOVE, so these go one level down to read COPYUID.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

from imapclient import IMAPClient
from imapclient.util import to_bytes

from mailgate.adapters.imap import wire
from mailgate.domain.errors import InvalidRequest

_COPYUID = re.compile(rb"\[COPYUID (\d+) ([\d:,]+) ([\d:,]+)\]", re.IGNORECASE)


_APPENDUID = re.compile(r"\[APPENDUID (\d+) (\d+)\]", re.IGNORECASE)


def expand_uid_set(text: bytes) -> list[int]:
    """``1:3,7`` -> [1, 2, 3, 7] (RFC 3501 sequence-set, UIDs in the order given)."""
    uids: list[int] = []
    for piece in text.split(b","):
        if b":" in piece:
            first, last = (int(x) for x in piece.split(b":", 1))
            step = 1 if last >= first else -1
            uids.extend(range(first, last + step, step))
        elif piece:
            uids.append(int(piece))
    return uids


def parse_copyuid(text: bytes | None) -> tuple[int, dict[int, int]] | None:
    """(destination UIDVALIDITY, {source uid: destination uid}) from a COPYUID code."""
    if not text:
        return None
    match = _COPYUID.search(text if text.startswith(b"[") else b"[COPYUID " + text + b"]")
    if not match:
        return None
    sources, targets = expand_uid_set(match.group(2)), expand_uid_set(match.group(3))
    if len(sources) != len(targets):
        return None
    return int(match.group(1)), dict(zip(sources, targets, strict=True))


def parse_appenduid(answer: bytes | str | None) -> tuple[int, int] | None:
    """``[APPENDUID validity uid]`` of an APPEND's tagged OK (RFC 4315 section 3)."""
    text = answer.decode("ascii", "replace") if isinstance(answer, bytes) else (answer or "")
    match = _APPENDUID.search(text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _text(data: list[Any]) -> str:
    first = data[0] if data and data[0] else b""
    return bytes(to_bytes(first)).decode(errors="replace")


def _refused(client: IMAPClient, command: str, data: list[Any]) -> NoReturn:
    """``[TRYCREATE]``: the target folder is gone (RFC 3501 section 6.4.7), e.g. deleted by
    another client after Mailgate looked; the same answer as a folder that never was."""
    text = _text(data)
    if text.upper().startswith("[TRYCREATE]"):
        raise InvalidRequest("the target folder does not exist")
    raise wire.error(client)(f"{command} failed: {text}")


def _uid_set(uids: list[int]) -> bytes:
    return b",".join(str(uid).encode() for uid in uids)


def copy(client: IMAPClient, uids: list[int], folder: str) -> tuple[int, dict[int, int]] | None:
    """UID COPY; returns the COPYUID mapping when the server sends one."""
    typ, data = wire.uid_command(client, "COPY", _uid_set(uids), folder)
    if typ != "OK":
        _refused(client, "COPY", data)
    return parse_copyuid(data[0] if data else None)


def move(client: IMAPClient, uids: list[int], folder: str) -> tuple[int, dict[int, int]] | None:
    """UID MOVE, or COPY + \\Deleted + UID EXPUNGE where the server lacks MOVE."""
    if not client.has_capability("MOVE"):
        copied = copy(client, uids, folder)
        expunge(client, uids)
        return copied
    wire.drop_untagged(client, "COPYUID")
    typ, data = wire.uid_command(client, "MOVE", _uid_set(uids), folder)
    if typ != "OK":
        _refused(client, "MOVE", data)
    codes = wire.take_untagged(client, "COPYUID")
    mapping: tuple[int, dict[int, int]] | None = None
    if codes:  # a large MOVE may report in several untagged OKs
        merged: dict[int, int] = {}
        uidvalidity = 0
        for code in codes:
            parsed = parse_copyuid(code)
            if parsed:
                uidvalidity = parsed[0]
                merged.update(parsed[1])
        mapping = (uidvalidity, merged) if merged else None
    return mapping or parse_copyuid(data[0] if data else None)


def expunge(client: IMAPClient, uids: list[int]) -> None:
    """Remove exactly these messages: UID EXPUNGE where possible (UIDPLUS)."""
    client.add_flags(uids, [b"\\Deleted"], silent=True)
    if client.has_capability("UIDPLUS"):
        client.uid_expunge(uids)
    else:  # RFC 3501 EXPUNGE also removes other \Deleted messages; nothing better exists
        client.expunge()
