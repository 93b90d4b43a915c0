"""Pure MIME parsing for the mailbox adapters: raw RFC 5322 bytes in, JSON models out.

Uses the stdlib ``email`` package with ``policy.default`` and adds fallbacks for the
broken mail found in real mailboxes. No function here does I/O or raises on bad input.
"""

from __future__ import annotations

import logging
import re
from email import policy as _policy
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage, Message
from email.parser import BytesParser
from urllib.parse import unquote

from mailgate.domain.mail import AttachmentInfo

from ._body import (
    Leaf,
    analyze,
    encapsulated_filename,
    leaf_text,
    locate,
    make_leaf,
    plain_in_html,
)
from ._charset import clean_text, decode_bytes
from ._headers import (
    decode_unstructured,
    first_value,
    parse_addresses,
    parse_date,
    parse_message_id,
    parse_msg_ids,
    raw_values,
)
from ._html import html_to_text, make_preview
from ._parts import is_container, part_charset, payload_bytes
from .models import AttachmentPart, HeaderSummary, ParsedMessage
from .rules import message_has_attachments

__all__ = [
    "find_part",
    "html_to_text",
    "make_preview",
    "parse_message",
    "parse_summary_headers",
]

logger = logging.getLogger(__name__)

_CID_REF = re.compile(r"""cid:([^\s"'<>()]+)""", re.IGNORECASE)


class _ParseOnce(HeaderRegistry):
    """``policy.default``'s header registry, except that a message parses each header
    (name and value) once: the stdlib parses a header again on every ``get`` (one part's
    Content-Type about five times while the tree is built and read), which was most of
    the parsing time of a message. The header objects are immutable, so sharing them within
    one message changes nothing. One registry per message: nothing is kept after it."""

    def __init__(self) -> None:
        super().__init__()
        self._parsed: dict[tuple[str, str], BaseHeader] = {}

    def __call__(self, name: str, value: str) -> BaseHeader:
        header = self._parsed.get((name, value))
        if header is None:
            header = self._parsed[(name, value)] = super().__call__(name, value)
        return header


def _default_policy() -> _policy.EmailPolicy[EmailMessage]:
    return _policy.default.clone(header_factory=_ParseOnce())


def _load(raw: bytes, *, headersonly: bool = False) -> Message:
    """Parse bytes with ``policy.default`` (RFC 5322/MIME); never raises.

    ``policy.default`` parses headers while building the tree and some malformed ones
    crash it (e.g. ``Content-Type: text/plain; name*`` raises IndexError in CPython 3.11),
    so such input is re-parsed with ``policy.compat32``, which keeps headers as raw text;
    everything downstream reads raw header values and works on either tree.
    """
    try:
        return BytesParser(policy=_default_policy()).parsebytes(raw, headersonly=headersonly)
    except Exception as exc:
        logger.info("policy.default could not parse message (%r); using compat32", exc)
    try:
        return BytesParser(policy=_policy.compat32).parsebytes(raw, headersonly=headersonly)
    except Exception:
        logger.warning("email parser failed; treating input as a plain body", exc_info=True)
        fallback = Message(policy=_policy.default)
        fallback.set_payload(raw.decode("ascii", "surrogateescape"))
        return fallback


def _summary_fields(msg: Message) -> dict[str, object]:
    """The header fields shared by :class:`HeaderSummary` and :class:`ParsedMessage`."""
    return {
        "subject": decode_unstructured(msg, "subject"),
        "from_": parse_addresses(msg, "from"),
        "to": parse_addresses(msg, "to"),
        "cc": parse_addresses(msg, "cc"),
        "date": parse_date(first_value(msg, "date")),
        "message_id": parse_message_id(first_value(msg, "message-id")),
    }


def parse_summary_headers(raw_headers: bytes) -> HeaderSummary:
    """Parse a header block (e.g. IMAP ``BODY.PEEK[HEADER.FIELDS (...)]``, RFC 3501) for
    list views. A full message is accepted too; its body is ignored."""
    data = bytes(raw_headers)
    try:
        return HeaderSummary(**_summary_fields(_load(data, headersonly=True)))
    except Exception:
        logger.warning("header summary failed; returning an empty summary", exc_info=True)
        return HeaderSummary()


def _render_text(leaves: list[Leaf], cache: dict[str, str]) -> str | None:
    """Concatenate JMAP textBody parts; ``None`` unless one of them is text/plain."""
    if not any(leaf.content_type == "text/plain" for leaf in leaves):
        return None
    out = ""
    for leaf in leaves:
        piece = cache[leaf.part_id]
        if leaf.content_type == "text/html":
            piece = html_to_text(piece)
        if out and not out.endswith("\n"):
            out += "\n"
        out += piece
    return out


