"""Charset handling shared by header and body decoding (RFC 2045, RFC 2046 §4.1.2, RFC 6657).

Mail in the wild lies about its charset, omits it, or names ones Python has never heard of.
Every function here is total: it returns text for any input and never raises.
"""

from __future__ import annotations

import codecs
import re

# Labels seen in real mail that Python does not know, or knows under a stricter meaning.
# ISO-8859-1 is read as windows-1252, as the WHATWG Encoding Standard does: mail tagged
# latin-1 routinely carries cp1252 quotes and dashes in 0x80-0x9F.
_ALIASES: dict[str, str] = {
    "utf8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "windows-874": "cp874",
    "x-sjis": "shift_jis",
    "x-mac-roman": "mac_roman",
    "x-mac-cyrillic": "mac_cyrillic",
}

# Codecs Python knows that are not a text charset a mail part could be written in.
_REFUSED = frozenset(
    {"unicode_escape", "raw_unicode_escape", "punycode", "idna", "undefined", "mbcs", "oem"}
)

_SURROGATE_RUN = re.compile("[\udc80-\udcff]+")
_ANY_SURROGATE = re.compile("[\ud800-\udfff]")


def normalize_charset(label: str | None) -> str | None:
    """Map a MIME charset label (RFC 2978 registry name) to a usable Python codec name.

    Returns ``None`` for missing, unknown or refused labels such as ``x-unknown``.
    """
    if not label:
        return None
    key = label.strip().strip("\"'").lower()
    if not key:
        return None
    key = _ALIASES.get(key, key)
    try:
        info = codecs.lookup(key)
        b"a".decode(info.name, "ignore")  # bytes-to-bytes codecs (base64, hex) raise here
    except (LookupError, ValueError, TypeError, UnicodeError):
        return None
    name = info.name.replace("-", "_")
    if name in _REFUSED or name.startswith("rot"):
        return None
    if info.name == "iso8859-1":
        return "cp1252"
    return info.name


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Decode ``data`` using the declared charset, then UTF-8, then cp1252, then latin-1.

    The declared label (RFC 2046 §4.1.2) is tried strictly first so a lying label falls
    through to UTF-8; cp1252 covers the usual "latin-1" mail; latin-1 cannot fail.
    Exception: data labelled latin-1/cp1252 that is valid UTF-8 is read as UTF-8.
    """
    declared = normalize_charset(charset)
    order = (declared, "utf-8")
    if declared == "cp1252" and not data.isascii():
        # Single-byte Western labels accept any bytes, so a mislabelled UTF-8 body would
        # "succeed" as mojibake; valid multi-byte UTF-8 is near-impossible by accident.
        order = ("utf-8", declared)
    tried: set[str] = set()
    for codec in order:
        if codec is None or codec in tried:
            continue
        tried.add(codec)
        try:
            return data.decode(codec)
        except (UnicodeError, LookupError, ValueError, TypeError):
            continue
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1", errors="replace")


def fix_surrogates(text: str) -> str:
    """Re-decode bytes the ``email`` package smuggled in as lone surrogates.

    ``BytesParser`` reads 8-bit header bytes (RFC 6532 or simply broken mail) with
    ``surrogateescape``; each run of such bytes is decoded as UTF-8, else cp1252/latin-1.
    """
    if not _SURROGATE_RUN.search(text):
        return text

    def _redecode(match: re.Match[str]) -> str:
        return decode_bytes(match.group(0).encode("ascii", "surrogateescape"))

    return _SURROGATE_RUN.sub(_redecode, text)


def clean_text(text: str) -> str:
    """Make decoded text safe for JSON and databases: no surrogates, no NUL characters."""
    text = fix_surrogates(text)
    if _ANY_SURROGATE.search(text):
        text = _ANY_SURROGATE.sub("\ufffd", text)
    return text.replace("\x00", "")
