"""A fast path for list views: summary fields from a header block and the start of the body.

``parse_message`` builds everything with the modern email policy, which costs about 2 ms a
message; a page of 50 summaries cannot afford that. Here the lenient compat32 parser and
``email.utils.getaddresses`` do the work (RFC 2047 decoding as in the full parser), and the
preview comes from the first text part inside the truncated body.
"""

from __future__ import annotations

import email
import re
from email import policy
from email.message import Message

from mailgate.adapters.mime._charset import decode_bytes, fix_surrogates
from mailgate.adapters.mime._headers import (
    decode_rfc2047,
    parse_address_value,
    parse_date,
    parse_message_id,
    unfold,
)
from mailgate.adapters.mime._html import make_preview
from mailgate.adapters.mime.models import HeaderSummary
from mailgate.domain.mail import EmailAddress

_MAX_PARTS = 20


class QuickSummary(HeaderSummary):
    preview: str = ""


_ATOMS = r'[^<>\s,;:"()\\@]+@[^<>\s,;:"()\\@]+'
_SIMPLE_ADDRESS = re.compile(
    rf'\s*(?:(?:"([^"\\]*)"|([^"<>,;:@\\()]*?))\s*<({_ATOMS})>|({_ATOMS}))\s*'
)
_ITEMS = re.compile(r'(?:[^,"]|"[^"\\]*")+')


def _simple_addresses(value: str) -> list[EmailAddress] | None:
    """The common shapes (``Name <a@b>``, ``"Name" <a@b>``, ``a@b`` and lists of them)
    without the general RFC 5322 parser; None for anything else (groups, comments,
    escapes), which then takes the full parser's path."""
    if "(" in value or "\\" in value or ";" in value:
        return None
    found = []
    for item in _ITEMS.findall(value):
        if not item.strip():
            continue
        match = _SIMPLE_ADDRESS.fullmatch(item)
        if match is None:
            return None
        quoted, plain, bracketed, bare = match.groups()
        if quoted is not None:
            name = quoted.strip()
        elif plain:
            name = (decode_rfc2047(plain) if "=?" in plain else plain).strip()
        else:
            name = ""
        # both fields are plain strings here: skip validation, this runs 100s of times a page
        found.append(EmailAddress.model_construct(name=name or None, email=bracketed or bare))
    return found


def _addresses(headers: dict[str, list[str]], name: str) -> list[EmailAddress]:
    found: list[EmailAddress] = []
    for raw in headers.get(name.lower(), []):
        value = _header_text(raw)
        simple = _simple_addresses(value)
        if simple is not None:
            found += simple
            continue
        found += parse_address_value(name, value)  # the full parser's careful path
    return found


def _header_text(raw: object) -> str:
    """compat32 keeps undeclared 8-bit header bytes as surrogates; decode them properly."""
    return fix_surrogates(unfold(str(raw)))


def _text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    return decode_bytes(payload, part.get_content_charset())


def _preview(msg: Message) -> str:
    plain = html = None
    for index, part in enumerate(msg.walk()):
        if index > _MAX_PARTS or (plain is not None):
            break
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        kind = part.get_content_type()
        if kind == "text/plain" and plain is None:
            plain = _text(part)
        elif kind == "text/html" and html is None:
            html = _text(part)
    return make_preview(plain, html)


def header_fields(header: bytes) -> dict[str, list[str]]:
    """An RFC 5322 header block to ``{lower-case name: [raw values]}`` (section 2.2.3
    unfolding); undeclared 8-bit bytes are read as UTF-8, else cp1252."""
    fields: dict[str, list[str]] = {}
    name = None
    for line in header.replace(b"\r\n", b"\n").split(b"\n"):
        if not line.strip():
            continue
        if line[:1] in (b" ", b"\t") and name is not None:
            fields[name][-1] += " " + _text_of(line.strip())
            continue
        key, colon, value = line.partition(b":")
        if not colon or not key.strip():
            name = None
            continue
        name = key.strip().decode("ascii", "replace").lower()
        fields.setdefault(name, []).append(_text_of(value.strip()))
    return fields


def _text_of(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def quick_summary(
    header: bytes, body_start: bytes | None = None, preview: str | None = None
) -> QuickSummary:
    """Subject, addresses, date, message id and preview; never raises.

    With ``preview`` given (the server's own, RFC 8970) the body is not looked at.
    """
    try:
        headers = header_fields(header)
    except Exception:
        return QuickSummary()
    if preview is not None:
        return _from_fields(headers, " ".join(preview.split()))
    try:
        msg = email.message_from_bytes(
            header.rstrip(b"\r\n") + b"\r\n\r\n" + (body_start or b""), policy=policy.compat32
        )
        return _from_fields(headers, _preview(msg))
    except Exception:
        return _from_fields(headers, "")


def _from_fields(headers: dict[str, list[str]], preview: str) -> QuickSummary:
    subject = next(iter(headers.get("subject", [])), None)
    date = next(iter(headers.get("date", [])), None)
    message_id = next(iter(headers.get("message-id", [])), None)
    return QuickSummary.model_construct(
        subject=decode_rfc2047(_header_text(subject)).strip() if subject is not None else None,
        from_=_addresses(headers, "From"),
        to=_addresses(headers, "To"),
        cc=_addresses(headers, "Cc"),
        date=parse_date(date),
        message_id=parse_message_id(message_id),
        preview=preview,
    )
