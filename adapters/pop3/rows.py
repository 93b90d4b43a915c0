"""A stored POP3 message row and what the API shows of it: the list and search columns
filled in from the raw bytes, the summary, the tombstone of a purged message."""

from __future__ import annotations

import email
import functools
import json
from email import policy
from typing import Any

from sqlalchemy import Row, case
from sqlmodel import col

from mailgate.adapters.mime import html_to_text, make_preview
from mailgate.adapters.mime._charset import decode_bytes
from mailgate.adapters.mime.rules import message_has_attachments
from mailgate.adapters.mime.summary import quick_summary
from mailgate.domain.mail import EmailAddress, MessageSummary
from mailgate.store.models import Pop3Message, as_utc

SEARCH_TEXT_LIMIT = 200_000


def describe(raw: bytes) -> dict[str, Any]:
    """The columns a stored message needs for lists and search, from its raw bytes.

    Runs once per downloaded message, so it uses the cheap compat32 path (the full parser
    costs ~2 ms a message, which would halve sync throughput); GET still parses fully."""
    head, sep, _ = raw.partition(b"\r\n\r\n")
    if not sep:
        head, _, _ = raw.partition(b"\n\n")
    message = email.message_from_bytes(raw[: SEARCH_TEXT_LIMIT * 2], policy=policy.compat32)
    texts: list[str] = []
    for index, part in enumerate(message.walk()):
        if index > 200 or part.is_multipart():
            continue
        kind = part.get_content_type()
        attached = part.get_content_disposition() == "attachment" or bool(part.get_filename())
        if attached or not kind.startswith("text/"):
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            text = decode_bytes(payload, part.get_content_charset())
            texts.append(html_to_text(text) if kind == "text/html" else text)
    plain = next((t for t in texts), "")
    quick = quick_summary(head, preview=make_preview(plain, None) if plain else "")

    def line(addresses: list[EmailAddress]) -> str:
        return " ".join(f"{a.name or ''} <{a.email}>" for a in addresses).lower()

    return {
        "size": len(raw),
        "subject": quick.subject,
        "addresses": json.dumps(
            {k: [a.model_dump() for a in getattr(quick, k)] for k in ("from_", "to", "cc")}
        ),
        "from_text": line(quick.from_),
        "to_text": line(quick.to),
        "search_text": " ".join(
            [quick.subject or "", line(quick.from_), line(quick.to), line(quick.cc), *texts]
        ).lower()[:SEARCH_TEXT_LIMIT],
        "date": quick.date,
        "preview": quick.preview,
        "has_attachments": message_has_attachments(message),
    }


def describe_row(row: Pop3Message) -> None:
    if not row.described:
        for name, value in describe(row.raw).items():
            setattr(row, name, value)
        row.described = True


def _purge(row: Pop3Message) -> None:
    """A tombstone: the UIDL stays known (never downloaded again), the content goes."""
    row.purged = True
    row.raw = b""
    row.search_text = ""
    row.preview = ""


def purge_row(row: Pop3Message) -> None:
    """A tombstone: the UIDL stays known (never downloaded again), the content goes."""
    row.purged = True
    row.raw = b""
    row.search_text = ""
    row.preview = ""


def unread_case() -> Any:
    return case((col(Pop3Message.seen).is_(False), 1), else_=0)


# What a summary reads of a row: a list selects these columns alone, not the raw message
# and its search text (most of a row's bytes).
SUMMARY_COLUMNS = (
    col(Pop3Message.seq),
    col(Pop3Message.id),
    col(Pop3Message.folder_id),
    col(Pop3Message.subject),
    col(Pop3Message.addresses),
    col(Pop3Message.date),
    col(Pop3Message.received_at),
    col(Pop3Message.size),
    col(Pop3Message.seen),
    col(Pop3Message.flagged),
    col(Pop3Message.answered),
    col(Pop3Message.draft),
    col(Pop3Message.keywords),
    col(Pop3Message.has_attachments),
    col(Pop3Message.preview),
    col(Pop3Message.described),
)


def summary_data(row: Any) -> dict[str, Any]:
    """The fields of a stored message's summary, for ``MessageSummary.model_validate``: from
    a :class:`Pop3Message`, or a result row with the :data:`SUMMARY_COLUMNS`. Validating
    plain data in one call is cheaper than building the nested models one by one (and
    than ``model_construct``, which is Python code)."""
    addresses = json.loads(row.addresses or "{}")
    keywords = row.keywords  # "[]" for most messages: no json.loads for that
    return {
        "id": row.id,
        "folder_id": row.folder_id,
        "subject": row.subject,
        "from": addresses.get("from_", []),
        "to": addresses.get("to", []),
        "cc": addresses.get("cc", []),
        "date": as_utc(row.date or row.received_at),
        "received_at": as_utc(row.received_at),
        "size": row.size,
        "flags": {
            "seen": row.seen,
            "flagged": row.flagged,
            "answered": row.answered,
            "draft": row.draft,
        },
        "keywords": json.loads(keywords) if keywords and keywords != "[]" else [],
        "has_attachments": row.has_attachments,
        "preview": row.preview,
    }


def summary(row: Any) -> MessageSummary:
    """The summary of a stored message (see :func:`summary_data`)."""
    return MessageSummary.model_validate(summary_data(row))


@functools.lru_cache(maxsize=2048)  # about 4 KB each, with its key: 9 MB at most
def listed_summary(row: Row[Any]) -> MessageSummary:
    """:func:`summary` of a result row with the :data:`SUMMARY_COLUMNS`, made once for the
    many lists that show it unchanged: the row is the key, so a change to any column (a flag,
    a keyword, a move) makes a new one. A client re-polling its inbox read the same 50 rows
    into models every time, a third of the CPU of the request. Shared: never change one."""
    return summary(row)
