"""Incremental Content-Transfer-Encoding decoders (RFC 2045 §6) for streaming parts in chunks.

``make_decoder(encoding)`` returns ``decode(chunk, final)``: feed the encoded octets in
chunks cut anywhere, get back the decoded octets available so far; ``final=True`` flushes
what was held back. The output never depends on where the chunks were cut.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable

__all__ = ["Decoder", "make_decoder"]

Decoder = Callable[[bytes, bool], bytes]

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_DROP = bytes(b for b in range(256) if b not in _B64_ALPHABET + b"=")
_HEX = frozenset(b"0123456789ABCDEFabcdef")
_EQ, _CR, _LF = 0x3D, 0x0D, 0x0A
# Where binascii.a2b_qp differs from the rules below: "==" (it drops one "=") and "=\r" not
# followed by "\n" (it skips up to the next "\n"). Segments without them take its fast path.
_QP_QUIRK = re.compile(rb"==|=\r(?!\n)")


class _Identity:
    """7bit, 8bit, binary (RFC 2045 §6.2) and anything unknown: octets pass through."""

    def __call__(self, chunk: bytes, final: bool = False) -> bytes:
        return bytes(chunk)


class _Base64:
    """RFC 2045 §6.8, leniently, like the stdlib email package: characters outside the
    alphabet (line breaks, spaces, junk) are skipped and missing padding is tolerated. A
    pad ends a group; data after it is decoded too (concatenated encodings). A single
    dangling character, which encodes no whole octet, is dropped.
    """

    def __init__(self) -> None:
        self._pending = b""  # 0-3 alphabet characters of an unfinished quartet

    def __call__(self, chunk: bytes, final: bool = False) -> bytes:
        out = []
        pieces = bytes(chunk).translate(None, _B64_DROP).split(b"=")
        for index, piece in enumerate(pieces):
            data = self._pending + piece
            whole = len(data) - len(data) % 4
            if whole:
                out.append(binascii.a2b_base64(data[:whole]))
            self._pending = data[whole:]
            if final or index < len(pieces) - 1:  # a pad, or the end: finish the group
                out.append(self._flush())
        return b"".join(out)

    def _flush(self) -> bytes:
        rest, self._pending = self._pending, b""
        if len(rest) < 2:
            return b""
        return binascii.a2b_base64(rest + b"=" * (4 - len(rest)))


def _qp_literal(data: bytes, final: bool) -> bytes:
    """Decode quoted-printable (RFC 2045 §6.7) that ends on an escape boundary, one "=" at a time.

    ``=XX`` (either case) is an octet, ``=`` CRLF or ``=`` LF a soft line break, and any
    other ``=`` is kept as it is. At the very end of the input (``final``) a lone ``=`` or
    ``=\\r`` is a soft line break.
    """
    out = bytearray()
    start, size = 0, len(data)
    while True:
        at = data.find(b"=", start)
        if at < 0:
            out += data[start:]
            return bytes(out)
        out += data[start:at]
        nxt = data[at + 1] if at + 1 < size else None
        after = data[at + 2] if at + 2 < size else None
        if nxt == _LF:
            start = at + 2
        elif nxt == _CR and (after == _LF or (after is None and final)):
            start = at + 3
        elif nxt is None and final:
            start = size
        elif nxt in _HEX and after is not None and after in _HEX:
            out.append(int(data[at + 1 : at + 3], 16))
            start = at + 3
        else:
            out.append(_EQ)
            start = at + 1


def _qp_boundary(data: bytes, pos: int) -> bool:
    """Whether ``pos`` can not fall inside an escape, whatever octets come after ``data``.

    Every "=" starts an escape (no escape contains one elsewhere), and escapes are at most
    3 octets, so only an "=" one or two octets before ``pos`` matters.
    """
    size = len(data)

    def at(index: int) -> int | None:
        return data[index] if index < size else None

    if pos >= 1 and data[pos - 1] == _EQ:
        nxt = at(pos)
        if nxt is None or nxt == _LF:
            return False
        if nxt == _CR or nxt in _HEX:
            after = at(pos + 1)
            if after is None or (after == _LF if nxt == _CR else after in _HEX):
                return False
    if pos >= 2 and data[pos - 2] == _EQ:
        first, nxt = data[pos - 1], at(pos)
        if first in _HEX and (nxt is None or nxt in _HEX):
            return False
        if first == _CR and (nxt is None or nxt == _LF):
            return False
    return True


def _qp_segment(segment: bytes, final: bool) -> bytes:
    """Decode ``segment``, which ends on an escape boundary (or the input's end if final)."""
    if not final and segment.endswith(b"="):  # each of these "=" is known to stand for itself
        body = segment.rstrip(b"=")
        return _qp_segment(body, False) + b"=" * (len(segment) - len(body))
    if _QP_QUIRK.search(segment):
        return _qp_literal(segment, final)
    return binascii.a2b_qp(segment, header=False)


class _QuotedPrintable:
    """RFC 2045 §6.7; well-formed input decodes exactly as ``quopri.decodestring``."""

    def __init__(self) -> None:
        self._pending = b""  # the tail that may be the start of an escape

    def __call__(self, chunk: bytes, final: bool = False) -> bytes:
        data = self._pending + bytes(chunk)
        cut = len(data)
        if not final:
            while cut > 0 and not _qp_boundary(data, cut):
                cut -= 1
        segment, self._pending = data[:cut], data[cut:]
        return _qp_segment(segment, final) if segment else b""


def make_decoder(encoding: str | None) -> Decoder:
    """A fresh stateful decoder for one part's Content-Transfer-Encoding (RFC 2045 §6.1).

    Call ``decode(chunk, final)`` for each chunk, with ``final=True`` on the last one
    (which may be empty). Names are case-insensitive; unknown ones pass octets through.
    """
    name = (encoding or "").strip().lower()
    if name == "base64":
        return _Base64()
    if name == "quoted-printable":
        return _QuotedPrintable()
    return _Identity()
