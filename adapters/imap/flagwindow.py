"""Flag changes by other clients on servers without CONDSTORE (RFC 7162), which cannot say
what changed since when: the watcher keeps a digest of each message's flags for a bounded
window of the newest messages of a folder and compares it every round (one FETCH FLAGS of
the window per watched folder and round; older messages' flag changes go unseen there).
Courier-IMAP and many hosted servers (Outlook/Exchange) have no CONDSTORE."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable

from imapclient import IMAPClient

from mailgate.adapters.imap.messages import fetch_by_uid

WINDOW = 500  # the newest messages of a folder whose flags are compared
_NOT_FLAGS = {b"\\recent"}  # session state, not a flag anyone set


def digest(flags: Iterable[bytes | str]) -> int:
    """A stable number for a set of flags (case-insensitive, order-free)."""
    names = sorted(
        {f.lower() if isinstance(f, bytes) else str(f).lower().encode() for f in flags} - _NOT_FLAGS
    )
    return zlib.crc32(b" ".join(names)) & 0x7FFFFFFF


def digests(client: IMAPClient, uids: Iterable[int]) -> dict[int, int]:
    """The flag digest of each of these messages in the selected folder (one FETCH)."""
    wanted = sorted(set(uids))
    if not wanted:
        return {}
    fetched = fetch_by_uid(client, wanted, [b"FLAGS"])
    return {uid: digest(data[b"FLAGS"]) for uid, data in fetched.items() if b"FLAGS" in data}


def window(uids: Iterable[int]) -> list[int]:
    """The newest :data:`WINDOW` UIDs."""
    return sorted(uids)[-WINDOW:]


def encode(found: dict[int, int]) -> str:
    return json.dumps({str(uid): value for uid, value in sorted(found.items())})


def decode(text: str | None) -> dict[int, int]:
    if not text:
        return {}
    try:
        raw = json.loads(text)
        return {int(uid): int(value) for uid, value in raw.items()}
    except (ValueError, TypeError, AttributeError):
        return {}


def changed(before: dict[int, int], now: dict[int, int]) -> dict[int, int]:
    """UIDs in both whose flags differ, with their digest now."""
    return {uid: value for uid, value in now.items() if uid in before and before[uid] != value}
