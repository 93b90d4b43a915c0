"""Header field decoding: RFC 5322 unfolding, RFC 2047 words, addresses, dates, msg-ids.

All helpers take the *raw* header string kept by ``email`` (8-bit bytes appear as
surrogate escapes) and return clean text. None of them raises on malformed input.
"""

from __future__ import annotations

import binascii
import re
from datetime import UTC, datetime
from email import policy as _policy
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from mailgate.domain.mail import EmailAddress

from ._charset import clean_text, decode_bytes, fix_surrogates

_FOLD = re.compile(r"\r?\n(?=[ \t])")
_STRAY_EOL = re.compile(r"[\r\n]+")
_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?]*)\?=")
_Q_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
_COMMENT = re.compile(r"\([^()]*\)")
_MSG_ID_TOKEN = re.compile(r"<([^<>]*)>|([^\s<>,]+)")
_MAX_ADDRESS_HEADER = 64 * 1024
_WORD_GAP = re.compile(rf"({_ENCODED_WORD.pattern})\s+(?={_ENCODED_WORD.pattern})")


def unfold(value: str) -> str:
    """Unfold a header value (RFC 5322 §2.2.3); stray CR/LF become spaces."""
    return _STRAY_EOL.sub(" ", _FOLD.sub("", value))


def raw_values(msg: Message, name: str) -> list[str]:
    """All raw values of header ``name`` in order, unfolded, as stored by the parser."""
    wanted = name.lower()
    try:
        items = list(msg.raw_items())
    except Exception:
        return []
    return [unfold(str(value)) for key, value in items if str(key).lower() == wanted]


def first_value(msg: Message, name: str) -> str | None:
    """The first raw value of header ``name``, or ``None`` when absent."""
    values = raw_values(msg, name)
    return values[0] if values else None


def _word_bytes(encoding: str, text: str) -> bytes | None:
    """Decode the payload of one RFC 2047 encoded word; ``None`` if it is not decodable."""
    try:
        data = text.encode("ascii")
    except UnicodeEncodeError:
        return None
    if encoding in "bB":
        data = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
        data += b"=" * (-len(data) % 4)
        try:
            return binascii.a2b_base64(data)
        except (binascii.Error, ValueError):
            return None
    data = data.replace(b"_", b" ")
    return _Q_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), data)


def decode_rfc2047(value: str) -> str:
    """Decode RFC 2047 encoded words in an unstructured header value.

    Whitespace between adjacent encoded words is dropped (RFC 2047 §6.2) and adjacent
    words in one charset are decoded together, so a character split across two words
    survives. Unknown or lying charsets fall back like bodies do; raw 8-bit text is
    re-decoded from its surrogate escapes (UTF-8, then cp1252/latin-1).
    """
    value = unfold(value)
    out: list[str] = []
    run = bytearray()
    run_charset: str | None = None

    def flush() -> None:
        nonlocal run_charset
        if run_charset is not None:
            out.append(decode_bytes(bytes(run), run_charset))
        run.clear()
        run_charset = None

    pos = 0
    for match in _ENCODED_WORD.finditer(value):
        gap = value[pos : match.start()]
        pos = match.end()
        if gap and not (run_charset is not None and gap.isspace()):
            flush()
            out.append(fix_surrogates(gap))
        data = _word_bytes(match.group(2), match.group(3))
        charset = match.group(1).lower()
        if data is None:
            flush()
            out.append(match.group(0))
            continue
        if charset != run_charset:
            flush()
            run_charset = charset
        run.extend(data)
    flush()
    out.append(fix_surrogates(value[pos:]))
    return clean_text("".join(out))


def decode_unstructured(msg: Message, name: str) -> str | None:
    """The decoded, trimmed value of an unstructured header such as Subject (RFC 5322 §3.6.5)."""
    raw = first_value(msg, name)
    if raw is None:
        return None
    return decode_rfc2047(raw).strip()


def _make_address(name: str | None, email: str | None) -> EmailAddress | None:
    """Build an :class:`EmailAddress`, or ``None`` when both parts are empty."""
    display = clean_text(name or "").strip() or None
    addr = clean_text(email or "").strip()
    if addr in ("<>", '""'):
        addr = ""
    if display is None and not addr:
        return None
    return EmailAddress(name=display, email=addr)


def _addresses_with_policy(name: str, raw: str) -> list[EmailAddress]:
    """Parse an address-list (RFC 5322 §3.4) with ``email.policy.default``.

    Groups with members are flattened; an empty group such as ``undisclosed-recipients:;``
    is kept as one entry whose ``email`` is empty, so a client can still show it.
    """
    # RFC 2047 §6.2: whitespace between adjacent encoded words is not displayed; the
    # policy.default phrase parser keeps it, so remove it before parsing.
    header = _policy.default.header_factory(name, _WORD_GAP.sub(r"\1", raw))
    out: list[EmailAddress] = []
    for group in header.groups:
        if group.display_name is not None and not group.addresses:
            entry = _make_address(group.display_name, "")
            if entry is not None:
                out.append(entry)
        for address in group.addresses:
            entry = _make_address(address.display_name, address.addr_spec)
            if entry is not None:
                out.append(entry)
    return out


