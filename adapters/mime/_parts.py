"""Per-part MIME primitives: content type, parameters, file names and payloads.

RFC 2045 (Content-Type, transfer encodings), RFC 2183 (Content-Disposition), RFC 2231
(parameter charsets and continuations) and RFC 2392 (Content-ID). Header values are read
raw so that the same code works on ``policy.default`` and ``policy.compat32`` trees.
"""

from __future__ import annotations

import contextlib
import io
import re
from email import policy as _policy
from email.generator import BytesGenerator
from email.message import Message

from ._charset import clean_text, decode_bytes
from ._headers import decode_rfc2047, first_value

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TYPE_TOKEN = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")


def _declared_type(part: Message) -> str:
    """The Content-Type ``type/subtype`` as written, or the context default (RFC 2045 §5.2).

    Read from the raw header: asking ``policy.default`` runs its full header parser on
    every call, which dominated parse time.
    """
    raw = first_value(part, "content-type")
    if raw is None:
        try:
            return part.get_default_type()
        except Exception:
            return "text/plain"
    value = raw.split(";", 1)[0].strip().strip('"').lower()
    if not _TYPE_TOKEN.fullmatch(value):
        value = "text/plain"
    if part.is_multipart() and not value.startswith(("multipart/", "message/")):
        try:  # the parser saw a container where we did not (comments etc.): follow it
            value = part.get_content_type().lower()
        except Exception:
            return value
    return value


def content_type(part: Message) -> str:
    """Lower-case ``type/subtype``; text/plain for anything broken (RFC 2045 §5.2)."""
    value = _declared_type(part)
    if value.startswith("multipart/") and not part.is_multipart():
        return "text/plain"  # multipart without a usable boundary: show its raw body
    return value


def is_container(part: Message) -> bool:
    """True for a multipart/* part whose children were parsed (RFC 2046 §5.1)."""
    return _declared_type(part).startswith("multipart/") and part.is_multipart()


def is_encapsulated(part: Message) -> bool:
    """True for a message/* part holding a parsed message (RFC 2046 §5.2)."""
    return _declared_type(part).startswith("message/") and part.is_multipart()


def children(part: Message) -> list[Message]:
    """Sub-parts of a container or encapsulated message, empty when there are none."""
    if not part.is_multipart():  # get_payload() on a leaf may decode (and raise)
        return []
    payload = part.get_payload()
    return [child for child in payload if isinstance(child, Message)] if payload else []


def disposition(part: Message) -> str | None:
    """The Content-Disposition type (RFC 2183 §2), lower-case, or ``None``."""
    raw = first_value(part, "content-disposition")
    if raw is None:
        return None
    kind = raw.split(";", 1)[0].strip().strip('"').lower()
    return kind or None


def content_id(part: Message) -> str | None:
    """The Content-ID (RFC 2392) without angle brackets or whitespace."""
    raw = first_value(part, "content-id")
    if raw is None:
        return None
    value = re.sub(r"\s+", "", clean_text(raw)).strip("<>")
    return value or None


def header_param(part: Message, header: str, name: str) -> str | None:
    """A decoded header parameter, following RFC 2231 (charset, continuations) and, as
    real mailers do, RFC 2047 words inside quoted values."""
    raw = first_value(part, header)
    if raw is None:
        return None
    with contextlib.suppress(UnicodeEncodeError):  # compat32 would turn surrogates into U+FFFD,
        raw = raw.encode("ascii", "surrogateescape").decode("latin-1")  # latin-1 chars survive
    scratch = Message()  # compat32 parameter parsing: RFC 2231 continuations and charsets
    scratch[header] = raw
    try:
        value = scratch.get_param(name, header=header)
    except Exception:
        return None
    if value is None:
        return None
    charset: str | None = None
    if isinstance(value, tuple):
        charset, _language, value = value
    try:
        data = str(value).encode("latin-1")
    except UnicodeEncodeError:
        return clean_text(decode_rfc2047(str(value)))
    text = decode_bytes(data, charset or None)
    return decode_rfc2047(text) if charset is None else clean_text(text)


def sanitize_filename(name: str | None) -> str | None:
    """Drop directory parts and control characters from a file name; ``None`` if empty."""
    if not name:
        return None
    base = re.split(r"[/\\]", name)[-1]
    base = _CONTROL.sub("", base).strip()
    return base if base not in ("", ".", "..") else None


def part_filename(part: Message) -> str | None:
    """File name from Content-Disposition ``filename`` else Content-Type ``name`` (RFC 2183)."""
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        name = sanitize_filename(header_param(part, header, param))
        if name:
            return name
    return None


def serialize(msg: Message, linesep: str = "\n") -> bytes:
    """Re-serialize a parsed message, keeping original header bytes where possible."""
    for gen_policy in (
        _policy.default.clone(refold_source="none", max_line_length=None, linesep=linesep),
        _policy.compat32.clone(max_line_length=None, linesep=linesep),
    ):
        buffer = io.BytesIO()
        try:
            BytesGenerator(buffer, mangle_from_=False, policy=gen_policy).flatten(msg)
        except Exception:  # noqa: S112 - try the next, more forgiving policy
            continue
        return buffer.getvalue()
    return b""


def payload_bytes(part: Message, linesep: str = "\n") -> bytes:
    """Transfer-decoded content of a part (RFC 2045 §6); an attached message is re-serialized."""
    if part.is_multipart():
        if is_encapsulated(part):
            return b"".join(serialize(child, linesep) for child in children(part))
        return serialize(part, linesep)
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    try:
        raw = part.get_payload()
        return raw.encode("ascii", "surrogateescape") if isinstance(raw, str) else b""
    except Exception:
        return b""


def part_charset(part: Message) -> str | None:
    """The Content-Type ``charset`` parameter (RFC 2046 §4.1.2), or ``None``."""
    value = header_param(part, "content-type", "charset")
    if not value or not value.strip():
        return None
    return value.strip()