def _render_html(leaves: list[Leaf], cache: dict[str, str]) -> str | None:
    """Concatenate JMAP htmlBody parts; ``None`` unless one of them is text/html."""
    if not any(leaf.content_type == "text/html" for leaf in leaves):
        return None
    pieces = [
        cache[leaf.part_id]
        if leaf.content_type == "text/html"
        else plain_in_html(cache[leaf.part_id])
        for leaf in leaves
    ]
    return "\n".join(pieces)


def _referenced_cids(html: str | None) -> set[str]:
    """Content-IDs referenced from HTML through ``cid:`` URLs (RFC 2392), lower-case."""
    if not html:
        return set()
    return {unquote(match).strip("<>").lower() for match in _CID_REF.findall(html)}


def _attachment_info(leaf: Leaf, cids: set[str], linesep: str) -> AttachmentInfo:
    """Describe one attachment leaf; see :class:`AttachmentInfo` for the ``inline`` rule."""
    filename = leaf.filename
    if filename is None:
        filename = encapsulated_filename(leaf.part)
    referenced = leaf.content_id is not None and leaf.content_id.lower() in cids
    inline = (
        referenced
        or leaf.disposition == "inline"
        or (
            leaf.disposition is None
            and leaf.content_id is not None
            and leaf.parent_subtype == "related"
        )
    )
    return AttachmentInfo(
        id=leaf.part_id,
        filename=filename,
        content_type=leaf.content_type,
        size=len(payload_bytes(leaf.part, linesep)),
        content_id=leaf.content_id,
        inline=inline,
    )


def _build(msg: Message, raw: bytes) -> ParsedMessage:
    """Assemble a :class:`ParsedMessage` from a parsed tree."""
    linesep = "\r\n" if b"\r\n" in raw[:65536] else "\n"
    structure = analyze(msg)
    cache: dict[str, str] = {}
    for leaf in (*structure.text_body, *structure.html_body):
        if leaf.part_id not in cache:
            cache[leaf.part_id] = leaf_text(leaf)
    text = _render_text(structure.text_body, cache)
    html = _render_html(structure.html_body, cache)
    cids = _referenced_cids(html)
    attachments = [_attachment_info(leaf, cids, linesep) for leaf in structure.attachments]
    references: list[str] = []
    for value in raw_values(msg, "references"):
        references.extend(ref for ref in parse_msg_ids(value) if ref not in references)
    return ParsedMessage(
        **_summary_fields(msg),
        bcc=parse_addresses(msg, "bcc"),
        reply_to=parse_addresses(msg, "reply-to"),
        in_reply_to=parse_msg_ids(first_value(msg, "in-reply-to")),
        references=references,
        text=text,
        html=html,
        attachments=attachments,
        has_attachments=message_has_attachments(msg),
        preview=make_preview(text, html),
        size=len(raw),
    )


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse a complete RFC 5322 message (MIME RFC 2045-2049) into a :class:`ParsedMessage`.

    Never raises: broken headers, charsets and structures degrade to best-effort text.
    """
    data = bytes(raw)
    try:
        return _build(_load(data), data)
    except Exception:
        logger.warning("MIME parse failed; returning the raw text as body", exc_info=True)
        text = clean_text(decode_bytes(data).replace("\r\n", "\n"))
        return ParsedMessage(text=text, preview=make_preview(text, None), size=len(data))


def find_part(raw: bytes, part_id: str) -> AttachmentPart | None:
    """Return the decoded content of the part numbered ``part_id`` (RFC 3501 §6.4.5 numbers,
    as in :attr:`AttachmentInfo.id`), or ``None`` when there is no such leaf part.

    Multipart containers are not returned; an attached message/rfc822 is returned as its
    re-serialized message bytes, and its inner parts are addressable as ``N.1``, ``N.2``...
    """
    data = bytes(raw)
    try:
        node = locate(_load(data), part_id.strip())
        if node is None or is_container(node):
            return None
        leaf = make_leaf(part_id.strip(), node)
        filename = leaf.filename
        if filename is None:
            filename = encapsulated_filename(node)
        linesep = "\r\n" if b"\r\n" in data[:65536] else "\n"
        return AttachmentPart(
            part_id=leaf.part_id,
            content_type=leaf.content_type,
            filename=filename,
            payload=payload_bytes(node, linesep),
            charset=part_charset(node) if leaf.content_type.startswith("text/") else None,
            content_id=leaf.content_id,
        )
    except Exception:
        logger.warning("find_part(%r) failed", part_id, exc_info=True)
        return None
