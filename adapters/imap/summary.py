"""FETCH items for a message list and the summary built from them.

A summary is built from whatever the server answered: an item it left out or answered NIL
(RFC 3501 nstring) leaves its field empty, never an error.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from mailgate.adapters.imap.bodystructure import has_attachments
from mailgate.adapters.mime import HeaderSummary, parse_message, to_message
from mailgate.adapters.mime.summary import QuickSummary, quick_summary
from mailgate.domain.mail import Flags, Message, MessageSummary

PREVIEW_BYTES = 2048
HEADER_FIELDS = (
    b"SUBJECT FROM TO CC DATE MESSAGE-ID CONTENT-TYPE CONTENT-TRANSFER-ENCODING MIME-VERSION"
)
HEADER_ITEM = b"BODY.PEEK[HEADER.FIELDS (" + HEADER_FIELDS + b")]"
TEXT_ITEM = b"BODY.PEEK[TEXT]<0.%d>" % PREVIEW_BYTES
BASE_ITEMS = [b"UID", b"FLAGS", b"RFC822.SIZE", b"INTERNALDATE", b"BODYSTRUCTURE", HEADER_ITEM]
SUMMARY_ITEMS = [*BASE_ITEMS, TEXT_ITEM]


def summary_items(server_has_preview: bool) -> list[bytes]:
    """What a list FETCHes: the server's own preview (RFC 8970 PREVIEW) where it offers
    one, else the start of the body to make it from."""
    return [*BASE_ITEMS, b"PREVIEW"] if server_has_preview else SUMMARY_ITEMS


_HEADER_KEY = b"BODY[HEADER.FIELDS (" + HEADER_FIELDS + b")]"
_HEADER_PREFIX = b"BODY[HEADER.FIELDS"
TEXT_KEY = b"BODY[TEXT]<0>"

SYSTEM_FLAGS = {
    b"\\seen": "seen",
    b"\\flagged": "flagged",
    b"\\answered": "answered",
    b"\\draft": "draft",
}


def split_flags(raw: object) -> tuple[Flags, list[str]]:
    """System flags to booleans; keywords (RFC 3501 flag-keyword) as strings. \\Recent and
    \\Deleted are server bookkeeping, not shown."""
    flags = Flags()
    keywords: list[str] = []
    for flag in raw if isinstance(raw, tuple | list) else ():
        if not isinstance(flag, bytes | str | int):  # a keyword of digits lexes as a number
            continue
        value = flag if isinstance(flag, bytes) else str(flag).encode()
        name = SYSTEM_FLAGS.get(value.lower())
        if name:
            setattr(flags, name, True)
        elif not value.startswith(b"\\"):
            keywords.append(value.decode("utf-8", "replace"))
    return flags, sorted(keywords)


def _aware(value: object) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def header_block(data: dict[bytes, Any]) -> bytes:
    """The header fields of a FETCH answer to :data:`HEADER_ITEM`.

    Courier-IMAP 5 names the item in its answer with the field names quoted,
    ``BODY[HEADER.FIELDS ("SUBJECT" "FROM" ...)]``, so the key is not the one asked for
    (RFC 3501 section 7.4.2 has the server echo the section, and a quoted astring is the
    same name): the one header item asked for is found by its start.
    """
    value = data.get(_HEADER_KEY)
    if value is None:
        value = next((v for k, v in data.items() if k.startswith(_HEADER_PREFIX)), None)
    return value if isinstance(value, bytes) else b""


def build_summary(message_id: str, folder_id: str, data: dict[bytes, Any]) -> MessageSummary:
    """A summary from one FETCH response of :func:`summary_items` (with ``TEXT_KEY`` where
    the server's PREVIEW was NIL)."""
    preview = data.get(b"PREVIEW")
    text = data.get(TEXT_KEY)
    parsed = _parsed(
        header_block(data),
        preview if isinstance(preview, bytes) else None,
        text if isinstance(text, bytes) and not isinstance(preview, bytes) else b"",
    )
    attachments = has_attachments(data.get(b"BODYSTRUCTURE"))
    size = data.get(b"RFC822.SIZE")
    size = size if isinstance(size, int) and size >= 0 else 0
    return _summary(message_id, folder_id, data, parsed, size, attachments, parsed.preview)


@functools.lru_cache(maxsize=1024)  # with their keys, about 5 KB each: 5 MB at most
def _parsed(header: bytes, preview: bytes | None, text: bytes) -> QuickSummary:
    """:func:`quick_summary` of a header block and the server's preview (or the start of the
    body), kept by those bytes: a page listed again would parse the same 50 header blocks,
    which was two fifths of the gateway's own CPU for an IMAP page. Shared: never change one."""
    if preview is not None:
        return quick_summary(header, preview=preview.decode("utf-8", "replace"))
    return quick_summary(header, text)


def whole_message(message_id: str, folder_id: str, data: dict[bytes, Any]) -> Message:
    """The full message from one FETCH of BODY[] with FLAGS, RFC822.SIZE and INTERNALDATE."""
    parsed = parse_message(data[b"BODY[]"])
    size = int(data.get(b"RFC822.SIZE", len(data[b"BODY[]"])))
    summary = _summary(
        message_id, folder_id, data, parsed, size, parsed.has_attachments, parsed.preview
    )
    return to_message(summary, parsed)


def _summary(
    message_id: str,
    folder_id: str,
    data: dict[bytes, Any],
    headers: HeaderSummary,
    size: int,
    attachments: bool,
    preview: str,
) -> MessageSummary:
    """The summary of a FETCH answer (FLAGS, INTERNALDATE) and what was parsed of it."""
    flags, keywords = split_flags(data.get(b"FLAGS", ()))
    received = _aware(data.get(b"INTERNALDATE"))
    # Every field is built typed; model_construct skips re-validating a page of these.
    return MessageSummary.model_construct(
        id=message_id,
        folder_id=folder_id,
        subject=headers.subject,
        from_=headers.from_,
        to=headers.to,
        cc=headers.cc,
        date=headers.date or received,
        received_at=received,
        size=size,
        flags=flags,
        keywords=keywords,
        has_attachments=attachments,
        preview=preview,
    )
