"""Folder roles: INBOX (RFC 3501 §5.1), SPECIAL-USE flags (RFC 6154 §2), well-known names.

The server's word wins: a SPECIAL-USE attribute on the LIST line decides, and only folders
without one are matched by name. Name matching is for servers without SPECIAL-USE (older
Courier, Cyrus, Exchange in some set-ups) and covers only top-level folders and folders
directly under INBOX (the personal namespace of servers like ``INBOX.Sent``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from typing import Literal

Role = Literal["inbox", "sent", "drafts", "trash", "junk", "archive"]

FolderListing = tuple[str, Iterable[bytes | str], str | bytes | None]
"""``(path, flags, delimiter)`` of one LIST line (note: imapclient's order is different)."""

_FLAG_ROLES: dict[str, Role] = {
    "\\sent": "sent",
    "\\drafts": "drafts",
    "\\trash": "trash",
    "\\junk": "junk",
    "\\archive": "archive",
}
# Special-use attributes that name a folder but no role here: Gmail's "All Mail" (\All) is
# every message, not an archive; \Flagged and \Important (RFC 8457) are virtual views.
_FLAGS_WITHOUT_ROLE = frozenset({"\\all", "\\flagged", "\\important"})
# A folder that cannot hold messages (RFC 3501 §7.2.2, RFC 5258 §3) gets no role at all.
_UNSELECTABLE = frozenset({"\\noselect", "\\nonexistent"})

_NAMES: dict[Role, tuple[str, ...]] = {
    "sent": (
        "Sent",
        "Sent Items",
        "Sent Messages",
        "Sent Mail",
        "Gesendet",
        "Gesendete Objekte",
        "Envoyés",
        "Elementos enviados",
        "Enviados",
        "Posta inviata",
        "Verzonden",
    ),
    "drafts": ("Drafts", "Draft", "Entwürfe", "Brouillons", "Borradores", "Bozze"),
    "trash": (
        "Trash",
        "Deleted Messages",
        "Deleted Items",
        "Deleted",
        "Bin",
        "Papierkorb",
        "Corbeille",
        "Papelera",
        "Cestino",
        "Prullenbak",
    ),
    "junk": (
        "Junk",
        "Spam",
        "Junk E-mail",
        "Junk Email",
        "Bulk Mail",
        "Junk-E-Mail",
        "Spam-Verdacht",
        "Courrier indésirable",
        "Indésirables",
    ),
    "archive": ("Archive", "Archives", "Archiv"),
}


def _fold(name: str) -> str:
    """Case- and normalisation-insensitive key (servers may send NFD, e.g. macOS clients)."""
    return unicodedata.normalize("NFC", name).casefold()


# folded name -> (role, rank in its list: lower is preferred)
_NAME_ROLES: dict[str, tuple[Role, int]] = {
    _fold(name): (role, rank) for role, names in _NAMES.items() for rank, name in enumerate(names)
}


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _lowered_flags(flags: Iterable[bytes | str]) -> list[str]:
    try:
        return [_text(flag).lower() for flag in flags if isinstance(flag, bytes | str)]
    except TypeError:
        return []


def _flag_role(flags: list[str]) -> tuple[bool, Role | None]:
    """(decided, role): decided when a special-use attribute (or \\Noselect) settles it."""
    if any(flag in _UNSELECTABLE for flag in flags):
        return True, None
    for flag in flags:
        if flag in _FLAG_ROLES:
            return True, _FLAG_ROLES[flag]
    return any(flag in _FLAGS_WITHOUT_ROLE for flag in flags), None


def _name_match(path: str, delimiter: str | bytes | None) -> tuple[Role, int] | None:
    """Role and rank by the last segment of a top-level folder or one directly under INBOX."""
    sep = _text(delimiter) if delimiter else ""
    segments = path.split(sep) if sep else [path]
    if len(segments) == 2 and segments[0].upper() == "INBOX":
        name = segments[1]
    elif len(segments) == 1:
        name = segments[0]
    else:
        return None
    return _NAME_ROLES.get(_fold(name))


def _classify(
    path: str, flags: Iterable[bytes | str], delimiter: str | bytes | None
) -> tuple[Role | None, bool, int]:
    """(role, by_flag, name_rank)."""
    if path.upper() == "INBOX":
        return "inbox", True, 0
    decided, role = _flag_role(_lowered_flags(flags))
    if decided:
        return role, True, 0
    match = _name_match(path, delimiter)
    if match is None:
        return None, False, 0
    return match[0], False, match[1]


def is_view(flags: Iterable[bytes | str]) -> bool:
    """A special-use folder that shows mail kept in other folders too (RFC 6154 \\All, RFC
    8457 \\Important, \\Flagged): Gmail's "[Gmail]/All Mail" holds every message of every
    label, so watching it as well would report each new message twice."""
    return any(flag in _FLAGS_WITHOUT_ROLE for flag in _lowered_flags(flags))


def detect_role(
    path: str, flags: Iterable[bytes | str], delimiter: str | bytes | None
) -> Role | None:
    """The role of one folder on its own (RFC 6154 §2), without looking at its siblings.

    ``flags`` and ``delimiter`` as imapclient's ``list_folders`` returns them (bytes or str).
    """
    if not isinstance(path, str):
        return None
    return _classify(path, flags, delimiter)[0]


def assign_roles(folders: Sequence[FolderListing]) -> dict[str, Role | None]:
    """Roles for all folders of an account, each role given to at most one folder.

    A special-use attribute (RFC 6154 §2) beats a name match; among name matches the name
    listed first wins (``Sent`` before ``Sent Items``), then the shorter path (``Sent``
    before ``INBOX.Sent``), then the earlier LIST line. The others get None.
    """
    result: dict[str, Role | None] = {}
    best: dict[Role, tuple[tuple[int, int, int, int], str]] = {}
    for index, entry in enumerate(folders):
        try:
            path, flags, delimiter = entry
        except (TypeError, ValueError):
            continue
        if not isinstance(path, str):
            continue
        role, by_flag, rank = _classify(path, flags, delimiter)
        result[path] = None
        if role is None:
            continue
        key = (0 if by_flag else 1, rank, len(path), index)
        if role not in best or key < best[role][0]:
            best[role] = (key, path)
    for role, (_, path) in best.items():
        result[path] = role
    return result
