"""A fast path for list views: summary fields from a header block and the start of the body.

``parse_message`` builds everything with the modern email policy, which costs about 2 ms a
message; a page of 50 summaries cannot afford that. Here the lenient compat32 parser and
``email.utils.getaddresses`` do the work (RFC 2047 decoding as in the full parser), and the
preview comes from the first text part inside the truncated body.
"""

from __future__ import annotations

import email
from email import policy
from email.message import Message

from adapters.mime._charset import decode_bytes, fix_surrogates
from adapters.mime._headers import (
    _addresses_with_getaddresses,
    decode_rfc2047,
    parse_address_value,
    parse_date,
    parse_message_id,
    unfold,
)
from adapters.mime._html import make_preview
from adapters.mime.models import EmailAddress, HeaderSummary

_MAX_PARTS = 20


class QuickSummary(HeaderSummary):
    preview: str = ""


def _raw_headers(msg: Message) -> dict[str, list[str]]:
    """Header values as received; ``msg.get`` would turn 8-bit bytes into U+FFFD."""
    headers: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        headers.setdefault(name.lower(), []).append(str(value))
    return headers


def _addresses(headers: dict[str, list[str]], name: str) -> list[EmailAddress]:
    found: list[EmailAddress] = []
    for raw in headers.get(name.lower(), []):
        value = _header_text(raw)
        try:
            quick = _addresses_with_getaddresses(value)
        except Exception:
            quick = []
        # odd values (groups, garbage) take the full parser's careful path
        found += (
            quick if quick and all(a.email for a in quick) else parse_address_value(name, value)
        )
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


def quick_summary(header: bytes, body_start: bytes) -> QuickSummary:
    """Subject, addresses, date, message id and preview; never raises."""
    try:
        msg = email.message_from_bytes(
            header.rstrip(b"\r\n") + b"\r\n\r\n" + body_start, policy=policy.compat32
        )
    except Exception:
        return QuickSummary()
    headers = _raw_headers(msg)
    subject = next(iter(headers.get("subject", [])), None)
    date = next(iter(headers.get("date", [])), None)
    message_id = next(iter(headers.get("message-id", [])), None)
    try:
        preview = _preview(msg)
    except Exception:
        preview = ""
    return QuickSummary(
        subject=decode_rfc2047(_header_text(subject)).strip() if subject is not None else None,
        from_=_addresses(headers, "From"),
        to=_addresses(headers, "To"),
        cc=_addresses(headers, "Cc"),
        date=parse_date(date),
        message_id=parse_message_id(message_id),
        preview=preview,
    )