def _addresses_with_getaddresses(raw: str) -> list[EmailAddress]:
    """Lenient fallback: ``email.utils.getaddresses`` plus local RFC 2047 decoding."""
    out: list[EmailAddress] = []
    for display, addr in getaddresses([raw]):
        entry = _make_address(decode_rfc2047(display), addr)
        if entry is not None:
            out.append(entry)
    return out


# The plainest address lists, where the stdlib's RFC 5322 parser has nothing to decide:
# items of `addr-spec`, `<addr-spec>` or `display-name <addr-spec>` separated by commas,
# the display name ASCII atoms or one quoted string of printable ASCII without escapes (no
# comments, encoded words, groups, obsolete forms or 8-bit text).
# tests/unit/test_address_fast_path.py checks that these give what the parser gives.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/^_`{|}~-]+"  # atext without "=" and "?" (no encoded words)
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
_PLAIN_ADDRESS = re.compile(
    rf'[ \t]*(?:(?:(?P<name>{_ATEXT}(?: {_ATEXT})*)|"(?P<quoted>[ !#-\[\]-~]*)")[ \t]*)?'
    rf"(?:<(?P<bracketed>{_DOT_ATOM}@{_DOT_ATOM})>|(?P<bare>{_DOT_ATOM}@{_DOT_ATOM}))[ \t]*"
)


def _plain_addresses(raw: str) -> list[EmailAddress] | None:
    """The addresses of a plain address list (see ``_PLAIN_ADDRESS``) without the general
    parser (~70 us an address); None for anything else."""
    found: list[EmailAddress] = []
    pos = 0
    while True:
        match = _PLAIN_ADDRESS.match(raw, pos)
        if match is None:
            return None
        name, quoted, addr = match["name"], match["quoted"], match["bracketed"] or match["bare"]
        if match["bare"] and (name is not None or quoted is not None):
            return None
        if quoted is not None:
            if "=?" in quoted:  # the parser decodes encoded words even there
                return None
            name = quoted
        entry = _make_address(name, addr)
        if entry is None:
            return None
        found.append(entry)
        pos = match.end()
        if pos == len(raw):
            return found
        if raw[pos] != ",":
            return None
        pos += 1


def parse_address_value(name: str, raw: str) -> list[EmailAddress]:
    """Parse one address header value; never raises, even for garbage like ``<<<@>>``."""
    raw = unfold(raw)[:_MAX_ADDRESS_HEADER]
    if not raw.strip(" \t,;"):
        return []
    plain = _plain_addresses(raw)
    if plain is not None:
        return plain
    return _parse_address_value(name, raw)


def _parse_address_value(name: str, raw: str) -> list[EmailAddress]:
    """:func:`parse_address_value` with the general parser, then lenient fallbacks."""
    try:
        found = _addresses_with_policy(name, raw)
    except Exception:
        found = []
    if not found:
        try:
            found = _addresses_with_getaddresses(raw)
        except Exception:
            found = []
    if not found:
        entry = _make_address(decode_rfc2047(raw), "")
        found = [entry] if entry is not None else []
    return found


def parse_addresses(msg: Message, name: str) -> list[EmailAddress]:
    """All addresses from every occurrence of header ``name`` (duplicates are merged)."""
    out: list[EmailAddress] = []
    for raw in raw_values(msg, name):
        out.extend(parse_address_value(name, raw))
    return out


def parse_date(raw: str | None) -> datetime | None:
    """Parse an RFC 5322 §3.3 date-time; naive or ``-0000`` zones are taken as UTC."""
    if raw is None:
        return None
    text = clean_text(unfold(raw)).strip()
    if not text:
        return None
    try:
        parsed = parsedate_to_datetime(text)
    except Exception:
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def parse_msg_ids(raw: str | None) -> list[str]:
    """Message identifiers from Message-ID/In-Reply-To/References (RFC 5322 §3.6.4).

    Angle brackets are removed. Bracketed ids are always taken; bare tokens only when they
    look like an id (contain ``@``), so prose such as "your message of Monday" is skipped.
    Duplicates are dropped, order is kept.
    """
    if not raw:
        return []
    text = _COMMENT.sub(" ", clean_text(unfold(raw)))
    ids: list[str] = []
    for bracketed, bare in _MSG_ID_TOKEN.findall(text):
        candidate = re.sub(r"\s+", "", bracketed) if bracketed else bare
        if not candidate or (not bracketed and "@" not in candidate):
            continue
        if candidate not in ids:
            ids.append(candidate)
    return ids


def parse_message_id(raw: str | None) -> str | None:
    """The Message-ID without angle brackets; a bare value without ``@`` is kept as given."""
    ids = parse_msg_ids(raw)
    if ids:
        return ids[0]
    if raw is None:
        return None
    text = clean_text(unfold(raw)).strip().strip("<>").strip()
    return text or None
